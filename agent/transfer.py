"""Sources and artifacts of one attempt: what goes into the workspace before the first step and
what comes out after the last, streamed between the coordinator and the workspace volume.

Bytes are never held whole: downloads stream from gRPC into `Executor.import_tar`, uploads from
`Executor.open_workspace` into a client-streaming call, both with their sha256 checked here and
again on the coordinator.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc

from agent import gitsource
from agent.client import CoordinatorClient, FencedError
from agent.config import (
    MAX_SYMLINK_HOPS,
    TRANSFER_TIMEOUT_S,
    UPLOAD_POLL_S,
    UPLOAD_QUEUE_CHUNKS,
)
from agent.executors.base import AttemptInfo, Executor, ExecutorError, FileKind, WorkspaceReader
from conveyor import paths
from conveyor.states import Reason
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc, types_pb2

LOGGER = logging.getLogger(__name__)
_TAR_BLOCK = 512


class TransferError(Exception):
    """Ends the attempt: `reason` is its short code, the message says what and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _details(error: grpc.RpcError) -> str:
    return (error.details() if isinstance(error, grpc.Call) else "") or str(error)


def _reraise_fenced(error: grpc.RpcError) -> None:
    if isinstance(error, grpc.Call) and error.code() is grpc.StatusCode.FAILED_PRECONDITION:
        raise FencedError(_details(error)) from None


class StoppedError(TransferError):
    """The attempt was stopped while bytes moved; its stop verdict applies."""

    def __init__(self, what: str) -> None:
        super().__init__(Reason.CANCELED, f"stopped while transferring {what}")


class Transfers:
    def __init__(
        self,
        client: CoordinatorClient,
        executor: Executor,
        info: AttemptInfo,
        lease: types_pb2.Lease,
        stop: threading.Event,
    ) -> None:
        """`stop` (cancel, agent stopping, lease lost) ends a transfer between two chunks."""
        self._stop = stop
        self._client = client
        self._executor = executor
        self._info = info
        self._lease = lease
        self._stub = blobs_pb2_grpc.AgentBlobServiceStub(client.transfer_channel)

    def inputs(self) -> blobs_pb2.GetInputsResponse:
        request = blobs_pb2.GetInputsRequest(lease=self._lease)
        return self._client.call(self._stub.GetInputs, request)

    def prepare(self, inputs: blobs_pb2.GetInputsResponse) -> None:
        """Unpacks the source, then the needed artifacts, into the workspace."""
        kind = inputs.WhichOneof("source")
        if kind == "snapshot_sha256":
            self._import(
                Reason.SOURCE_FAILED,
                "source snapshot",
                self._download(
                    inputs.snapshot_sha256,
                    inputs.snapshot_size,
                    "source snapshot",
                    Reason.SOURCE_FAILED,
                ),
            )
        elif kind == "git":
            self._checkout(inputs.git)
        if inputs.needed:
            self._import(Reason.ARTIFACTS_FAILED, "needed artifacts", self._tar(inputs.needed))

    def collect(self, inputs: blobs_pb2.GetInputsResponse) -> int:
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
        except (ExecutorError, TransferError, gitsource.GitError, grpc.RpcError) as error:
            cause: BaseException = failures[0] if failures else error
            if isinstance(cause, (FencedError, TransferError)):
                raise cause from None
            raise TransferError(reason, f"{what}: {cause}") from None
        if failures:
            raise failures[0]

    def _checkout(self, git: blobs_pb2.GitSource) -> None:
        with tempfile.TemporaryDirectory(prefix="conveyor-git-") as tmp:
            repo = Path(tmp) / "repo"
            try:
                commit = gitsource.fetch(git.url, git.commit or git.ref, repo)
            except gitsource.GitError as error:
                raise TransferError(Reason.SOURCE_FAILED, str(error)) from None
            request = blobs_pb2.ReportSourceRequest(lease=self._lease, commit=commit)
            self._client.call(self._stub.ReportSource, request)
            self._import(Reason.SOURCE_FAILED, "git checkout", gitsource.archive(repo, commit))

    def _download(
        self, digest: str, size: int, what: str, reason: str = Reason.ARTIFACTS_FAILED
    ) -> Iterator[bytes]:
        request = blobs_pb2.AgentDownloadRequest(lease=self._lease, sha256=digest)
        stream = self._client.call(self._open_download, request, timeout_s=TRANSFER_TIMEOUT_S)
        hasher, received = hashlib.sha256(), 0
        try:
            for chunk in stream:
                if self._stop.is_set():
                    stream.cancel()  # type: ignore[attr-defined]
                    raise StoppedError(what)
                hasher.update(chunk.data)
                received += len(chunk.data)
                yield chunk.data
        except grpc.RpcError as error:
            _reraise_fenced(error)
            raise TransferError(reason, f"{what}: {_details(error)}") from None
        if hasher.hexdigest() != digest or received != size:
            raise TransferError(
                reason,
                f"{what}: digest mismatch (expected {digest} of {size} bytes, "
                f"got {hasher.hexdigest()} of {received})",
            )

    def _open_download(
        self, request: blobs_pb2.AgentDownloadRequest, metadata: object, timeout: float
    ) -> Iterable[blobs_pb2.BlobChunk]:
        return self._stub.DownloadBlob(request, metadata=metadata, timeout=timeout)  # type: ignore[arg-type]

    def _tar(self, needed: Iterable[blobs_pb2.Artifact]) -> Iterator[bytes]:
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
                self._send(name, entry.size, entry.mode, entry.chunks)
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

    def _send(self, name: str, size: int, mode: int, chunks: Iterator[bytes]) -> None:
        """Streams one file up. Only this thread reads the workspace; gRPC's sending thread
        reads a small queue, so a refused upload never leaves the engine's stream mid-read."""
        outbox: queue.Queue[blobs_pb2.UploadChunk | None] = queue.Queue(UPLOAD_QUEUE_CHUNKS)
        header = blobs_pb2.UploadHeader(lease=self._lease, name=name, size=size, mode=mode)
        # Not retried: the workspace stream is read once; a failed upload fails the attempt,
        # which the job's retry rule may run again.
        call = self._stub.UploadArtifact.future(
            iter(outbox.get, None), metadata=self._client.session, timeout=TRANSFER_TIMEOUT_S
        )
        try:
            if _offer(outbox, blobs_pb2.UploadChunk(header=header), call):
                hasher = hashlib.sha256()
                for data in chunks:
                    if self._stop.is_set():
                        call.cancel()  # type: ignore[no-untyped-call]
                        raise StoppedError(f"artifact {name!r}")
                    hasher.update(data)
                    if not _offer(outbox, blobs_pb2.UploadChunk(data=data), call):
                        break
                else:
                    _offer(outbox, blobs_pb2.UploadChunk(sha256=hasher.hexdigest()), call)
        finally:
            _close(outbox)
        try:
            call.result()
        except grpc.RpcError as error:
            _reraise_fenced(error)
            raise TransferError(Reason.ARTIFACTS_FAILED, _details(error)) from None


def _offer(
    outbox: queue.Queue[blobs_pb2.UploadChunk | None],
    item: blobs_pb2.UploadChunk,
    call: grpc.Future[blobs_pb2.UploadArtifactResponse],
) -> bool:
    """Queues `item` for sending; False once the call has ended (refused, failed)."""
    while not call.done():
        try:
            outbox.put(item, timeout=UPLOAD_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _close(outbox: queue.Queue[blobs_pb2.UploadChunk | None]) -> None:
    """Ends the request stream, making room if the call stopped reading it."""
    while True:
        try:
            outbox.put_nowait(None)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                outbox.get_nowait()


__all__ = ["TransferError", "Transfers"]
