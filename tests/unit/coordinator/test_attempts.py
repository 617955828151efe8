"""Attempts over fake ports: fencing, finishing once, what an end wakes, lease expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from conveyor import PROTOCOL_VERSION
from conveyor.states import Outcome, Reason, StepStatus
from coordinator.domain.attempts import Attempts, Claims
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.errors import FencedError
from coordinator.domain.leases import LeaseTable
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.records import AgentRecord, Assignment, AttemptEnd, LiveAttempt
from coordinator.domain.registry import AgentRegistry, AgentSession
from coordinator.domain.runtime import Runtime
from tests.unit.coordinator.fakes import FakeAttempts, Harness, MemoryLogs, coordinator, sealer

TTL = 10.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def agent_with_work(
    h: Harness, name: str = "n", jobs: int = 1
) -> tuple[AgentSession, Assignment]:
    registration = await h.core.agents.register(
        join_token="a",
        name=name,
        labels={},
        capacity=jobs,
        protocol_version=PROTOCOL_VERSION,
        running=(),
    )
    h.state.attempts.queued.extend((f"job-{i}", {}) for i in range(jobs))
    result = await h.core.agents.poll(registration.agent, free_slots=jobs, draining=False)
    return registration.agent, result.assignments[0]


def test_a_call_without_the_lease_is_fenced_and_reaches_no_store() -> None:
    async def main() -> None:
        h = coordinator()
        agent, work = await agent_with_work(h)
        with pytest.raises(FencedError):
            await h.core.attempts.start_step(agent, work.attempt_id, "stolen", 0)
        with pytest.raises(FencedError):
            await h.core.attempts.append_log(
                agent, work.attempt_id + 1, work.lease_token, 0, 0, b"x"
            )
        assert [c for c in h.state.attempts.calls if c[0] != "claim"] == []
        assert h.logs.logs == {}
        await h.core.close()

    run(main())


def test_finish_step_stores_the_step_status_and_the_log_length_held() -> None:
    async def main() -> None:
        h = coordinator()
        agent, work = await agent_with_work(h)
        await h.core.attempts.append_log(agent, work.attempt_id, work.lease_token, 1, 0, b"12345")
        await h.core.attempts.finish_step(
            agent, work.attempt_id, work.lease_token, 1, outcome=Outcome.FAILED, exit_code=3
        )
        assert h.state.attempts.calls[-1] == (
            "finish_step",
            work.attempt_id,
            1,
            StepStatus.FAILED,
            3,
            5,
        )
        assert h.logs.forgotten == [(work.attempt_id, 1)]
        await h.core.close()

    run(main())


def test_a_resent_finish_gets_the_first_answer_and_a_different_one_is_fenced() -> None:
    async def main() -> None:
        h = coordinator()
        agent, work = await agent_with_work(h)
        results = [
            await h.core.attempts.finish(
                agent,
                work.attempt_id,
                work.lease_token,
                outcome=Outcome.FAILED,
                reason=Reason.EXIT_CODE,
                message="m",
                exit_code=1,
            )
            for _ in range(2)
        ]
        assert results[0] == results[1]
        assert results[0].outcome is Outcome.FAILED
        assert len(h.state.attempts.finished()) == 1
        assert len(h.core.leases) == 0
        with pytest.raises(FencedError):
            await h.core.attempts.finish(
                agent,
                work.attempt_id,
                work.lease_token,
                outcome=Outcome.SUCCEEDED,
                reason="",
                message="",
                exit_code=0,
            )
        await h.core.close()

    run(main())


def test_an_end_that_queues_jobs_wakes_a_parked_agent_that_takes_them() -> None:
    async def main() -> None:
        h = coordinator(poll_timeout_s=5.0)
        agent, work = await agent_with_work(h)
        other = await h.core.agents.register(
            join_token="a",
            name="other",
            labels={"os": "linux"},
            capacity=1,
            protocol_version=PROTOCOL_VERSION,
            running=(),
        )
        parked = asyncio.create_task(h.core.agents.poll(other.agent, free_slots=1, draining=False))
        while not h.core.dispatcher.is_waiting(other.agent.id):
            await asyncio.sleep(0.001)
        h.state.attempts.queued.append(("after", {"os": "linux"}))
        h.state.attempts.ends[work.attempt_id] = AttemptEnd(
            1, Outcome.SUCCEEDED, "", jobs_queued=True, queued_labels=({"os": "linux"},)
        )
        await h.core.attempts.finish(
            agent,
            work.attempt_id,
            work.lease_token,
            outcome=Outcome.SUCCEEDED,
            reason="",
            message="",
            exit_code=0,
        )
        result = await asyncio.wait_for(parked, 2.0)
        assert [a.job_name for a in result.assignments] == ["after"]
        await h.core.close()

    run(main())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_reaper_ends_expired_attempts_only_and_silences_their_agent() -> None:
    async def main() -> None:
        clock, store, runtime = FakeClock(), FakeAttempts(), Runtime()
        leases, notifier = LeaseTable(TTL, clock=clock), BuildNotifier()
        registry = AgentRegistry(offline_after_s=45.0)
        dispatcher = Dispatcher(Claims(runtime, store, leases, notifier, sealer()))
        attempts = Attempts(
            runtime=runtime,
            store=store,
            logs=MemoryLogs(),
            leases=leases,
            registry=registry,
            dispatcher=dispatcher,
            notifier=notifier,
        )
        registry.remember(AgentRecord(7, "seven", {}, 2, "", 0), last_seen=1.0)
        store.running = [LiveAttempt(1, 7, 3, "t1", False), LiveAttempt(2, 7, 3, "t2", False)]
        assert await attempts.load() == 2
        clock.now += TTL - 1
        assert leases.renew(7, 2, "t2") is not None
        clock.now += 2  # attempt 1 is past its deadline; attempt 2 was renewed
        assert await attempts.expire_due() == 1
        assert store.finished() == [("finish", 1, Outcome.FAILED, Reason.AGENT_LOST)]
        assert leases.check_any(1) is None and leases.check_any(2) is not None
        assert await attempts.expire_due() == 0
        seven = registry.get(7)
        assert seven is not None and seven.silent and not seven.takes_work
        runtime.close()

    run(main())


def test_the_reaper_loop_stops_when_told() -> None:
    async def main() -> None:
        h = coordinator()
        stop = asyncio.Event()
        rounds = 0

        async def each_round() -> None:
            nonlocal rounds
            rounds += 1
            if rounds == 3:
                stop.set()

        await asyncio.wait_for(h.core.attempts.reap_forever(stop, 0.001, each_round), 2.0)
        assert rounds == 3
        await h.core.close()

    run(main())
