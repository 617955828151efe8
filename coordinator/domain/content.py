"""Checks on the bytes clients and agents send: digests, and what a source snapshot may hold."""

from __future__ import annotations

import re
import tarfile
from typing import BinaryIO

from conveyor.paths import UnsafePathError, check_name

_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


class DigestError(ValueError):
    """Bytes did not match the digest their sender announced."""


def check_digest(digest: str) -> str:
    if not _DIGEST_RE.fullmatch(digest):
        raise ValueError(f"invalid sha256 digest {digest!r} (expected 64 lowercase hex digits)")
    return digest


def check_commit(commit: str) -> str:
    """A full git commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits."""
    if len(commit) not in (40, 64) or not all(c in "0123456789abcdef" for c in commit):
        raise ValueError(f"invalid commit id {commit!r}")
    return commit


def check_source_tar(data: BinaryIO) -> int:
    """Checks every member of a source tar stays inside the workspace; returns their count.

    Reads the tar as a stream (never all of it at once); blocks, so runs on an I/O thread.
    """
    count = 0
    try:
        with tarfile.open(fileobj=data, mode="r|") as archive:
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
