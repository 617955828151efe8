"""The agent's lease watchdog stops only attempts that run a step when renewals stop, and a
result the coordinator refuses as too late is dropped."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from agent.attempt import AttemptRunner
from agent.executors.fake import FakeExecutor
from agent.leases import LeaseKeeper
from agent.peer import Assignment, Lease, Peer, StepSpec
from tests.harness import wait_for
from tests.unit.agent.memory_peer import MemoryPeer, as_peer

TTL_S = 1.0


class _Runner:
    def __init__(self, *, running_step: bool) -> None:
        self.lost = False
        self.running_step = running_step
        self.lease = type("L", (), {"attempt_id": 1})()

    def lose(self) -> None:
        self.lost = True


def _keeper(runner: _Runner, abort: threading.Event) -> LeaseKeeper:
    return LeaseKeeper(
        peer=cast(Peer, None),  # the watchdog alone never calls the coordinator
        runners=lambda: [cast(AttemptRunner, runner)],
        abort=abort,
        ttl_s=TTL_S,
        interval_s=60.0,  # no renewal comes: the coordinator is away
    )


def test_an_attempt_between_or_after_its_steps_is_kept_through_missed_renewals() -> None:
    runner, abort = _Runner(running_step=False), threading.Event()
    keeper = _keeper(runner, abort)
    keeper.track(1, time.monotonic())
    threads = keeper.start()
    try:
        wait_for(lambda: not keeper.fresh(1), 10, "the renewal to be overdue")
        time.sleep(0.3)  # the watchdog looks three times meanwhile
        assert not runner.lost
        runner.running_step = True  # a step (that start_step let through) runs now
        wait_for(lambda: runner.lost, 10, "the watchdog to stop the running step")
    finally:
        abort.set()
        for thread in threads:
            thread.join(2)


def test_a_lease_is_fresh_until_the_give_up_time() -> None:
    keeper = _keeper(_Runner(running_step=True), threading.Event())
    assert keeper.fresh(1)  # untracked
    keeper.track(1, time.monotonic())
    assert keeper.fresh(1)
    keeper.track(1, time.monotonic() - TTL_S)
    assert not keeper.fresh(1)


def test_a_late_result_the_coordinator_refuses_is_dropped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job went to another attempt while this one could not report (FAILED_PRECONDITION)."""
    peer = MemoryPeer(fenced={"finish_attempt"})
    steps = (StepSpec("s0", "any", "echo done", {}, None),)
    runner = AttemptRunner(
        Assignment(Lease(7, "token"), 3, "job", 1, steps, None),
        as_peer(peer),
        FakeExecutor(tmp_path / "workspaces"),
        "agent",
        tmp_path / "spool",
        1.0,
        1024 * 1024,
    )
    with caplog.at_level(logging.WARNING, logger="agent.attempt"):
        runner.run()
    assert peer.calls.count("finish_attempt") == 1  # not tried again
    assert "its result is dropped" in caplog.text
    assert not (tmp_path / "workspaces" / "7").exists()
