"""Content-addressed files: `blobs/sha256/ab/cdef...`, written whole or not at all.

Incoming bytes go to a temp file beside the store, hashed as they are written; only a verified,
fsynced file is renamed into place, so a reader never sees a partial or wrong blob. Every method
blocks (file I/O) and runs on the coordinator's I/O threads, except `commit` and `remove`, which
run on the store thread so they serialise with the metadata that references them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from conveyor.paths import UnsafePathError, check_name

LOGGER = logging.getLogger(__name__)

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


class DigestError(ValueError):
    """Bytes did not match the digest their sender announced."""


def check_digest(digest: str) -> str:
    if not _DIGEST_RE.fullmatch(digest):
        raise ValueError(f"invalid sha256 digest {digest!r} (expected 64 lowercase hex digits)")
    return digest


class Incoming:
    """One blob being received: a temp file and a running digest."""

    def __init__(self, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="in-")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def seal(self, expected: str) -> str:
        """Flushes to disk and checks the digest; raises DigestError on a mismatch."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        actual = self._hash.hexdigest()
        if actual != expected:
            raise DigestError(f"digest mismatch: sent {expected}, received bytes hash to {actual}")
        return actual

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Temp files of a previous run were never committed: nothing references them.
        for stale in self._tmp.iterdir():
            stale.unlink(missing_ok=True)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def begin(self) -> Incoming:
        return Incoming(self._tmp)

    def commit(self, incoming: Incoming, digest: str) -> None:
        """Moves a sealed temp file into place (atomic rename; an existing copy is kept)."""
        final = self.path(digest)
        if final.exists():
            incoming.discard()
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming.path, final)

    def remove(self, digest: str) -> int:
        """Deletes a blob; returns the bytes freed."""
        path = self.path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def read(self, digest: str, chunk_bytes: int) -> Iterator[bytes]:
        """The blob's bytes in chunks, never all at once."""
        with self.path(digest).open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk


def check_source_tar(path: Path) -> int:
    """Checks every member of an uploaded source tar stays inside the workspace; returns count."""
    count = 0
    try:
        with tarfile.open(path, mode="r|") as archive:  # streaming: never loads the whole tar
            for member in archive:
                name = member.name.removeprefix("./").rstrip("/")
                if not name:
                    continue
                check_name(name, "source file")
                if member.islnk():
                    check_name(member.linkname.removeprefix("./"), "source hard link target")
                if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
                    raise UnsafePathError(f"source file {name!r}: unsupported file type")
                count += 1
    except tarfile.TarError as error:
        raise ValueError(f"the source snapshot is not a valid tar archive: {error}") from None
    return count
