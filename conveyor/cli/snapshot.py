"""`conveyor run --source DIR`: a tar of DIR without ignored files, identified by its sha256.

The tar is reproducible (sorted entries, owner 0, no user names), so an unchanged tree gives the
same digest and is not uploaded again. Modes and symlinks are kept; other special files skipped.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conveyor.cli.ignore import Rules, ignored, read_rules

_HASH_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Snapshot:
    path: Path  # a temp file; the caller deletes it
    sha256: str
    size: int
    files: int


def _walk(root: Path, relative: str, rules: list[Rules]) -> Iterator[tuple[Path, str]]:
    directory = root / relative if relative else root
    rules = rules + read_rules(directory, relative)
    with os.scandir(directory) as entries:
        children = sorted(entries, key=lambda e: e.name)
    for entry in children:
        name = f"{relative}/{entry.name}" if relative else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if ignored(rules, name, is_dir):
            continue
        yield Path(entry.path), name
        if is_dir:
            yield from _walk(root, name, rules)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def make_snapshot(root: Path) -> Snapshot:
    if not root.is_dir():
        raise NotADirectoryError("not a directory")
    fd, name = tempfile.mkstemp(prefix="conveyor-source-", suffix=".tar")
    os.close(fd)
    path, count = Path(name), 0
    try:
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
            for file, arcname in _walk(root, "", []):
                mode = file.lstat().st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    continue
                archive.add(file, arcname, recursive=False, filter=_normalise)
                count += 1
        digest, size = _digest(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Snapshot(path, digest, size, count)


def _digest(path: Path) -> tuple[str, int]:
    hasher, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            hasher.update(chunk)
            size += len(chunk)
    return hasher.hexdigest(), size
