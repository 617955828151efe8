"""Long-poll dispatch: agents wait here for work or cancellations without holding a thread.

Runs on the event loop. A poll first tries to claim; if nothing matches it parks a future until a
job is queued or one of the agent's attempts is canceled. A generation counter closes the gap
between an empty claim and parking, so a job queued meanwhile is never missed.

When the labels of newly queued jobs are known, only one parked agent that can take each job is
woken, not every parked agent: with a thousand idle agents, waking all of them for one job costs
a thousand claims. A targeted agent that cannot claim after all passes the wake on to everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from coordinator.domain.records import Assignment
from coordinator.policy.scheduling import labels_match

ClaimFn = Callable[[int, Mapping[str, str], int], Awaitable[list[Assignment]]]


@dataclass
class _Waiter:
    future: asyncio.Future[None]
    labels: Mapping[str, str]
    free_slots: Callable[[], int]
    superseded: bool = False
    # Woken for one particular new job: it must claim, or pass the wake on.
    targeted: bool = False


@dataclass
class PollResult:
    assignments: list[Assignment] = field(default_factory=list)
    cancel_attempt_ids: list[int] = field(default_factory=list)
    drain: bool = False


class Dispatcher:
    def __init__(self, claim: ClaimFn) -> None:
        self._claim = claim
        self._generation = 0
        self._waiters: dict[int, _Waiter] = {}
        self._cancels: dict[int, set[int]] = {}
        self._nudged: set[int] = set()
        self._closed = False

    def close(self) -> None:
        """The coordinator is stopping: parked polls return now, empty, and later ones at once.

        A parked poll is a call in flight, and stopping the server waits out its grace period
        for those; the agents are better off asking the next server (or this one restarted).
        """
        self._closed = True
        self._wake_all()

    @property
    def waiting_agents(self) -> int:
        return len(self._waiters)

    def nudge(self, agent_id: int) -> None:
        """Makes the agent's parked poll return at once, empty (its settings changed)."""
        self._nudged.add(agent_id)
        self.wake(agent_id)

    def is_waiting(self, agent_id: int) -> bool:
        return agent_id in self._waiters

    def wake(self, agent_id: int) -> None:
        """Makes one agent's parked poll look again (e.g. one of its attempts freed a slot)."""
        waiter = self._waiters.get(agent_id)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(None)

    def work_available(self, job_labels: Sequence[Mapping[str, str]] | None = None) -> None:
        """Called when jobs become queued: parked agents retry their claim.

        With the new jobs' labels, one parked agent with a free slot that matches each job is
        woken; without them (unknown jobs), every parked agent is.
        """
        self._generation += 1
        if job_labels is None:
            self._wake_all()
            return
        for labels in job_labels:
            waiter = next(
                (
                    w
                    for w in self._waiters.values()
                    if not w.future.done() and labels_match(labels, w.labels) and w.free_slots() > 0
                ),
                None,
            )
            if waiter is not None:  # else no one waits for it: the next matching poll claims it
                waiter.targeted = True
                waiter.future.set_result(None)

    def _wake_all(self) -> None:
        for waiter in list(self._waiters.values()):
            if not waiter.future.done():
                waiter.future.set_result(None)

    def cancel_attempt(self, agent_id: int, attempt_id: int) -> None:
        self._cancels.setdefault(agent_id, set()).add(attempt_id)
        waiter = self._waiters.get(agent_id)
        if waiter is not None and not waiter.future.done():
            waiter.future.set_result(None)

    def forget_cancel(self, agent_id: int, attempt_id: int) -> None:
        pending = self._cancels.get(agent_id)
        if pending is not None:
            pending.discard(attempt_id)

    async def poll(
        self,
        agent_id: int,
        labels: Mapping[str, str],
        free_slots: Callable[[], int],
        timeout_s: float,
    ) -> PollResult:
        """Waits up to `timeout_s` for work or cancellations; `free_slots` is re-read each round."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        woken: _Waiter | None = None
        while True:
            cancels = self._cancels.pop(agent_id, set())
            if cancels:
                return PollResult(cancel_attempt_ids=sorted(cancels))
            if self._closed:
                return PollResult()
            if agent_id in self._nudged:
                self._nudged.discard(agent_id)
                return PollResult()
            generation = self._generation
            slots = free_slots()
            if slots > 0:
                assignments = await self._claim(agent_id, labels, slots)
                if assignments:
                    return PollResult(assignments=assignments)
            elif woken is not None and woken.targeted:
                self._wake_all()  # it was woken for a job it cannot take now: let others try
            woken = None
            if generation != self._generation or self._cancels.get(agent_id):
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return PollResult()
            woken = await self._park(agent_id, labels, free_slots, remaining)
            if woken is None:
                return PollResult()

    async def _park(
        self,
        agent_id: int,
        labels: Mapping[str, str],
        free_slots: Callable[[], int],
        timeout_s: float,
    ) -> _Waiter | None:
        """Parks until woken or timed out; None if a newer poll of the agent replaced this one."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), labels, free_slots)
        previous = self._waiters.get(agent_id)
        if previous is not None and not previous.future.done():
            # A newer poll from the same agent supersedes the old one (its client gave up on it).
            previous.superseded = True
            previous.future.set_result(None)
        self._waiters[agent_id] = waiter
        if previous is not None and previous.targeted:
            waiter.future.set_result(None)  # the wake meant for the old poll goes to this one
        try:
            # Not wait_for: on Python 3.11 it swallows a cancellation that races with the wake.
            await asyncio.wait((waiter.future,), timeout=timeout_s)
        except asyncio.CancelledError:
            if waiter.targeted:
                self._wake_all()  # the agent went away holding a wake meant for a job
            raise
        finally:
            if self._waiters.get(agent_id) is waiter:
                del self._waiters[agent_id]
        return None if waiter.superseded else waiter
