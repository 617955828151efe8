"""Whether the agent's work dir has room for another attempt's spool, and why not.

The agent takes work only while the work dir's file system has WORK_DIR_MIN_FREE_BYTES free
(or WORK_DIR_MIN_FREE_FRACTION of its size, if that is less: a small disk is not always full).
Once a spool has run out of disk, that much room proved too little: the agent then waits until
twice what the failed spool held is free (capped at half the file system, so that one huge log
cannot keep an agent idle forever), that is, until someone made room.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

from agent.config import WORK_DIR_MIN_FREE_BYTES, WORK_DIR_MIN_FREE_FRACTION

LOGGER = logging.getLogger(__name__)

# What a write fails with when the disk (or the user's quota on it) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


class WorkDirRoom:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._needed = 0  # bytes free that a failed spool showed are needed; 0: none failed
        # Set when a spool ran out, so that whoever watches the room looks again at once.
        self.changed = threading.Event()

    def ran_out(self, spooled: int) -> None:
        """A spool of `spooled` bytes found the disk full (called from any attempt's thread)."""
        with self._lock:
            self._needed = max(self._needed, 2 * spooled)
        self.changed.set()
        LOGGER.error("work dir %s: disk full after spooling %d bytes", self.path, spooled)

    def problem(self) -> str | None:
        """Why the agent should take no work now ("disk full: DIR ..."), None if it may."""
        try:
            stats = os.statvfs(self.path)
        except OSError as error:
            return f"work dir unreadable: {self.path}: {error.strerror}"
        size, free = stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize
        wanted = min(WORK_DIR_MIN_FREE_BYTES, int(size * WORK_DIR_MIN_FREE_FRACTION))
        with self._lock:
            wanted = max(wanted, min(self._needed, size // 2))
            if free >= wanted:
                self._needed = 0  # room was made: start afresh
                return None
        # Without the free count, which moves: the words change only when the verdict does.
        return f"disk full: {self.path} (waiting for {wanted} bytes free)"
