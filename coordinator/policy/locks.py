"""Who gets a free lock, who keeps waiting and who is skipped (DESIGN §4.1, deploy locks).

Plain decisions over plain values; the store reads the waiters, holders and current deployments
and applies what `plan` returns inside its transaction.

A waiter is a queued job of the group: its needs are done, so no job ever waits here for one
whose needs are not done. The free lock goes to the oldest build's waiter (`oldest_first`), or to
the newest one, skipping the older as `superseded` (`newest_first`). A deployment job whose build
is older than its environment's current deployment is skipped as `outdated` instead of taking it:
an environment never moves backwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.pipeline.model import CONCURRENCY_ORDERS
from conveyor.states import Reason

NEWEST_FIRST = CONCURRENCY_ORDERS[1]


@dataclass(frozen=True)
class Waiter:
    job_id: int
    build_id: int
    environment: str
    """"" for a job that only joins a lock group."""
    order: str


@dataclass(frozen=True)
class Skip:
    job_id: int
    reason: Reason
    message: str


@dataclass(frozen=True)
class Plan:
    winner: int | None = None
    """The job that may take the free lock now; None while it is held or nobody may."""
    skipped: tuple[Skip, ...] = ()
    waiting: Mapping[int, str] = field(default_factory=dict)
    """Job id to the words for its `waiting_for_lock`."""


def plan(
    group: str,
    waiters: Sequence[Waiter],
    holder_build: int | None,
    current: Mapping[str, int],
) -> Plan:
    """What to do with `group`'s waiters; `current` maps an environment to the build of its
    current (latest successful) deployment."""
    ordered = sorted(waiters, key=lambda w: (w.build_id, w.job_id))
    skipped = [_outdated(w, current[w.environment]) for w in ordered if _is_outdated(w, current)]
    gone = {skip.job_id for skip in skipped}
    live = [w for w in ordered if w.job_id not in gone]
    deploying = any(w.environment == group for w in waiters)
    if holder_build is not None:
        words = held_words(group, holder_build, deploying)
        return Plan(None, tuple(skipped), {w.job_id: words for w in live})
    if not live:
        return Plan(None, tuple(skipped))
    # The newest pipeline's word on the order wins: it is the one people are changing.
    if live[-1].order == NEWEST_FIRST:
        winner = live[-1]
        skipped += [_superseded(w, winner.build_id) for w in live[:-1]]
        return Plan(winner.job_id, tuple(skipped))
    winner = live[0]
    words = f"{group} goes to build {winner.build_id} first"
    return Plan(winner.job_id, tuple(skipped), {w.job_id: words for w in live[1:]})


def _is_outdated(waiter: Waiter, current: Mapping[str, int]) -> bool:
    deployed = current.get(waiter.environment) if waiter.environment else None
    return deployed is not None and waiter.build_id < deployed


def _outdated(waiter: Waiter, deployed: int) -> Skip:
    message = (
        f"not deployed: build {waiter.build_id} is older than build {deployed},"
        f" which {waiter.environment} runs now"
    )
    return Skip(waiter.job_id, Reason.OUTDATED, message)


def _superseded(waiter: Waiter, newer: int) -> Skip:
    return Skip(waiter.job_id, Reason.SUPERSEDED, f"not run: superseded by build {newer}")


def held_words(group: str, holder_build: int, deploying: bool) -> str:
    if deploying:
        return f"{group} is being deployed by build {holder_build}"
    return f"lock {group} is held by build {holder_build}"
