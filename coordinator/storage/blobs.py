"""Content-addressed files on local disk: `blobs/sha256/ab/cdef...`, written whole or not at all.

The local-disk `BlobStorage` of `coordinator.domain.ports`. Incoming bytes go to a temp file
beside the store, hashed as they are written; only a verified, fsynced file is renamed into place,
so a reader never sees a partial or wrong blob. Every method blocks (file I/O).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from coordinator.domain.content import DigestError, check_digest
from coordinator.storage.errors import storage_error

# Blobs (sources, artifacts) are the server's user's only; temp files are 0600 (mkstemp) and
# keep that mode when renamed into place.
DIR_MODE = 0o700


class Incoming:
    """One blob being received: a temp file and a running digest."""

    def __init__(self, store: BlobStore, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="in-")
        self.path = Path(name)
        self._store = store
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as error:
            raise storage_error(error, self.path) from error
        self._hash.update(data)
        self._size += len(data)

    def seal(self, expected: str) -> str:
        """Flushes to disk and checks the digest; raises DigestError on a mismatch."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as error:
            raise storage_error(error, self.path) from error
        actual = self._hash.hexdigest()
        if actual != expected:
            raise DigestError(f"digest mismatch: sent {expected}, received bytes hash to {actual}")
        return actual

    def open(self) -> BinaryIO:
        return self.path.open("rb")

    def commit(self, digest: str) -> None:
        """Moves the sealed temp file into place (atomic rename; an existing copy is kept)."""
        final = self._store.path(digest)
        if final.exists():
            self.discard()
            return
        final.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.replace(self.path, final)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._tmp.mkdir(mode=DIR_MODE, exist_ok=True)
        # Temp files of a previous run were never committed: nothing references them.
        for stale in self._tmp.iterdir():
            stale.unlink(missing_ok=True)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def begin(self) -> Incoming:
        return Incoming(self, self._tmp)

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def remove(self, digest: str) -> int:
        """Deletes a blob; returns the bytes freed."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size
