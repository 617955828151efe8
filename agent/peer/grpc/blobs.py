"""Blob streams over gRPC: one download, one artifact upload. Bytes are never held whole."""

from __future__ import annotations

import contextlib
import hashlib
import queue
from collections.abc import Generator, Iterable

import grpc

from agent.config import TRANSFER_TIMEOUT_S, UPLOAD_POLL_S, UPLOAD_QUEUE_CHUNKS
from agent.peer.grpc.errors import to_peer_error
from conveyor import wire
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc

_Outbox = queue.Queue[blobs_pb2.UploadChunk | None]


def download(
    stub: blobs_pb2_grpc.AgentBlobServiceStub,
    session: wire.Metadata,
    request: blobs_pb2.AgentDownloadRequest,
) -> Generator[bytes, None, None]:
    stream = stub.DownloadBlob(request, metadata=session, timeout=TRANSFER_TIMEOUT_S)
    try:
        for chunk in stream:
            yield chunk.data
    except grpc.RpcError as error:
        raise to_peer_error(error) from None
    finally:
        stream.cancel()  # type: ignore[no-untyped-call]  # ends the call if we stopped reading early


def upload(
    stub: blobs_pb2_grpc.AgentBlobServiceStub,
    session: wire.Metadata,
    header: blobs_pb2.UploadHeader,
    chunks: Iterable[bytes],
) -> None:
    """Streams one file up. Only the calling thread reads `chunks`; gRPC's sending thread
    reads a small queue, so a refused upload never leaves the source stream mid-read.

    A failed call raises its `grpc.RpcError` as is: the caller decides whether to try again."""
    outbox: _Outbox = queue.Queue(UPLOAD_QUEUE_CHUNKS)
    call = stub.UploadArtifact.future(
        iter(outbox.get, None), metadata=session, timeout=TRANSFER_TIMEOUT_S
    )
    try:
        if _offer(outbox, blobs_pb2.UploadChunk(header=header), call):
            hasher = hashlib.sha256()
            for data in chunks:
                hasher.update(data)
                if not _offer(outbox, blobs_pb2.UploadChunk(data=data), call):
                    break
            else:
                _offer(outbox, blobs_pb2.UploadChunk(sha256=hasher.hexdigest()), call)
    except BaseException:
        call.cancel()  # type: ignore[no-untyped-call]
        raise
    finally:
        _close(outbox, call)
    call.result()


def _offer(
    outbox: _Outbox,
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


def _close(outbox: _Outbox, call: grpc.Future[blobs_pb2.UploadArtifactResponse]) -> None:
    """Ends the request stream. Queued chunks are dropped to make room only once the call has
    ended: while it lives they are still to be sent (dropping one then lost the header of an
    upload whose sender had fallen behind)."""
    while True:
        try:
            outbox.put(None, timeout=UPLOAD_POLL_S)
            return
        except queue.Full:
            if call.done():
                with contextlib.suppress(queue.Empty):
                    outbox.get_nowait()
