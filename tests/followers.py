"""Many followers of one build, in a child process: half WatchBuild with logs, half ReadLogs
with follow, over real gRPC on a few channels. Each stream checks what it got: every log byte
once and in order, and (a watch) the build's final state last."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from multiprocessing.queues import Queue

import grpc

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc, types_pb2
from tests.harness import CLIENT_TOKEN

STREAMS_PER_CHANNEL = 50
READY_POLL_S = 0.1


@dataclass(frozen=True)
class Plan:
    address: str
    build_id: int
    job: str
    count: int
    expected_log: bytes


@dataclass
class Outcome:
    """What the followers saw; `problems` names each stream that saw something wrong."""

    complete: int = 0  # streams that saw every byte in order (and, watches, the final state)
    problems: list[str] = field(default_factory=list)


class _Stream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.received = bytearray()
        self.first = asyncio.Event()
        self.problem = ""

    def take(self, offset: int, data: bytes) -> None:
        if offset != len(self.received) and not self.problem:
            self.problem = f"{self.name}: a chunk at {offset} after {len(self.received)} bytes"
        self.received += data


async def _watch(stub: control_pb2_grpc.ControlServiceAsyncStub, plan: Plan, s: _Stream) -> str:
    request = control_pb2.WatchBuildRequest(build_id=plan.build_id, include_logs=True)
    status = types_pb2.BUILD_STATUS_UNSPECIFIED
    async for event in stub.WatchBuild(request, metadata=wire.bearer(CLIENT_TOKEN)):
        s.first.set()
        if event.HasField("log"):
            s.take(event.log.offset, event.log.data)
        else:
            status = event.snapshot.status
    if status != types_pb2.BUILD_STATUS_SUCCEEDED:
        return f"{s.name}: the last snapshot says {types_pb2.BuildStatus.Name(status)}"
    return ""


async def _read(stub: control_pb2_grpc.ControlServiceAsyncStub, plan: Plan, s: _Stream) -> str:
    request = control_pb2.ReadLogsRequest(build_id=plan.build_id, job=plan.job, follow=True)
    async for chunk in stub.ReadLogs(request, metadata=wire.bearer(CLIENT_TOKEN)):
        s.first.set()
        s.take(chunk.offset, chunk.data)
    return ""


async def _follow(
    stub: control_pb2_grpc.ControlServiceAsyncStub, plan: Plan, s: _Stream, watch: bool
) -> str:
    try:
        problem = await (_watch(stub, plan, s) if watch else _read(stub, plan, s))
    except grpc.aio.AioRpcError as error:
        problem = f"{s.name}: {error.code().name}: {error.details()}"
    finally:
        s.first.set()  # a failed stream is settled too
    if s.problem or problem:
        return s.problem or problem
    if bytes(s.received) != plan.expected_log:
        return f"{s.name}: got {len(s.received)} bytes, not the {len(plan.expected_log)} written"
    return ""


async def _run(plan: Plan, reports: Queue[object]) -> Outcome:
    channels = [
        grpc.aio.insecure_channel(plan.address, options=list(wire.CHANNEL_OPTIONS))
        for _ in range(0, plan.count, STREAMS_PER_CHANNEL)
    ]
    streams = [_Stream(f"stream {i}") for i in range(plan.count)]
    tasks = [
        asyncio.create_task(
            _follow(
                control_pb2_grpc.ControlServiceStub(channels[i // STREAMS_PER_CHANNEL]),
                plan,
                stream,
                watch=i % 2 == 0,
            )
        )
        for i, stream in enumerate(streams)
    ]
    await asyncio.gather(*(stream.first.wait() for stream in streams))
    reports.put(plan.count)  # every stream has had its first message (or failed)
    outcome = Outcome()
    for problem in await asyncio.gather(*tasks):
        if problem:
            outcome.problems.append(problem)
        else:
            outcome.complete += 1
    for channel in channels:
        await channel.close(None)
    return outcome


def follow_main(plan: Plan, reports: Queue[object]) -> None:
    """The child: puts the count once every stream is open, then the Outcome once all ended."""
    reports.put(asyncio.run(_run(plan, reports)))
