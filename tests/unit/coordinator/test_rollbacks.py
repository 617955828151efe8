"""The rollback domain: who may roll back, and a job whose `when:` excludes rollbacks."""

from __future__ import annotations

import asyncio

import pytest

from coordinator.domain.access import Principal
from coordinator.domain.delivery_records import RollbackPlan
from coordinator.domain.errors import ConflictError, NotFoundError, RoleError
from coordinator.domain.rollbacks import RollbackStarted
from tests.unit.coordinator.fakes import FakeState, NoRollbacks, coordinator

PIPELINE = """\
name: ship
image: conveyor/busybox
jobs:
  production:
    environment: production
    when: {branch: [main], event: [EVENTS]}
    steps: [{run: "true"}]
"""


class OnePlan(NoRollbacks):
    def __init__(self, events: str) -> None:
        self.made: list[str] = []
        self.events = events

    def plan(self, environment: str, to: int | None) -> RollbackPlan:
        return RollbackPlan(
            environment=environment,
            redeploys=to or 3,
            job="production",
            pipeline_yaml=PIPELINE.replace("EVENTS", self.events),
            source_name="ship.yml",
            branch="main",
            tag=None,
            labels={},
        )

    def create(self, plan: RollbackPlan, actor: str) -> int:
        self.made.append(actor)
        return 41


def start(store: OnePlan, role: str = "deployer", to: int | None = None) -> RollbackStarted:
    harness = coordinator(FakeState(rollbacks=store))
    principal = Principal("alice", role)
    return asyncio.run(harness.core.rollbacks.start("production", to, principal))


def test_a_deployer_rolls_back_and_is_the_actor() -> None:
    store = OnePlan("manual, rollback")
    assert start(store, to=2) == RollbackStarted(41, 2)
    assert store.made == ["alice"]


def test_a_job_whose_when_excludes_rollbacks_is_refused_before_anything_is_made() -> None:
    store = OnePlan("manual, push")
    with pytest.raises(ConflictError, match=r"does not run in a rollback: .*event"):
        start(store)
    assert store.made == []


def test_a_developer_may_not_roll_back() -> None:
    store = OnePlan("rollback")
    with pytest.raises(RoleError, match="may not roll back production"):
        start(store, role="developer")
    assert store.made == []


def test_a_name_no_pipeline_could_give_is_not_found() -> None:
    harness = coordinator()
    with pytest.raises(NotFoundError):
        asyncio.run(harness.core.rollbacks.start("no such", None, Principal("a", "admin")))
