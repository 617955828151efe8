"""The CLI's side of sources and artifacts: snapshot upload, listing, verified downloads, gc."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import grpc

from conveyor import wire
from conveyor.cli.client import CALL_TIMEOUT_S, Client
from conveyor.cli.errors import EXIT_FAILED, CliError
from conveyor.cli.snapshot import make_snapshot
from conveyor.paths import UnsafePathError, check_name, safe_destination
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc

CHUNK_BYTES = 1024 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class Uploaded:
    sha256: str
    size: int
    files: int
    sent: bool  # False: the coordinator had it already


class Transfers:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._channel = wire.channel(client.address, client.target.root_ca, transfers=True)
        self._stub = blobs_pb2_grpc.BlobServiceStub(self._channel)

    def _rpc(self, method: Callable[..., T], request: object) -> T:
        try:
            return method(request, metadata=self._client.metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            raise self._client.explain(error) from None

    def upload_source(self, directory: Path) -> Uploaded:
        try:
            snapshot = make_snapshot(directory)
        except OSError as error:
            raise CliError(f"--source {directory}: {error}") from None
        try:
            reply = self._rpc(self._stub.HasBlob, blobs_pb2.HasBlobRequest(sha256=snapshot.sha256))
            if reply.present:
                return Uploaded(snapshot.sha256, snapshot.size, snapshot.files, sent=False)
            try:
                self._stub.UploadSource(
                    _upload_messages(snapshot.path, snapshot.size, snapshot.sha256),
                    metadata=self._client.metadata,
                )
            except grpc.RpcError as error:
                raise self._client.explain(error) from None
            return Uploaded(snapshot.sha256, snapshot.size, snapshot.files, sent=True)
        finally:
            snapshot.path.unlink(missing_ok=True)

    def list(self, build_id: int) -> blobs_pb2.ListArtifactsResponse:
        reply = self._rpc(
            self._stub.ListArtifacts, blobs_pb2.ListArtifactsRequest(build_id=build_id)
        )
        assert isinstance(reply, blobs_pb2.ListArtifactsResponse)
        return reply

    def collect(self, older_than_s: float) -> blobs_pb2.CollectGarbageResponse:
        request = blobs_pb2.CollectGarbageRequest(older_than_ms=int(older_than_s * 1000))
        return self._rpc(self._stub.CollectGarbage, request)

    def download(self, build_id: int, artifact: blobs_pb2.Artifact, root: Path) -> Path:
        """Writes one artifact to ROOT/JOB/NAME, verified; nothing is visible unless it matches."""
        try:
            name = check_name(f"{check_name(artifact.job, 'job')}/{check_name(artifact.name)}")
            destination = safe_destination(root, name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            # mkdir may have followed nothing new, but check again now the directories exist.
            destination = safe_destination(root, name)
        except UnsafePathError as error:
            raise CliError(f"refused: {error}", EXIT_FAILED) from None
        request = blobs_pb2.DownloadArtifactRequest(build_id=build_id, sha256=artifact.sha256)
        with _temp_beside(destination) as (handle, temp):
            hasher = self._receive(request, artifact, handle)
            if hasher.hexdigest() != artifact.sha256:
                raise CliError(
                    f"artifact {artifact.name!r} of job {artifact.job!r}: digest mismatch "
                    f"(expected {artifact.sha256}, got {hasher.hexdigest()}); not written",
                    EXIT_FAILED,
                )
            # Permission bits only: never setuid or setgid from a build.
            os.chmod(temp, (artifact.mode or 0o644) & 0o777)
            os.replace(temp, destination)
        return destination

    def _receive(
        self,
        request: blobs_pb2.DownloadArtifactRequest,
        artifact: blobs_pb2.Artifact,
        out: BinaryIO,
    ) -> hashlib._Hash:
        """Writes the streamed bytes to `out`, never more than the announced size: a stream
        that goes past it is cancelled before the chunk that would cross it is written."""
        hasher, received = hashlib.sha256(), 0
        stream = self._stub.DownloadArtifact(request, metadata=self._client.metadata)
        try:
            for chunk in stream:
                received += len(chunk.data)
                if received > artifact.size:
                    raise CliError(
                        f"artifact {artifact.name!r} of job {artifact.job!r}: the coordinator "
                        f"sent more than the announced {artifact.size} bytes; download aborted, "
                        "nothing written",
                        EXIT_FAILED,
                    )
                hasher.update(chunk.data)
                out.write(chunk.data)
        except grpc.RpcError as error:
            raise self._client.explain(error) from None
        finally:
            stream.cancel()  # type: ignore[no-untyped-call]  # the server stops sending
        out.flush()
        return hasher


@contextlib.contextmanager
def _temp_beside(destination: Path) -> Iterator[tuple[BinaryIO, Path]]:
    fd, name = tempfile.mkstemp(dir=destination.parent, prefix=".conveyor-download-")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, temp
    finally:
        temp.unlink(missing_ok=True)


def _upload_messages(path: Path, size: int, sha256: str) -> Iterator[blobs_pb2.UploadChunk]:
    yield blobs_pb2.UploadChunk(header=blobs_pb2.UploadHeader(name="source.tar", size=size))
    with path.open("rb") as handle:
        while data := handle.read(CHUNK_BYTES):
            yield blobs_pb2.UploadChunk(data=data)
    yield blobs_pb2.UploadChunk(sha256=sha256)
