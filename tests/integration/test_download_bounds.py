"""`conveyor artifacts --download` writes at most the announced size: against a real gRPC
server that announces N bytes and then sends far more, the real CLI stops at N, deletes the
partial file, says so in one line and exits 1."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from conveyor.v1 import blobs_pb2, blobs_pb2_grpc
from tests.harness import CLI

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

ANNOUNCED_BYTES = 100_000
CHUNK_BYTES = 64 * 1024
# How much a lying server may push: far past the announced size, bounded so a test ends.
LIE_BYTES = 64 * 1024 * 1024
# How long the server keeps watching the client's file after its own bytes crossed the size.
WATCH_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 120.0


class LyingBlobs(blobs_pb2_grpc.BlobServiceServicer):
    """Lists one artifact of ANNOUNCED_BYTES and then streams LIE_BYTES for it, watching the
    size of every file the client writes into `watched` while it does."""

    def __init__(self, watched: Path) -> None:
        self.watched = watched
        self.largest_seen = 0
        self.sent = 0
        self.cancelled = threading.Event()

    def ListArtifacts(
        self, request: blobs_pb2.ListArtifactsRequest, context: grpc.ServicerContext
    ) -> blobs_pb2.ListArtifactsResponse:
        artifact = blobs_pb2.Artifact(
            job="build", name="app.bin", size=ANNOUNCED_BYTES, sha256="0" * 64, mode=0o644
        )
        return blobs_pb2.ListArtifactsResponse(artifacts=[artifact])

    def HasBlob(
        self, request: blobs_pb2.HasBlobRequest, context: grpc.ServicerContext
    ) -> blobs_pb2.HasBlobResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this test")

    def UploadSource(
        self, request_iterator: Iterator[blobs_pb2.UploadChunk], context: grpc.ServicerContext
    ) -> blobs_pb2.UploadSourceResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this test")

    def CollectGarbage(
        self, request: blobs_pb2.CollectGarbageRequest, context: grpc.ServicerContext
    ) -> blobs_pb2.CollectGarbageResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this test")

    def _look(self) -> None:
        for path in self.watched.rglob("*"):
            if path.is_file():
                self.largest_seen = max(self.largest_seen, path.stat().st_size)

    def DownloadArtifact(
        self, request: blobs_pb2.DownloadArtifactRequest, context: grpc.ServicerContext
    ) -> Iterator[blobs_pb2.BlobChunk]:
        context.add_callback(self.cancelled.set)
        data = b"x" * CHUNK_BYTES
        while self.sent < LIE_BYTES and context.is_active():
            yield blobs_pb2.BlobChunk(data=data)
            self.sent += len(data)
            self._look()
        # Give a client that keeps writing every chance to show it on disk before the end.
        deadline = time.monotonic() + WATCH_TIMEOUT_S
        while context.is_active() and time.monotonic() < deadline:
            self._look()
            if self.largest_seen > ANNOUNCED_BYTES:
                return
            self.cancelled.wait(0.05)


@pytest.fixture
def lying_server(tmp_path: Path) -> Iterator[tuple[str, LyingBlobs]]:
    servicer = LyingBlobs(tmp_path / "downloads")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    blobs_pb2_grpc.add_BlobServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_a_download_past_its_announced_size_stops_there(
    lying_server: tuple[str, LyingBlobs], tmp_path: Path
) -> None:
    address, servicer = lying_server
    downloads = servicer.watched
    command = [*CLI, "artifacts", "1", "--download", str(downloads)]
    result = subprocess.run(
        [*command, "--coordinator", address, "--token", "t"],
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    # The client never held more than it was told, and hung up long before the lie ran out.
    assert servicer.largest_seen <= ANNOUNCED_BYTES
    assert servicer.cancelled.wait(WATCH_TIMEOUT_S)
    assert servicer.sent < LIE_BYTES
    assert [p for p in downloads.rglob("*") if p.is_file()] == []
    stderr = result.stderr.decode()
    assert result.returncode == 1, (result.returncode, result.stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"announced {ANNOUNCED_BYTES} bytes" in lines[0], stderr
