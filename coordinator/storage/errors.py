"""Disk errors of the local files, as the domain's error types."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from coordinator.domain.errors import StorageExhaustedError

# A write failing with one of these is the disk's fault, not the request's: the caller retries.
EXHAUSTED_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def storage_error(error: OSError, path: Path) -> Exception:
    """StorageExhaustedError for a full or failing disk; any other OSError as it is."""
    if error.errno in EXHAUSTED_ERRNOS:
        return StorageExhaustedError(
            f"cannot write {path.name} in {path.parent}: {os.strerror(error.errno or 0)}; "
            "nothing was recorded, retry once space returns"
        )
    return error
