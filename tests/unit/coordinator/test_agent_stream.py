"""A session stream ended by a stopping server answers what it has read, then ends: the server's
stop waits for no open stream (it would wait out its whole grace period)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from conveyor.v1 import agent_pb2
from coordinator.domain.metrics import NoMetrics
from coordinator.domain.registry import AgentSession
from coordinator.edge.agent_calls import AgentCalls
from coordinator.edge.agent_stream import SessionStream

PROMPT_S = 5.0


class SlowCalls:
    """Answers StartStep after a moment, so a request is in hand when the stream is ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def start_step(
        self, agent: AgentSession, request: agent_pb2.StartStepRequest
    ) -> agent_pb2.StartStepResponse:
        self.started.set()
        await asyncio.sleep(0.05)
        return agent_pb2.StartStepResponse(cancel_requested=request.step_index == 7)

    def __getattr__(self, name: str) -> Any:
        async def unexpected(agent: AgentSession, request: object) -> object:
            raise AssertionError(f"unexpected call {name}")

        return unexpected


async def requests(never: asyncio.Event) -> AsyncIterator[agent_pb2.AgentMessage]:
    yield agent_pb2.AgentMessage(id=1, start_step=agent_pb2.StartStepRequest(step_index=7))
    await never.wait()  # the agent sends nothing more, and keeps its side open
    yield agent_pb2.AgentMessage(id=2)


def test_an_ended_stream_answers_the_request_in_hand_then_ends() -> None:
    async def main() -> None:
        calls = SlowCalls()
        stream = SessionStream(
            cast(AgentCalls, calls), lambda token: cast(AgentSession, object()), NoMetrics(), "t"
        )

        async def collect() -> list[agent_pb2.CoordinatorMessage]:
            return [reply async for reply in stream.replies(requests(asyncio.Event()))]

        replies = asyncio.create_task(collect())
        await asyncio.wait_for(calls.started.wait(), PROMPT_S)
        stream.end()
        (reply,) = await asyncio.wait_for(replies, PROMPT_S)
        assert (reply.id, reply.start_step.cancel_requested) == (1, True)

    asyncio.run(main())
