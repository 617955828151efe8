"""Sources and artifacts of one attempt: what goes into the workspace before the first step and
what comes out after the last, streamed between the coordinator and the workspace.

Bytes are never held whole: downloads stream from `Peer.download` into `Executor.import_tar`,
uploads from `Executor.open_workspace` into `Peer.upload_artifact`; downloads are checked
against their sha256 here, and uploads on the coordinator.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from agent import gitsource
from agent.config import MAX_SYMLINK_HOPS
from agent.executors.base import (
    AttemptInfo,
    Executor,
    ExecutorError,
    FileKind,
    WorkspaceFile,
    WorkspaceReader,
)
from agent.peer import (
    ArtifactFile,
    FencedError,
    GitSource,
    Inputs,
    Lease,
    NeededArtifact,
    Peer,
    PeerError,
    Snapshot,
)
from conveyor import paths
from conveyor.states import Reason

LOGGER = logging.getLogger(__name__)
_TAR_BLOCK = 512


class TransferError(Exception):
    """Ends the attempt: `reason` is its short code, the message says what and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoppedError(TransferError):
    """The attempt was stopped while bytes moved; its stop verdict applies."""

    def __init__(self, what: str) -> None:
        super().__init__(Reason.CANCELED, f"stopped while transferring {what}")


class Transfers:
    def __init__(
        self,
        peer: Peer,
        executor: Executor,
        info: AttemptInfo,
        lease: Lease,
        stop: threading.Event,
        *,
        allow_local_git: bool = False,
    ) -> None:
        """`stop` (cancel, agent stopping, lease lost) ends a transfer between two chunks;
        `allow_local_git` lets a git source be a repository on this host."""
        self._stop = stop
        self._allow_local_git = allow_local_git
        self._peer = peer
        self._executor = executor
        self._info = info
        self._lease = lease

    def inputs(self) -> Inputs:
        return self._peer.get_inputs(self._lease)

    def prepare(self, inputs: Inputs) -> str:
        """Unpacks the source, then the needed artifacts, into the workspace; returns the
        commit checked out for a git source ("" for a snapshot or none)."""
        source = inputs.source
        commit = ""
        if isinstance(source, Snapshot):
            what = "source snapshot"
            chunks = self._download(source.sha256, source.size, what, Reason.SOURCE_FAILED)
            self._import(Reason.SOURCE_FAILED, what, chunks)
        elif isinstance(source, GitSource):
            commit = self._checkout(source)
        if inputs.needed:
            self._import(Reason.ARTIFACTS_FAILED, "needed artifacts", self._tar(inputs.needed))
        return commit

    def unmatched(self, inputs: Inputs) -> list[str]:
        """The job's artifact globs that match no file in the workspace now.

        [] when the workspace cannot be read: collecting will say what is wrong."""
        patterns = list(inputs.artifact_paths)
        if not patterns:
            return []
        try:
            with self._executor.open_workspace(self._info) as workspace:
                names = workspace.names()
        except ExecutorError as error:
            LOGGER.warning(
                "attempt %d: cannot list the workspace: %s", self._info.attempt_id, error
            )
            return []
        return [p for p in patterns if not any(paths.glob_match(p, n) for n in names)]

    def collect(self, inputs: Inputs) -> int:
        """Uploads every workspace file matching the job's artifact globs; returns the count."""
        patterns = list(inputs.artifact_paths)
        if not patterns:
            return 0
        try:
            with self._executor.open_workspace(self._info) as workspace:
                names = workspace.names()
                chosen = sorted(n for n in names if any(paths.glob_match(p, n) for p in patterns))
                for name in chosen:
                    self._upload(workspace, set(names), name)
        except ExecutorError as error:
            raise TransferError(Reason.ARTIFACTS_FAILED, str(error)) from None
        except paths.UnsafePathError as error:
            raise TransferError(Reason.ARTIFACTS_FAILED, str(error)) from None
        LOGGER.info("attempt %d: %d artifacts stored", self._info.attempt_id, len(chosen))
        return len(chosen)

    # Into the workspace

    def _import(self, reason: str, what: str, chunks: Iterator[bytes]) -> None:
        failures: list[BaseException] = []

        def guarded() -> Iterator[bytes]:
            try:
                yield from chunks
            except BaseException as error:  # kept: the HTTP layer may hide it
                failures.append(error)
                raise

        try:
            self._executor.import_tar(self._info, guarded())
        except (ExecutorError, TransferError, gitsource.GitError, PeerError) as error:
            cause: BaseException = failures[0] if failures else error
            if isinstance(cause, (FencedError, TransferError)):
                raise cause from None
            raise TransferError(reason, f"{what}: {cause}") from None
        if failures:
            raise failures[0]

    def _checkout(self, git: GitSource) -> str:
        with tempfile.TemporaryDirectory(prefix="conveyor-git-") as tmp:
            repo = Path(tmp) / "repo"
            try:
                commit = gitsource.fetch(
                    git.url, git.commit or git.ref, repo, allow_local=self._allow_local_git
                )
                committed_at_ms = gitsource.commit_time_ms(repo, commit)
            except gitsource.GitError as error:
                raise TransferError(Reason.SOURCE_FAILED, str(error)) from None
            self._peer.report_source(self._lease, commit, committed_at_ms)
            self._import(Reason.SOURCE_FAILED, "git checkout", gitsource.archive(repo, commit))
        return commit

    def _download(
        self, digest: str, size: int, what: str, reason: str = Reason.ARTIFACTS_FAILED
    ) -> Iterator[bytes]:
        hasher, received = hashlib.sha256(), 0
        stream = self._peer.download(self._lease, digest)
        try:
            for data in stream:
                if self._stop.is_set():
                    raise StoppedError(what)
                hasher.update(data)
                received += len(data)
                yield data
        except PeerError as error:
            raise TransferError(reason, f"{what}: {error.detail}") from None
        finally:
            stream.close()  # after an early end, cancels the download
        if hasher.hexdigest() != digest or received != size:
            raise TransferError(
                reason,
                f"{what}: digest mismatch (expected {digest} of {size} bytes, "
                f"got {hasher.hexdigest()} of {received})",
            )

    def _tar(self, needed: Iterable[NeededArtifact]) -> Iterator[bytes]:
        """A tar stream of the needed artifacts, written as their bytes arrive."""
        now = int(time.time())
        for artifact in needed:
            name = paths.check_name(artifact.name)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = artifact.size, artifact.mode or 0o644, now
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            what = f"artifact {name!r} of job {artifact.job!r}"
            yield from self._download(artifact.sha256, artifact.size, what)
            if artifact.size % _TAR_BLOCK:
                yield b"\0" * (_TAR_BLOCK - artifact.size % _TAR_BLOCK)
        yield b"\0" * (2 * _TAR_BLOCK)

    # Out of the workspace

    def _upload(self, workspace: WorkspaceReader, listed: set[str], name: str) -> None:
        target = name
        for _ in range(MAX_SYMLINK_HOPS):
            with workspace.read(target) as entry:
                if entry.kind is FileKind.SYMLINK:
                    target = self._follow(name, target, entry.link_target, listed)
                    continue
                if entry.kind is not FileKind.FILE:
                    raise paths.UnsafePathError(f"artifact {name!r}: not a regular file")
                self._send(workspace, name, target, entry)
                return
        raise paths.UnsafePathError(f"artifact {name!r}: too many levels of symlinks")

    @staticmethod
    def _follow(name: str, link: str, target: str, listed: set[str]) -> str:
        try:
            resolved = paths.resolve_link(link, target)
        except paths.UnsafePathError:
            raise paths.UnsafePathError(
                f"artifact {name!r}: symlink points outside the workspace ({target})"
            ) from None
        # A listed parent is a symlink (listings hold files and links only): its target is
        # unchecked, so the engine could resolve it anywhere.
        parts = resolved.split("/")
        if any("/".join(parts[:i]) in listed for i in range(1, len(parts))):
            raise paths.UnsafePathError(
                f"artifact {name!r}: symlink goes through another symlink ({target})"
            )
        return resolved

    def _send(
        self, workspace: WorkspaceReader, name: str, target: str, entry: WorkspaceFile
    ) -> None:
        """Uploads `entry` (artifact `name`, the file at `target`); a try after the first
        reads the file again from the workspace."""
        unread = [entry.chunks]

        def guarded(chunks: Iterator[bytes]) -> Iterator[bytes]:
            for data in chunks:
                if self._stop.is_set():
                    raise StoppedError(f"artifact {name!r}")
                yield data

        @contextlib.contextmanager
        def open_chunks() -> Iterator[Iterable[bytes]]:
            if unread:
                yield guarded(unread.pop())
                return
            LOGGER.info("attempt %d: uploading %r again", self._info.attempt_id, name)
            with workspace.read(target) as again:
                yield guarded(again.chunks)

        artifact = ArtifactFile(name, entry.size, entry.mode)
        try:
            self._peer.upload_artifact(self._lease, artifact, open_chunks, give_up=self._stop)
        except PeerError as error:
            if self._stop.is_set():
                raise StoppedError(f"artifact {name!r}") from None
            why = "the coordinator stayed unreachable" if error.transient else "refused"
            raise TransferError(
                Reason.ARTIFACTS_FAILED, f"artifact {name!r} could not be uploaded ({why}): {error}"
            ) from None


__all__ = ["TransferError", "Transfers"]
