"""Many followers of one build in one process: WatchBuild and ReadLogs streams over real gRPC.

Half the streams are `WatchBuild` with logs (what `conveyor run` shows), half `ReadLogs` with
follow (what `conveyor logs -f` reads). They share a few channels, as a proxy or a dashboard
would; each stream counts what it received until the build ends or the parent says stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import grpc

from benchkit.procs import CLIENT_TOKEN
from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc

STREAMS_PER_CHANNEL = 50
# The parent is polled this often for its stop signal.
STOP_POLL_S = 0.2


@dataclass
class StreamStats:
    opened: int = 0  # streams that received their first message
    errors: list[str] = field(default_factory=list)
    received: int = 0  # log bytes, all streams together
    seconds: float = 0.0  # from every stream's first message to the stop


async def _watch(
    stub: control_pb2_grpc.ControlServiceAsyncStub, build_id: int, stats: StreamStats
) -> int:
    """Log bytes received until the build is final."""
    request = control_pb2.WatchBuildRequest(build_id=build_id, include_logs=True)
    received, first = 0, True
    async for event in stub.WatchBuild(request, metadata=wire.bearer(CLIENT_TOKEN)):
        stats.opened += first
        first = False
        size = len(event.log.data) if event.HasField("log") else 0
        received += size
        stats.received += size
    return received


async def _read(
    stub: control_pb2_grpc.ControlServiceAsyncStub, build_id: int, job: str, stats: StreamStats
) -> int:
    """Log bytes of the job received until its steps ended."""
    request = control_pb2.ReadLogsRequest(build_id=build_id, job=job, follow=True)
    received, first = 0, True
    async for chunk in stub.ReadLogs(request, metadata=wire.bearer(CLIENT_TOKEN)):
        stats.opened += first
        first = False
        received += len(chunk.data)
        stats.received += len(chunk.data)
    return received


async def _follow_all(
    address: str, build_id: int, job: str, count: int, ready: Queue[object], stop: Event
) -> StreamStats:
    stats = StreamStats()
    channels = [
        grpc.aio.insecure_channel(address, options=list(wire.CHANNEL_OPTIONS))
        for _ in range(0, count, STREAMS_PER_CHANNEL)
    ]
    tasks: list[asyncio.Task[int]] = []
    for index in range(count):
        stub = control_pb2_grpc.ControlServiceStub(channels[index // STREAMS_PER_CHANNEL])
        follow = (
            _watch(stub, build_id, stats) if index % 2 == 0 else _read(stub, build_id, job, stats)
        )
        tasks.append(asyncio.create_task(follow))
    announced, since, from_bytes = False, 0.0, 0
    while not stop.is_set() and not all(task.done() for task in tasks):
        settled = stats.opened + sum(task.done() for task in tasks)  # a refused one is done
        if not announced and settled >= count:
            ready.put(stats.opened)
            announced, since, from_bytes = True, time.monotonic(), stats.received
        await asyncio.sleep(STOP_POLL_S)
    if announced:  # what arrived once every stream was open, and over how long
        stats.seconds, stats.received = time.monotonic() - since, stats.received - from_bytes
    ended_before = {task for task in tasks if task.done()}
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except grpc.aio.AioRpcError as error:
                # A stream read when we canceled its task ends CANCELLED: that was us.
                ours = task not in ended_before and error.code() is grpc.StatusCode.CANCELLED
                if not ours:
                    stats.errors.append(f"{error.code().name}: {error.details()}")
    for channel in channels:
        await channel.close(None)
    return stats


def follow_main(
    address: str, build_id: int, job: str, count: int, ready: Queue[object], stop: Event
) -> None:
    """The child process: puts how many streams opened on `ready` once every stream has its
    first message (or was refused), then the final StreamStats once `stop` is set (or every
    stream ended)."""
    stats = asyncio.run(_follow_all(address, build_id, job, count, ready, stop))
    ready.put(stats)
