"""Workspaces as directories on the host, and files in and out of them: what the shell and fake
executors share.

Names are always resolved component by component with ``O_NOFOLLOW`` below the workspace, so a
symlink a step planted can be reported (as a SYMLINK entry) but never followed out of it. Tar
streams are unpacked with tarfile's ``data`` filter: no absolute paths, no ``..``, no links that
leave the workspace, no device files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, cast

from agent.config import TRANSFER_CHUNK_BYTES
from agent.executors.base import (
    AttemptInfo,
    ExecutorError,
    FileKind,
    WorkspaceFile,
    WorkspaceReader,
)
from agent.executors.tarstream import ChunkReader


def unpack(root: Path, chunks: Iterable[bytes]) -> None:
    """Unpacks a tar stream into `root`; exceptions raised by `chunks` propagate."""
    reader = ChunkReader(chunks)
    try:
        stream = cast("IO[bytes]", reader)
        with tarfile.open(fileobj=stream, mode="r|", bufsize=TRANSFER_CHUNK_BYTES) as archive:
            archive.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ExecutorError(f"could not unpack into the workspace: {exc}") from exc
    reader.drain()


def _file_chunks(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb", buffering=0) as handle:
        while data := handle.read(TRANSFER_CHUNK_BYTES):
            yield data


class HostWorkspaceReader:
    """:class:`agent.executors.base.WorkspaceReader` over a directory."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def names(self) -> list[str]:
        found: list[str] = []
        for directory, dirs, files in os.walk(self._root, followlinks=False):
            base = Path(directory).relative_to(self._root)
            for name in files:
                found.append((base / name).as_posix())
            for name in dirs:  # a symlink to a directory is listed as the link it is
                if (Path(directory) / name).is_symlink():
                    found.append((base / name).as_posix())
        return found

    @contextlib.contextmanager
    def read(self, name: str) -> Iterator[WorkspaceFile]:
        parts = name.split("/")
        if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ExecutorError(f"artifact {name!r}: not a plain relative path")
        try:
            parent = self._open_parent(parts[:-1])
        except OSError as exc:
            raise ExecutorError(f"artifact {name!r}: not found in the workspace ({exc})") from exc
        try:
            yield self._entry(name, parent, parts[-1])
        except OSError as exc:
            raise ExecutorError(f"artifact {name!r}: could not be read: {exc}") from exc
        finally:
            os.close(parent)

    def _open_parent(self, directories: list[str]) -> int:
        fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
        for part in directories:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            finally:
                os.close(fd)
            fd = inner
        return fd

    @staticmethod
    def _entry(name: str, parent: int, leaf: str) -> WorkspaceFile:
        info = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(leaf, dir_fd=parent)
            return WorkspaceFile(name, FileKind.SYMLINK, 0, mode, target, iter(()))
        if not stat.S_ISREG(info.st_mode):
            return WorkspaceFile(name, FileKind.OTHER, 0, mode, "", iter(()))
        fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent)
        return WorkspaceFile(name, FileKind.FILE, info.st_size, mode, "", _file_chunks(fd))


class HostWorkspaces:
    """The workspace half of an executor: one directory ``root/<attempt id>`` per attempt.

    ``root`` must belong to this agent alone: :meth:`remove_workspaces` empties it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def workspace(self, attempt: AttemptInfo) -> Path:
        return self.root / str(attempt.attempt_id)

    def prepare_attempt(self, attempt: AttemptInfo) -> None:
        self.cleanup_attempt(attempt)
        try:
            self.workspace(attempt).mkdir(parents=True)
        except OSError as exc:
            raise ExecutorError(
                f"could not create the workspace of attempt {attempt.attempt_id}: {exc}"
            ) from exc

    def cleanup_attempt(self, attempt: AttemptInfo) -> None:
        try:
            shutil.rmtree(self.workspace(attempt))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ExecutorError(f"could not clean up attempt {attempt.attempt_id}: {exc}") from exc

    @contextlib.contextmanager
    def open_workspace(self, attempt: AttemptInfo) -> Iterator[WorkspaceReader]:
        workspace = self.workspace(attempt)
        if not workspace.is_dir():
            raise ExecutorError(f"attempt {attempt.attempt_id} has no workspace")
        yield HostWorkspaceReader(workspace)

    def import_tar(self, attempt: AttemptInfo, chunks: Iterable[bytes]) -> None:
        unpack(self.workspace(attempt), chunks)

    def remove_workspaces(self, agent_name: str) -> None:
        try:
            if self.root.exists():
                for entry in self.root.iterdir():
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError as exc:
            raise ExecutorError(f"could not remove leftovers of {agent_name!r}: {exc}") from exc
