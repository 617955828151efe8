"""Simulated agents: speak the agent protocol over gRPC with a no-op executor, many per process.

Each simulated agent registers, long-polls with one free slot, and for every assignment reports
each step started and finished (with an empty log; the last step's end inside the attempt's
finish) and the attempt succeeded — what a real agent sends for steps that do nothing. Claim
latency is the PollWork round trip of polls that brought work, seen from the agent.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc

from benchkit.config import AGENTS_PER_CHANNEL
from benchkit.procs import AGENT_TOKEN
from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc, types_pb2

CALL_TIMEOUT_S = 60.0


@dataclass
class LoadStats:
    claim_latencies_s: list[float] = field(default_factory=list)
    dispatches: int = 0
    errors: int = 0


@dataclass
class _SimAgent:
    stub: agent_pb2_grpc.AgentServiceAsyncStub
    metadata: wire.Metadata
    poll_timeout_s: float
    finish_takes_last_step: bool
    busy: bool = False  # between receiving an assignment and reporting it finished


async def _register(stub: agent_pb2_grpc.AgentServiceAsyncStub, name: str) -> _SimAgent:
    reply = await stub.Register(
        agent_pb2.RegisterRequest(
            join_token=AGENT_TOKEN, name=name, capacity=1, protocol_version=PROTOCOL_VERSION
        ),
        timeout=CALL_TIMEOUT_S,
    )
    return _SimAgent(
        stub,
        wire.bearer(reply.session_token),
        reply.poll_timeout_ms / 1000,
        reply.finish_takes_last_step,
    )


async def _run_noop(agent: _SimAgent, assignment: agent_pb2.Assignment) -> None:
    """Reports as a real agent does: each step started and ended, the last step's end inside
    the attempt's finish when the coordinator takes it there."""
    lease, md, stub = assignment.lease, agent.metadata, agent.stub
    last: agent_pb2.FinishStepRequest | None = None
    for index in range(len(assignment.steps)):
        request = agent_pb2.StartStepRequest(lease=lease, step_index=index)
        await stub.StartStep(request, metadata=md, timeout=CALL_TIMEOUT_S)
        finished = agent_pb2.FinishStepRequest(
            lease=lease, step_index=index, outcome=types_pb2.OUTCOME_SUCCEEDED, has_exit_code=True
        )
        if agent.finish_takes_last_step and index == len(assignment.steps) - 1:
            last = finished
        else:
            await stub.FinishStep(finished, metadata=md, timeout=CALL_TIMEOUT_S)
    done = agent_pb2.FinishAttemptRequest(
        lease=lease, outcome=types_pb2.OUTCOME_SUCCEEDED, has_exit_code=True, last_step=last
    )
    await stub.FinishAttempt(done, metadata=md, timeout=CALL_TIMEOUT_S)


async def _serve(
    agent: _SimAgent, stats: LoadStats, hold_s: float, stopping: asyncio.Event
) -> None:
    request = agent_pb2.PollWorkRequest(free_slots=1)
    timeout_s = agent.poll_timeout_s + CALL_TIMEOUT_S
    while not stopping.is_set():
        started = time.perf_counter()
        try:
            reply = await agent.stub.PollWork(request, metadata=agent.metadata, timeout=timeout_s)
            if not reply.assignments:
                continue
            agent.busy = True
            stats.claim_latencies_s.append(time.perf_counter() - started)
            for assignment in reply.assignments:
                if hold_s:
                    await asyncio.sleep(hold_s)  # the job's run time; 0 is a no-op step
                await _run_noop(agent, assignment)
                stats.dispatches += 1
        except grpc.aio.AioRpcError:
            stats.errors += 1
            await asyncio.sleep(0.5)
        finally:
            agent.busy = False


class LoadGenerator:
    """`count` simulated agents against the coordinator at `address`."""

    def __init__(self, address: str, count: int) -> None:
        self._address, self._count = address, count
        self._channels: list[grpc.aio.Channel] = []
        self._agents: list[_SimAgent] = []
        self.stats = LoadStats()

    async def register(self) -> None:
        for first in range(0, self._count, AGENTS_PER_CHANNEL):
            channel = grpc.aio.insecure_channel(self._address, options=list(wire.CHANNEL_OPTIONS))
            self._channels.append(channel)
            stub: agent_pb2_grpc.AgentServiceAsyncStub = agent_pb2_grpc.AgentServiceStub(channel)
            names = range(first, min(first + AGENTS_PER_CHANNEL, self._count))
            self._agents += await asyncio.gather(*(_register(stub, f"sim-{n}") for n in names))

    async def drain(self, jobs: int, limit_s: float, hold_s: float = 0.0) -> float:
        """Serves until `jobs` were dispatched or `limit_s` passed; returns the seconds taken.

        Each job takes `hold_s` before it is reported finished. With 0 the agents poll again at
        once: the coordinator is saturated and claims wait in its queue (latency = agents/rate).
        """
        self.stats = LoadStats()
        stopping = asyncio.Event()
        started = time.perf_counter()
        tasks = {
            id(agent): (agent, asyncio.create_task(_serve(agent, self.stats, hold_s, stopping)))
            for agent in self._agents
        }
        try:
            while self.stats.dispatches < jobs and time.perf_counter() - started < limit_s:
                await asyncio.sleep(0.02)
            return time.perf_counter() - started
        finally:
            # Busy agents finish their job, so no lease is left behind; waiting polls are dropped.
            stopping.set()
            for agent, task in tasks.values():
                if not agent.busy:
                    task.cancel()
            await asyncio.gather(*(task for _, task in tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
