"""Step logs as append-only local files: exact bytes, durable before acknowledged.

The local-disk `LogStorage` of `coordinator.domain.ports`. One file per (attempt, step). The
file's length is the offset the coordinator holds, so a crash between write and acknowledgement
never loses or duplicates a byte: the agent resends from the length we report. Methods block;
call them from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from coordinator.storage.errors import storage_error

# Logs hold what steps printed: the server's user's only.
DIR_MODE = 0o700
FILE_MODE = 0o600


class LogStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._locks: dict[tuple[int, int], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def path(self, attempt_id: int, step_index: int) -> Path:
        return self._root / str(attempt_id) / f"{step_index}.log"

    def length(self, attempt_id: int, step_index: int) -> int:
        try:
            return self.path(attempt_id, step_index).stat().st_size
        except FileNotFoundError:
            return 0

    def append(
        self, attempt_id: int, step_index: int, offset: int, data: bytes
    ) -> tuple[int, bool]:
        """Stores `data` found at `offset`; returns (length held, accepted).

        Bytes already held are not written again; a chunk that starts past the held length is a
        gap and is refused, and the caller resends from the returned length.
        """
        if offset < 0 or step_index < 0:
            raise ValueError(f"log append at step {step_index}, offset {offset}")
        with self._lock(attempt_id, step_index):
            held = self.length(attempt_id, step_index)
            if offset > held:
                return held, False
            # A slice of bytes is a copy: take one only when part of the chunk is already held.
            fresh = data if held == offset else data[held - offset :]
            if not fresh:
                return held, True
            path = self.path(attempt_id, step_index)
            try:
                path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            except OSError as error:
                raise storage_error(error, path) from error
            try:
                view = memoryview(fresh)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as error:
                # Nothing half-recorded: the bytes written before the failure go, so the length
                # held stays what was acknowledged, and the agent resends from there.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, held)
                raise storage_error(error, path) from error
            finally:
                os.close(fd)
            return held + len(fresh), True

    def read(self, attempt_id: int, step_index: int, offset: int, limit: int) -> bytes:
        if offset < 0 or limit <= 0:
            raise ValueError(f"log read at offset {offset}, limit {limit}")
        try:
            with self.path(attempt_id, step_index).open("rb") as handle:
                if offset >= os.fstat(handle.fileno()).st_size:
                    return b""  # past the end: nothing yet (seeking there may even fail)
                handle.seek(offset)
                return handle.read(limit)
        except FileNotFoundError:
            return b""

    def forget(self, attempt_id: int, step_index: int) -> None:
        """The step has ended: its lock is no longer needed."""
        with self._locks_guard:
            self._locks.pop((attempt_id, step_index), None)

    def _lock(self, attempt_id: int, step_index: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((attempt_id, step_index), threading.Lock())
