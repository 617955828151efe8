"""Who gets a free deploy lock, who waits and who is skipped (coordinator.policy.locks)."""

from __future__ import annotations

from conveyor.states import Reason
from coordinator.policy.locks import Plan, Skip, Waiter, plan


def waiter(build: int, order: str = "oldest_first", environment: str = "production") -> Waiter:
    return Waiter(job_id=build * 10, build_id=build, environment=environment, order=order)


def test_a_free_lock_goes_to_the_oldest_build() -> None:
    result = plan("production", [waiter(7), waiter(5), waiter(6)], None, {})
    assert result.winner == 50
    assert result.skipped == ()
    assert result.waiting == {
        60: "production goes to build 5 first",
        70: "production goes to build 5 first",
    }


def test_a_held_lock_makes_everyone_wait_naming_the_holder() -> None:
    result = plan("production", [waiter(42), waiter(43)], 41, {})
    assert result.winner is None
    assert result.waiting == {
        420: "production is being deployed by build 41",
        430: "production is being deployed by build 41",
    }


def test_a_plain_group_says_its_lock_is_held() -> None:
    result = plan("migrations", [waiter(3, environment="")], 2, {})
    assert result.waiting == {30: "lock migrations is held by build 2"}


def test_builds_older_than_the_current_deployment_are_outdated() -> None:
    result = plan("production", [waiter(3), waiter(4), waiter(9)], None, {"production": 8})
    assert result.winner == 90
    assert [(s.job_id, s.reason) for s in result.skipped] == [
        (30, Reason.OUTDATED),
        (40, Reason.OUTDATED),
    ]
    assert "build 3 is older than build 8, which production runs now" in result.skipped[0].message


def test_the_same_build_as_the_current_deployment_is_not_outdated() -> None:
    assert plan("production", [waiter(8)], None, {"production": 8}).winner == 80


def test_a_plain_group_member_is_never_outdated() -> None:
    result = plan("production", [waiter(3, environment="")], None, {"production": 8})
    assert result == Plan(30, (), {})


def test_newest_first_takes_the_newest_and_skips_the_superseded() -> None:
    result = plan("production", [waiter(n, "newest_first") for n in (2, 3, 4)], None, {})
    assert result.winner == 40
    assert result.skipped == (
        Skip(20, Reason.SUPERSEDED, "not run: superseded by build 4"),
        Skip(30, Reason.SUPERSEDED, "not run: superseded by build 4"),
    )


def test_newest_first_waits_while_held() -> None:
    result = plan("production", [waiter(n, "newest_first") for n in (2, 3)], 1, {})
    assert result.winner is None and result.skipped == ()
    assert set(result.waiting) == {20, 30}


def test_nobody_waiting_nobody_wins() -> None:
    assert plan("production", [], None, {}) == Plan()
