"""The artifact upload's request stream keeps its order when gRPC's sender falls behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, cast

from agent.config import UPLOAD_QUEUE_CHUNKS
from agent.peer.grpc.blobs import upload
from conveyor.v1 import blobs_pb2, blobs_pb2_grpc


class _SlowSender:
    """Stands in for the stub: its sending thread starts reading the requests late."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.received: list[str] = []

    def future(self, requests: Iterator[blobs_pb2.UploadChunk], **_: Any) -> Future[object]:
        done: Future[object] = Future()

        def send() -> None:
            time.sleep(self.delay_s)
            self.received = [chunk.WhichOneof("part") or "" for chunk in requests]
            done.set_result(blobs_pb2.UploadArtifactResponse())

        threading.Thread(target=send, daemon=True).start()
        return done


def test_a_sender_that_falls_behind_still_gets_the_header_first_and_every_chunk() -> None:
    sender = _SlowSender(delay_s=0.5)
    stub = cast(blobs_pb2_grpc.AgentBlobServiceStub, type("Stub", (), {"UploadArtifact": sender}))
    # Header, data and trailer fill the queue exactly: closing the stream must wait, not drop one.
    data = [b"x" * 10 for _ in range(UPLOAD_QUEUE_CHUNKS - 2)]
    upload(stub, (), blobs_pb2.UploadHeader(name="a.bin", size=20), data)
    assert sender.received == ["header", *["data"] * len(data), "sha256"]
