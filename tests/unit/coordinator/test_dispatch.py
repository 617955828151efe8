"""The long-poll dispatcher, driven by a fake claim function over a list of queued jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.dispatch import Dispatcher, PollResult
from coordinator.domain.records import Assignment, JobSpecRecord
from coordinator.policy.scheduling import labels_match

LONG = 30.0  # a poll timeout no passing test ever reaches
PROMPT = 2.0  # how long a poll that should answer at once may take before the test fails

SPEC = JobSpecRecord(steps=(), timeout_s=None, retry_max=0, retry_when=())


@dataclass
class FakeQueue:
    """Queued jobs by name and labels; claim hands out the oldest matching ones, once each."""

    jobs: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    calls: list[tuple[int, int]] = field(default_factory=list)
    next_attempt: int = 1

    def put(self, name: str, labels: dict[str, str] | None = None) -> None:
        self.jobs.append((name, labels or {}))

    async def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        self.calls.append((agent_id, slots))
        taken = [job for job in self.jobs if labels_match(job[1], labels)][:slots]
        for job in taken:
            self.jobs.remove(job)
        return [self._assign(name) for name, _ in taken]

    def _assign(self, name: str) -> Assignment:
        attempt_id = self.next_attempt
        self.next_attempt += 1
        return Assignment(attempt_id, f"token-{attempt_id}", 1, name, 1, SPEC)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def slots(n: int = 1) -> Callable[[], int]:
    return lambda: n


def names(result: PollResult) -> list[str]:
    return [a.job_name for a in result.assignments]


async def until(condition: Callable[[], bool], timeout_s: float = PROMPT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.001)


def test_poll_returns_at_once_when_work_exists() -> None:
    async def main() -> None:
        queue = FakeQueue()
        queue.put("a")
        queue.put("b")
        dispatcher = Dispatcher(queue.claim)
        result = await asyncio.wait_for(dispatcher.poll(1, {}, slots(1), LONG), PROMPT)
        assert names(result) == ["a"]
        assert result.cancel_attempt_ids == []
        assert queue.calls == [(1, 1)]
        assert dispatcher.waiting_agents == 0

    run(main())


def test_poll_claims_up_to_the_free_slots() -> None:
    async def main() -> None:
        queue = FakeQueue()
        for name in "abc":
            queue.put(name)
        dispatcher = Dispatcher(queue.claim)
        result = await asyncio.wait_for(dispatcher.poll(1, {}, slots(2), LONG), PROMPT)
        assert names(result) == ["a", "b"]
        assert [name for name, _ in queue.jobs] == ["c"]

    run(main())


def test_parked_poll_is_woken_by_work_available_and_gets_the_job() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        assert not task.done()

        queue.put("a")
        dispatcher.work_available()
        result = await asyncio.wait_for(task, PROMPT)
        assert names(result) == ["a"]
        assert dispatcher.waiting_agents == 0

    run(main())


def test_poll_without_work_times_out_empty() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await asyncio.wait_for(dispatcher.poll(1, {}, slots(), 0.15), PROMPT)
        elapsed = loop.time() - started
        assert result == PollResult()
        assert 0.15 <= elapsed < 0.15 + 1.0
        assert dispatcher.waiting_agents == 0

    run(main())


def test_poll_without_free_slots_does_not_claim() -> None:
    async def main() -> None:
        queue = FakeQueue()
        queue.put("a")
        dispatcher = Dispatcher(queue.claim)
        result = await asyncio.wait_for(dispatcher.poll(1, {}, slots(0), 0.05), PROMPT)
        assert result == PollResult()
        assert queue.calls == []
        assert [name for name, _ in queue.jobs] == ["a"]

    run(main())


def test_free_slots_are_reread_when_woken() -> None:
    async def main() -> None:
        queue = FakeQueue()
        queue.put("a")
        free = [0]
        dispatcher = Dispatcher(queue.claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, lambda: free[0], LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        free[0] = 1  # e.g. one of the agent's attempts finished
        dispatcher.wake(1)
        result = await asyncio.wait_for(task, PROMPT)
        assert names(result) == ["a"]

    run(main())


def test_work_for_other_labels_does_not_end_the_poll() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        linux = asyncio.create_task(dispatcher.poll(1, {"os": "linux"}, slots(), LONG))
        mac = asyncio.create_task(dispatcher.poll(2, {"os": "mac"}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 2)

        queue.put("a", {"os": "mac"})
        dispatcher.work_available()
        assert names(await asyncio.wait_for(mac, PROMPT)) == ["a"]
        # The linux agent looked, found nothing for it, and parked again.
        await until(lambda: dispatcher.waiting_agents == 1)
        assert not linux.done()
        assert any(agent == 1 for agent, _ in queue.calls[1:])

        queue.put("b", {"os": "linux"})
        dispatcher.work_available()
        assert names(await asyncio.wait_for(linux, PROMPT)) == ["b"]

    run(main())


def test_cancel_attempt_wakes_a_parked_poll_with_the_cancel_ids() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        other = asyncio.create_task(dispatcher.poll(2, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 2)

        dispatcher.cancel_attempt(1, 5)
        dispatcher.cancel_attempt(1, 3)
        result = await asyncio.wait_for(task, PROMPT)
        assert result.cancel_attempt_ids == [3, 5]
        assert result.assignments == []
        # Another agent's poll is not disturbed.
        await asyncio.sleep(0.01)
        assert not other.done()
        other.cancel()

    run(main())


def test_cancel_requested_before_the_poll_is_returned_at_once_and_only_once() -> None:
    async def main() -> None:
        queue = FakeQueue()
        queue.put("a")
        dispatcher = Dispatcher(queue.claim)
        dispatcher.cancel_attempt(1, 9)
        first = await asyncio.wait_for(dispatcher.poll(1, {}, slots(), LONG), PROMPT)
        assert first.cancel_attempt_ids == [9]
        second = await asyncio.wait_for(dispatcher.poll(1, {}, slots(), LONG), PROMPT)
        assert second.cancel_attempt_ids == []
        assert names(second) == ["a"]

    run(main())


def test_forget_cancel_drops_a_pending_cancel() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        dispatcher.cancel_attempt(1, 9)
        dispatcher.forget_cancel(1, 9)
        result = await asyncio.wait_for(dispatcher.poll(1, {}, slots(), 0.05), PROMPT)
        assert result == PollResult()

    run(main())


def test_work_made_available_during_the_claim_is_not_missed() -> None:
    """The generation race: the claim ran before the job was visible, the wake came before the
    poll parked. The poll must look again instead of parking until its timeout."""

    async def main() -> None:
        queue = FakeQueue()
        in_claim = asyncio.Event()
        release = asyncio.Event()
        claims = 0

        async def slow_first_claim(
            agent_id: int, labels: Mapping[str, str], n: int
        ) -> list[Assignment]:
            nonlocal claims
            claims += 1
            if claims == 1:
                snapshot = list(queue.jobs)  # what this "transaction" sees: nothing yet
                in_claim.set()
                await release.wait()
                assert snapshot == []
                return []
            return await queue.claim(agent_id, labels, n)

        dispatcher = Dispatcher(slow_first_claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await asyncio.wait_for(in_claim.wait(), PROMPT)

        queue.put("a")
        dispatcher.work_available()  # nobody is parked yet: only the generation records it
        assert dispatcher.waiting_agents == 0
        release.set()

        result = await asyncio.wait_for(task, PROMPT)
        assert names(result) == ["a"]
        assert claims == 2

    run(main())


def test_cancel_arriving_during_the_claim_is_not_missed() -> None:
    async def main() -> None:
        in_claim = asyncio.Event()
        release = asyncio.Event()

        async def slow_claim(agent_id: int, labels: Mapping[str, str], n: int) -> list[Assignment]:
            in_claim.set()
            await release.wait()
            return []

        dispatcher = Dispatcher(slow_claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await asyncio.wait_for(in_claim.wait(), PROMPT)
        dispatcher.cancel_attempt(1, 4)
        release.set()
        result = await asyncio.wait_for(task, PROMPT)
        assert result.cancel_attempt_ids == [4]

    run(main())


def test_a_second_poll_by_the_same_agent_supersedes_the_first() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        loop = asyncio.get_running_loop()
        # Timeouts short enough that a first poll which is not superseded (and so only ends at its
        # deadline) fails the timing check below rather than hanging the test.
        timeout_s = 1.5
        first = asyncio.create_task(dispatcher.poll(1, {}, slots(), timeout_s))
        await until(lambda: dispatcher.waiting_agents == 1)

        started = loop.time()
        second = asyncio.create_task(dispatcher.poll(1, {}, slots(), timeout_s))
        assert await first == PollResult()
        assert loop.time() - started < timeout_s / 2
        assert not second.done()
        assert dispatcher.waiting_agents == 1
        assert len(queue.calls) == 2  # one claim per poll: the superseded poll did not look again

        queue.put("a")
        dispatcher.work_available()
        assert names(await asyncio.wait_for(second, PROMPT)) == ["a"]
        assert dispatcher.waiting_agents == 0

    run(main())


def test_a_canceled_poll_leaves_no_waiter_behind() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        task = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert dispatcher.waiting_agents == 0

    run(main())


async def parked(dispatcher: Dispatcher, agents: dict[int, dict[str, str]]) -> list[Any]:
    tasks = [
        asyncio.create_task(dispatcher.poll(agent, labels, slots(), LONG))
        for agent, labels in agents.items()
    ]
    await until(lambda: dispatcher.waiting_agents == len(agents))
    return tasks


def test_a_new_job_wakes_one_matching_agent_not_all() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        tasks = await parked(dispatcher, {1: {}, 2: {}, 3: {"os": "linux"}, 4: {"os": "linux"}})
        queue.calls.clear()

        queue.put("a", {"os": "linux"})
        dispatcher.work_available([{"os": "linux"}])
        await until(lambda: sum(task.done() for task in tasks) == 1)
        winner = next(task for task in tasks if task.done())
        assert names(winner.result()) == ["a"]
        assert tasks.index(winner) in (2, 3)
        assert len(queue.calls) == 1  # one claim for one job, not one per parked agent
        assert dispatcher.waiting_agents == 3
        for task in tasks:
            task.cancel()

    run(main())


def test_a_job_nobody_parked_can_take_wakes_no_one() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        tasks = await parked(dispatcher, {1: {}, 2: {"os": "mac"}})
        queue.calls.clear()

        queue.put("a", {"os": "linux"})
        dispatcher.work_available([{"os": "linux"}])
        await asyncio.sleep(0.05)
        assert queue.calls == []
        assert dispatcher.waiting_agents == 2
        # An agent that can take it claims it on its next poll.
        result = await asyncio.wait_for(dispatcher.poll(3, {"os": "linux"}, slots(), 0.1), PROMPT)
        assert names(result) == ["a"]
        for task in tasks:
            task.cancel()

    run(main())


def test_a_parked_agent_without_a_free_slot_is_not_the_one_woken() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        full = asyncio.create_task(dispatcher.poll(1, {}, slots(0), LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        free_task = asyncio.create_task(dispatcher.poll(2, {}, slots(1), LONG))
        await until(lambda: dispatcher.waiting_agents == 2)

        queue.put("a")
        dispatcher.work_available([{}])
        assert names(await asyncio.wait_for(free_task, PROMPT)) == ["a"]
        assert not full.done()
        full.cancel()

    run(main())


def test_a_woken_agent_that_goes_away_passes_the_job_on() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        first = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        second = asyncio.create_task(dispatcher.poll(2, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 2)

        queue.put("a")
        dispatcher.work_available([{}])  # the longest-parked agent is the one woken
        first.cancel()  # its client disconnects before the poll could claim
        assert names(await asyncio.wait_for(second, PROMPT)) == ["a"]
        assert first.cancelled()

    run(main())


def test_closing_ends_parked_polls_at_once_and_later_ones_claim_nothing() -> None:
    async def main() -> None:
        queue = FakeQueue()
        dispatcher = Dispatcher(queue.claim)
        parked = asyncio.create_task(dispatcher.poll(1, {}, slots(), LONG))
        await until(lambda: dispatcher.waiting_agents == 1)
        dispatcher.close()
        assert await asyncio.wait_for(parked, PROMPT) == PollResult()
        queue.put("a")
        later = await asyncio.wait_for(dispatcher.poll(2, {}, slots(), LONG), PROMPT)
        assert later == PollResult()
        assert [name for name, _ in queue.jobs] == ["a"]  # left for the next server

    run(main())
