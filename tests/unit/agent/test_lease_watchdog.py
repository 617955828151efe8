"""The lease keeper arms the watchdog process before the coordinator's lease can run out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, cast

from agent.attempt import AttemptRunner
from agent.leases import LeaseKeeper
from agent.peer import Lease, LeaseState, LeaseStatus, Peer
from agent.watchdog_link import WatchdogLink
from tests.harness import wait_for


class _Runner:
    def __init__(self, attempt_id: int) -> None:
        self.lease = Lease(attempt_id, f"token-{attempt_id}")
        self.lost = False

    def lose(self) -> None:
        self.lost = True

    def cancel(self) -> None:
        raise AssertionError("nothing is canceled here")


class _Peer:
    """Renews attempt 1 and says attempt 2 is lost; remembers when each call began."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def renew_leases(self, leases: Sequence[Lease], *, timeout_s: float) -> list[LeaseStatus]:
        self.calls.append(time.monotonic())
        states = {1: LeaseState.ACTIVE, 2: LeaseState.LOST}
        return [LeaseStatus(lease.attempt_id, states[lease.attempt_id]) for lease in leases]


def _no_process() -> IO[bytes]:
    raise AssertionError("this link starts no watchdog process")


class _Link(WatchdogLink):
    """Records what the keeper asks of the watchdog."""

    def __init__(self) -> None:
        super().__init__(start=_no_process)
        self.armed: list[tuple[int, float]] = []
        self.callbacks: dict[int, Callable[[], None]] = {}
        self.released: list[int] = []

    def arm(self, attempt_id: int, deadline: float, on_lapse: Callable[[], None]) -> None:
        self.armed.append((attempt_id, deadline))
        self.callbacks[attempt_id] = on_lapse

    def release(self, attempt_id: int) -> None:
        self.released.append(attempt_id)


def _keeper(
    peer: _Peer, runners: list[_Runner], link: _Link, abort: threading.Event, ttl_s: float
) -> LeaseKeeper:
    return LeaseKeeper(
        cast(Peer, peer),
        lambda: cast("list[AttemptRunner]", runners),
        abort,
        ttl_s=ttl_s,
        interval_s=0.05,
        watchdog=link,
    )


def test_each_renewal_arms_a_deadline_a_margin_before_the_lease_ends() -> None:
    peer, link, abort = _Peer(), _Link(), threading.Event()
    runners = [_Runner(1), _Runner(2)]
    keeper = _keeper(peer, runners, link, abort, ttl_s=4.0)
    granted = time.monotonic()
    keeper.track(1, granted)
    keeper.track(2, granted)
    assert link.armed == [(1, granted + 3.0), (2, granted + 3.0)]  # WATCHDOG_MARGIN_S is 1 s
    threads = keeper.start()
    try:
        wait_for(lambda: len(peer.calls) >= 3, 30, "three renewals")
    finally:
        abort.set()
        for thread in threads:
            thread.join(5)
    renewed = [deadline for attempt, deadline in link.armed[2:] if attempt == 1]
    assert len(renewed) >= 2
    for deadline, call in zip(renewed, peer.calls, strict=False):
        # Measured from when the renewal was sent, which is no later than the call began.
        assert deadline - 3.0 <= call
    assert all(attempt == 1 for attempt, _ in link.armed[2:]), "a lost lease was armed again"
    keeper.forget(1)
    assert link.released == [1]


def test_a_short_ttl_keeps_most_of_the_lease_and_a_lapse_stops_the_attempt() -> None:
    link, runner = _Link(), _Runner(1)
    keeper = _keeper(_Peer(), [runner], link, threading.Event(), ttl_s=1.0)
    keeper.track(1, 50.0)
    assert link.armed == [(1, 50.75)]  # at most WATCHDOG_MARGIN_MAX_SHARE of the TTL early
    link.callbacks[1]()
    assert runner.lost
