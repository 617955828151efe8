"""The in-memory lease table on a fake monotonic clock."""

from __future__ import annotations

import pytest

from coordinator.domain.errors import FencedError
from coordinator.domain.leases import LeaseTable
from coordinator.domain.records import LiveAttempt

TTL = 10.0


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def live(attempt_id: int, agent_id: int = 7, token: str = "tok", build_id: int = 3) -> LiveAttempt:
    return LiveAttempt(attempt_id, agent_id, build_id, token, cancel_requested=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> LeaseTable:
    return LeaseTable(TTL, clock=clock)


def test_add_sets_deadline_from_the_clock(table: LeaseTable, clock: FakeClock) -> None:
    table.add(live(1))
    lease = table.check(7, 1, "tok")
    assert (lease.attempt_id, lease.agent_id, lease.build_id) == (1, 7, 3)
    assert lease.deadline == clock.now + TTL
    assert not lease.cancel_requested
    assert len(table) == 1


def test_check_refuses_a_wrong_token(table: LeaseTable) -> None:
    table.add(live(1))
    with pytest.raises(FencedError):
        table.check(7, 1, "other")


def test_check_refuses_a_wrong_agent(table: LeaseTable) -> None:
    table.add(live(1))
    with pytest.raises(FencedError):
        table.check(8, 1, "tok")


def test_check_refuses_an_unknown_attempt(table: LeaseTable) -> None:
    table.add(live(1))
    with pytest.raises(FencedError):
        table.check(7, 2, "tok")


def test_check_refuses_a_removed_lease(table: LeaseTable) -> None:
    table.add(live(1))
    table.remove(1)
    with pytest.raises(FencedError):
        table.check(7, 1, "tok")
    table.remove(1)  # removing twice is harmless


def test_renew_extends_the_deadline(table: LeaseTable, clock: FakeClock) -> None:
    table.add(live(1))
    clock.now += 8
    lease = table.renew(7, 1, "tok")
    assert lease is not None
    assert lease.deadline == clock.now + TTL
    clock.now += 8  # 16 s after add, past the original deadline, within the renewed one
    assert table.expired() == []


def test_renew_with_wrong_credentials_returns_none_and_keeps_the_deadline(
    table: LeaseTable, clock: FakeClock
) -> None:
    table.add(live(1))
    start = clock.now
    clock.now += 5
    assert table.renew(7, 1, "wrong") is None
    assert table.renew(8, 1, "tok") is None
    assert table.renew(7, 99, "tok") is None
    assert table.check(7, 1, "tok").deadline == start + TTL


def test_expired_lists_only_leases_past_their_deadline(table: LeaseTable, clock: FakeClock) -> None:
    table.add(live(1))
    clock.now += 4
    table.add(live(2))
    assert table.expired() == []
    clock.now += TTL - 4 - 0.001  # just before lease 1's deadline
    assert table.expired() == []
    clock.now += 0.002  # just past lease 1's deadline, before lease 2's
    assert [lease.attempt_id for lease in table.expired()] == [1]
    clock.now += 4
    assert sorted(lease.attempt_id for lease in table.expired()) == [1, 2]


def test_expired_does_not_remove(table: LeaseTable, clock: FakeClock) -> None:
    table.add(live(1))
    clock.now += TTL + 1
    assert len(table.expired()) == 1
    assert len(table.expired()) == 1
    assert len(table) == 1


def test_mark_cancel_flags_the_lease(table: LeaseTable) -> None:
    table.add(live(1))
    table.add(live(2))
    marked = table.mark_cancel(1)
    assert marked is not None and marked.cancel_requested
    assert table.check(7, 1, "tok").cancel_requested
    assert not table.check(7, 2, "tok").cancel_requested
    assert table.mark_cancel(99) is None


def test_add_keeps_a_cancel_already_requested(table: LeaseTable) -> None:
    table.add(LiveAttempt(1, 7, 3, "tok", cancel_requested=True))
    assert table.check(7, 1, "tok").cancel_requested


def test_of_agent_lists_only_that_agents_leases(table: LeaseTable) -> None:
    table.add(live(1, agent_id=7))
    table.add(live(2, agent_id=8))
    table.add(live(3, agent_id=7))
    assert sorted(lease.attempt_id for lease in table.of_agent(7)) == [1, 3]
    assert [lease.attempt_id for lease in table.of_agent(9)] == []


def test_of_agent_follows_removals_and_reassignment(table: LeaseTable) -> None:
    table.add(live(1, agent_id=7))
    table.add(live(2, agent_id=7))
    table.remove(1)
    assert [lease.attempt_id for lease in table.of_agent(7)] == [2]
    table.add(live(2, agent_id=8, token="new"))  # the same attempt re-added for another agent
    assert list(table.of_agent(7)) == []
    assert [lease.token for lease in table.of_agent(8)] == ["new"]
    table.remove(2)
    assert list(table.of_agent(8)) == []
    assert len(table) == 0


def test_is_due_only_for_the_same_lease_past_its_deadline(
    table: LeaseTable, clock: FakeClock
) -> None:
    table.add(live(1))
    lease = table.check(7, 1, "tok")
    assert not table.is_due(lease)
    clock.now += TTL
    assert table.is_due(lease)
    table.renew(7, 1, "tok")
    assert not table.is_due(lease)  # renewed meanwhile
    clock.now += TTL
    table.add(live(1, token="new"))  # the attempt re-leased: the old lease object is stale
    assert not table.is_due(lease)
