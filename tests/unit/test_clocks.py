"""Leases run on the monotonic clock on both sides: a wall-clock jump expires nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import cast

import pytest

from agent.attempt import AttemptRunner
from agent.leases import LeaseKeeper
from agent.peer import Peer
from coordinator.domain.leases import LeaseTable
from coordinator.domain.records import LiveAttempt


@pytest.fixture
def wall_clock_jumps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every read of the wall clock is two hours later than the one before."""
    real = time.time
    jumps = iter(range(1, 1_000_000))
    monkeypatch.setattr(time, "time", lambda: real() + 7200 * next(jumps))
    yield


def test_coordinator_leases_ignore_wall_clock_jumps(wall_clock_jumps: None) -> None:
    table = LeaseTable(ttl_s=5.0)
    table.add(
        LiveAttempt(attempt_id=1, agent_id=7, build_id=1, lease_token="t", cancel_requested=False)
    )
    time.time()
    time.time()
    assert table.expired() == []
    assert table.renew(7, 1, "t") is not None
    # The patched time.time above cannot reach a clock bound at import (a default argument
    # `clock=time.time` keeps the real function), so also pin the table's clock down: its
    # deadlines must lie on the monotonic timeline, the one clock no wall-clock jump moves.
    before = time.monotonic()
    lease = table.check(7, 1, "t")
    after = time.monotonic()
    assert before + 5.0 - 1.0 <= lease.deadline <= after + 5.0, (
        f"lease deadline {lease.deadline} is not on the monotonic clock ({after}): "
        "the lease table reads another clock (the wall clock?)"
    )


class _Runner:
    def __init__(self) -> None:
        self.lost = False
        self.running_step = True
        self.lease = type("L", (), {"attempt_id": 1})()

    def lose(self) -> None:
        self.lost = True


def test_agent_watchdog_ignores_wall_clock_jumps(wall_clock_jumps: None) -> None:
    runner = _Runner()
    abort = threading.Event()
    keeper = LeaseKeeper(
        peer=cast(Peer, None),  # the watchdog alone never calls the coordinator
        runners=lambda: [cast(AttemptRunner, runner)],
        abort=abort,
        ttl_s=2.0,
        interval_s=60.0,
    )
    keeper.track(1, time.monotonic())
    threads = keeper.start()
    try:
        time.sleep(0.5)  # the watchdog looks five times while the wall clock leaps hours
        assert not runner.lost
        time.sleep(1.3)  # past 75% of the 2 s TTL on the monotonic clock: now it acts
        assert runner.lost
    finally:
        abort.set()
        for thread in threads:
            thread.join(2)
