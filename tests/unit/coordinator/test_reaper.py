"""The lease reaper survives failed passes, is supervised, and says what it observed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import pytest

from conveyor.states import Outcome
from coordinator.domain.attempts import Attempts, Claims
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.leases import LeaseTable
from coordinator.domain.loops import Backoff, LoopDied, every, supervise
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.records import AgentRecord, AttemptEnd, LiveAttempt, StepFinish
from coordinator.domain.registry import AgentRegistry
from coordinator.domain.runtime import Runtime
from tests.unit.coordinator.fakes import FakeAttempts, MemoryLogs, sealer

TTL = 10.0
QUICK = Backoff(initial_s=0.01, max_s=0.02, jitter=0.0)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyAttempts(FakeAttempts):
    """A store whose first `failures` finishes fail, as a full disk makes them."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.messages: list[str] = []

    def finish(
        self,
        attempt_id: int,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None = None,
    ) -> AttemptEnd:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "database or disk is full")
        self.messages.append(message)
        return super().finish(
            attempt_id,
            outcome=outcome,
            reason=reason,
            message=message,
            exit_code=exit_code,
            step=step,
        )


def attempts_over(store: FakeAttempts, clock: FakeClock, runtime: Runtime) -> Attempts:
    leases, notifier = LeaseTable(TTL, clock=clock), BuildNotifier()
    registry = AgentRegistry(offline_after_s=45.0)
    registry.remember(AgentRecord(7, "seven", {}, 2, "", 0), last_seen=1.0)
    return Attempts(
        runtime=runtime,
        store=store,
        logs=MemoryLogs(),
        leases=leases,
        registry=registry,
        dispatcher=Dispatcher(Claims(runtime, store, leases, notifier, sealer())),
        notifier=notifier,
    )


def test_a_failed_reaper_pass_is_logged_and_the_next_pass_still_expires_the_lease(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        clock, store, runtime = FakeClock(), FlakyAttempts(failures=2), Runtime()
        attempts = attempts_over(store, clock, runtime)
        store.running = [LiveAttempt(1, 7, 3, "t1", False)]
        await attempts.load()
        clock.now += TTL + 1
        stop = asyncio.Event()
        # The default backoff: the loop as the server runs it.
        reaper = asyncio.create_task(attempts.reap_forever(stop, 0.01))
        for _ in range(500):
            if store.finished() or reaper.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(reaper, 5)
        assert store.finished() == [("finish", 1, Outcome.FAILED, "agent_lost")]
        runtime.close()

    with caplog.at_level(logging.ERROR, logger="coordinator.domain.loops"):
        run(main())
    failed = [r for r in caplog.records if "pass failed" in r.getMessage()]
    assert len(failed) == 2
    # Each logged with its exception, traceback and all.
    formatter = logging.Formatter()
    assert all(
        r.exc_info and "disk is full" in formatter.formatException(r.exc_info) for r in failed
    )


def test_an_expiry_says_what_was_observed_not_who_is_to_blame() -> None:
    async def main() -> None:
        clock, store, runtime = FakeClock(), FlakyAttempts(failures=0), Runtime()
        attempts = attempts_over(store, clock, runtime)
        store.running = [LiveAttempt(1, 7, 3, "t1", False)]
        await attempts.load()
        clock.now += TTL + 2.5
        assert await attempts.expire_due() == 1
        assert store.messages == ["no lease renewal from agent seven for 12.5 s"]
        runtime.close()

    run(main())


def test_a_pass_that_raises_does_not_end_the_loop() -> None:
    async def main() -> None:
        stop = asyncio.Event()
        passes = 0

        async def one_pass() -> None:
            nonlocal passes
            passes += 1
            if passes == 4:
                stop.set()
            raise RuntimeError("boom")

        await asyncio.wait_for(every("test loop", 0.001, one_pass, stop, QUICK), 5)
        assert passes == 4

    run(main())


def test_a_loop_that_dies_is_restarted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        starts = 0

        async def loop() -> None:
            nonlocal starts
            starts += 1
            if starts == 3:
                await stop.wait()
                return
            raise RuntimeError(f"death {starts}")

        task = asyncio.create_task(supervise("test loop", loop, stop, backoff=QUICK))
        for _ in range(200):
            if starts == 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert starts == 3

    with caplog.at_level(logging.WARNING, logger="coordinator.domain.loops"):
        run(main())
    died = [r for r in caplog.records if "loop died" in r.getMessage()]
    assert [str(r.exc_info[1]) for r in died if r.exc_info] == ["death 1", "death 2"]
    assert sum("restarting" in r.getMessage() for r in caplog.records) == 2


def test_a_loop_that_keeps_dying_stops_the_supervisor() -> None:
    async def main() -> None:
        stop = asyncio.Event()

        async def loop() -> None:
            raise RuntimeError("always")

        with pytest.raises(LoopDied, match="test loop died 4 times"):
            await asyncio.wait_for(
                supervise("test loop", loop, stop, restarts_max=3, backoff=QUICK), 5
            )

    run(main())


class PoisonedAttempts(FakeAttempts):
    """A store that can never end attempt 1 (a bad row), and ends the others."""

    def finish(
        self,
        attempt_id: int,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None = None,
    ) -> AttemptEnd:
        if attempt_id == 1:
            raise RuntimeError("attempt 1 cannot be written")
        return super().finish(
            attempt_id,
            outcome=outcome,
            reason=reason,
            message=message,
            exit_code=exit_code,
            step=step,
        )


def test_an_attempt_the_store_cannot_end_does_not_keep_the_others_running() -> None:
    async def main() -> None:
        clock, store, runtime = FakeClock(), PoisonedAttempts(), Runtime()
        attempts = attempts_over(store, clock, runtime)
        store.running = [LiveAttempt(1, 7, 3, "t1", False), LiveAttempt(2, 7, 3, "t2", False)]
        await attempts.load()
        clock.now += TTL + 1
        with pytest.raises(ExceptionGroup, match=r"1 expired attempt\(s\) could not be ended"):
            await attempts.expire_due()
        assert store.finished() == [("finish", 2, Outcome.FAILED, "agent_lost")]
        runtime.close()

    run(main())
