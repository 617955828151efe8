"""The watchdog's logic on a fake clock: what it kills when, and what the agent learns of it."""

from __future__ import annotations

import io
import json
import os
from typing import IO

import pytest

from agent.watchdog import DOCKER, PGID, Ledger, Target, Watchdog
from agent.watchdog_link import WatchdogLink

BOX: Target = (DOCKER, "c0ffee")
GROUP: Target = (PGID, "4242")


def test_nothing_is_due_before_the_deadline_and_everything_at_it() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX)})
    ledger.apply({"attempt": 1, "hold": list(GROUP)})
    ledger.apply({"attempt": 1, "deadline": 10.0})
    assert ledger.due(9.99) == []
    assert ledger.next_deadline() == 10.0
    assert sorted(ledger.due(10.0)) == [(1, BOX), (1, GROUP)]


def test_a_newer_deadline_postpones_the_kill() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX), "deadline": 10.0})
    ledger.apply({"attempt": 1, "deadline": 20.0})
    assert ledger.due(15.0) == []
    assert ledger.due(20.0) == [(1, BOX)]


def test_a_lapsed_attempt_stays_lapsed_and_a_late_hold_is_killed_at_once() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX), "deadline": 10.0})
    assert ledger.due(11.0) == [(1, BOX)]
    ledger.killed(1, BOX)
    # A renewal that got through after the lapse revives nothing: the step may be dead.
    ledger.apply({"attempt": 1, "deadline": 30.0})
    ledger.apply({"attempt": 1, "hold": list(GROUP)})
    assert ledger.due(12.0) == [(1, GROUP)]


def test_dropped_and_released_targets_are_never_killed() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX), "deadline": 10.0})
    ledger.apply({"attempt": 1, "drop": list(BOX)})
    ledger.apply({"attempt": 2, "hold": list(GROUP), "deadline": 10.0})
    ledger.apply({"attempt": 2, "release": True})
    assert ledger.due(99.0) == []
    assert not ledger.holds_anything()


def test_attempts_lapse_independently() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX), "deadline": 10.0})
    ledger.apply({"attempt": 2, "hold": list(GROUP), "deadline": 20.0})
    assert ledger.due(15.0) == [(1, BOX)]


def test_once_orphaned_what_has_no_deadline_is_killed_at_once() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "hold": list(BOX)})
    ledger.apply({"attempt": 2, "hold": list(GROUP), "deadline": 10.0})
    assert ledger.due(5.0) == []
    ledger.orphan()
    # The one with a deadline still gets it: the coordinator's lease runs until then.
    assert ledger.due(5.0) == [(1, BOX)]
    assert ledger.due(10.0) == [(1, BOX), (2, GROUP)]


@pytest.mark.parametrize(
    "order",
    [
        {"hold": list(BOX)},
        {"attempt": "1", "hold": list(BOX)},
        {"attempt": 1, "hold": ["ssh", "host"]},
        {"attempt": 1, "hold": [PGID, ""]},
        {"attempt": 1, "deadline": "soon"},
    ],
)
def test_malformed_orders_are_refused(order: dict[str, object]) -> None:
    ledger = Ledger()
    with pytest.raises(ValueError):
        ledger.apply(order)
    assert not ledger.holds_anything()


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _AdvancingClock(_Clock):
    """The loop's waits are real but short; this clock gains 0.05 s on every reading."""

    def __call__(self) -> float:
        self.now += 0.05
        return self.now


def test_the_loop_kills_at_the_deadline_after_the_agent_is_gone_then_exits() -> None:
    read_end, write_end = os.pipe()
    clock = _AdvancingClock()
    killed: list[tuple[float, Target]] = []

    def kill(target: Target) -> bool:
        killed.append((clock.now, target))
        return len(killed) > 1  # the engine refuses the first kill: it is tried again

    orders = [
        json.dumps({"attempt": 1, "hold": list(BOX)}),
        json.dumps({"attempt": 1, "deadline": 100.5}),
        "not json",
        json.dumps([1, 2]),
        json.dumps({"attempt": 2, "hold": list(GROUP), "deadline": 100.5}),
        json.dumps({"attempt": 2, "release": True}),
    ]
    os.write(write_end, ("\n".join(orders) + "\n").encode())
    os.close(write_end)
    try:
        Watchdog(read_end, Ledger(), kill, clock).run()  # returns: nothing is left to kill
    finally:
        os.close(read_end)
    assert [target for _, target in killed] == [BOX, BOX]
    assert all(at >= 100.5 for at, _ in killed)


class _Pipe(io.BytesIO):
    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.broken:
            raise BrokenPipeError("the watchdog died")
        return super().write(data)

    def orders(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


def _link(pipes: list[_Pipe], clock: _Clock) -> WatchdogLink:
    started = iter(pipes)

    def start() -> IO[bytes]:
        return next(started)

    return WatchdogLink(start, clock)


def test_the_link_sends_orders_and_notices_a_lapse_once() -> None:
    pipe, clock, lapses = _Pipe(), _Clock(), []
    link = _link([pipe], clock)
    link.arm(7, 110.0, lambda: lapses.append(7))
    link.hold(7, BOX)
    assert not link.lapsed(7)
    clock.now = 110.0
    assert link.lapsed(7) and link.lapsed(7)
    assert lapses == [7]
    assert pipe.orders() == [{"attempt": 7, "deadline": 110.0}, {"attempt": 7, "hold": list(BOX)}]


def test_a_renewal_after_the_deadline_does_not_revive_the_attempt() -> None:
    pipe, clock, lapses = _Pipe(), _Clock(), []
    link = _link([pipe], clock)
    link.arm(7, 110.0, lambda: lapses.append(7))
    link.hold(7, BOX)
    clock.now = 111.0  # the agent was frozen past its deadline; now a renewal gets through
    link.arm(7, 120.0, lambda: lapses.append(7))
    assert link.lapsed(7)
    assert lapses == [7]
    assert {"attempt": 7, "deadline": 120.0} not in pipe.orders()


def test_a_deadline_passing_between_steps_lapses_nothing_and_a_renewal_rearms() -> None:
    """A coordinator outage while an attempt's steps are done: its result waits, unharmed."""
    pipe, clock, lapses = _Pipe(), _Clock(), []
    link = _link([pipe], clock)
    link.arm(7, 110.0, lambda: lapses.append(7))
    link.hold(7, BOX)
    link.drop(7, BOX)  # the step ended before its deadline
    clock.now = 130.0
    assert not link.lapsed(7)
    link.arm(7, 140.0, lambda: lapses.append(7))  # the coordinator is back
    link.hold(7, GROUP)  # the next step
    assert not link.lapsed(7) and lapses == []
    assert pipe.orders()[-2:] == [
        {"attempt": 7, "deadline": 140.0},
        {"attempt": 7, "hold": list(GROUP)},
    ]


def test_a_drop_after_the_deadline_finds_the_attempt_lapsed() -> None:
    pipe, clock, lapses = _Pipe(), _Clock(), []
    link = _link([pipe], clock)
    link.arm(7, 110.0, lambda: lapses.append(7))
    link.hold(7, BOX)
    clock.now = 111.0  # held past its deadline: the watchdog has killed it
    link.drop(7, BOX)
    assert link.lapsed(7) and lapses == [7]


def test_the_ledger_lapses_only_what_holds_something_at_its_deadline() -> None:
    ledger = Ledger()
    ledger.apply({"attempt": 1, "deadline": 10.0})
    assert ledger.due(11.0) == []
    ledger.apply({"attempt": 1, "deadline": 30.0})  # revived by a renewal
    ledger.apply({"attempt": 1, "hold": list(BOX)})
    assert ledger.due(12.0) == []
    assert ledger.due(30.0) == [(1, BOX)]


def test_an_attempt_without_a_deadline_never_lapses() -> None:
    clock = _Clock()
    link = _link([_Pipe()], clock)
    link.hold(3, GROUP)
    clock.now = 1e9
    assert not link.lapsed(3)


def test_a_dead_watchdog_is_replaced_and_told_everything() -> None:
    dead, fresh, clock = _Pipe(), _Pipe(), _Clock()
    link = _link([dead, fresh], clock)
    link.arm(1, 110.0, lambda: None)
    link.hold(1, BOX)
    link.hold(2, GROUP)
    link.drop(2, GROUP)
    dead.broken = True
    link.arm(1, 115.0, lambda: None)
    assert fresh.orders() == [
        {"attempt": 1, "deadline": 115.0},
        {"attempt": 1, "hold": list(BOX)},
    ]
