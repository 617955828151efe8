"""The notification outbox in the store, on the session's backend: events written in the
transaction of their change, one row per target that hears of them, bodies frozen at the event,
each target's events handed out oldest first, tries recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.pipeline import load_pipeline
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.errors import NotFoundError
from coordinator.domain.notify_records import (
    Delivery,
    NewTarget,
    NotifyEvent,
    TargetKind,
    TryOutcome,
)
from coordinator.domain.records import Trigger
from coordinator.domain.repo_records import NewBuild, RepoRecord
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.edge.outbound import event_body
from coordinator.policy.conditions import BuildContext
from coordinator.store import Store
from tests.unit.coordinator.test_store import SINGLE, claim_one, submit, succeed

GATED = """\
name: gated
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
  ship-it:
    needs: [build]
    approval: {prompt: "Ship?"}
  production:
    needs: [ship-it]
    environment: production
    steps: [{run: "true"}]
"""
PARKED = SINGLE.replace("  only:\n", "  only:\n    labels: {pool: nobody}\n")
COMMIT = "c0ffee" * 6 + "beef"
EVERY = tuple(NotifyEvent)


@pytest.fixture
def outbox_store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url, events=event_body)
    yield opened
    opened.close()


def webhook(store: Store, url: str, events: tuple[NotifyEvent, ...] = EVERY) -> int:
    target = NewTarget(TargetKind.WEBHOOK, url, "", events, None, "")
    return store.notifications.add(target, by="admin").id


def due(store: Store, now: int, limit: int) -> list[Delivery]:
    """What a sender gets at `now`, claimed for a millisecond."""
    return store.notifications.claim(now, limit, until=now + 1)


def drain(store: Store, target_id: int) -> list[Delivery]:
    """The target's events in the order the sender gets them, each delivered as it comes."""
    sent, far = [], 2**62  # past every due time, and claims leave events due then
    while heads := [
        d for d in store.notifications.claim(far, 100, until=far) if d.target_id == target_id
    ]:
        sent.append(heads[0])
        store.notifications.record_try(heads[0].id, TryOutcome(1, 200, ""), None)
    return sent


def doc(delivery: Delivery) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(delivery.body)
    return parsed


def test_a_gate_a_deployment_and_the_build_end_are_events_in_order_per_target(
    outbox_store: Store, agent: int
) -> None:
    store = outbox_store
    every = webhook(store, "http://receiver.example/all")
    deploys = webhook(store, "http://receiver.example/deploys", (NotifyEvent.DEPLOYMENT,))
    build_id = submit(store, GATED)
    succeed(store, claim_one(store, agent))
    store.approvals.decide(
        build_id, "ship-it", approve=True, by="admin", comment="", authorize=lambda roles: None
    )
    succeed(store, claim_one(store, agent))
    sent = drain(store, every)
    assert [d.event for d in sent] == [NotifyEvent.GATE, NotifyEvent.DEPLOYMENT, NotifyEvent.BUILD]
    gate, deployment, end = (doc(d) for d in sent)
    # Each body is the state at its event, not at delivery: the gate was approved since.
    assert (gate["event"], gate["job"], gate["build"]["status"]) == ("gate", "ship-it", "running")
    approval = next(j for j in gate["build"]["jobs"] if j["name"] == "ship-it")
    assert approval["status"] == "waiting_for_approval"
    assert deployment["deployment"]["environment"] == "production"
    assert deployment["deployment"]["status"] == "succeeded"
    assert deployment["deployment"]["build"] == build_id
    assert (end["event"], end["build"]["id"], end["build"]["status"]) == (
        "build",
        build_id,
        "succeeded",
    )
    assert "deployment" not in end
    assert [d.event for d in drain(store, deploys)] == [NotifyEvent.DEPLOYMENT]
    assert len({d.delivery_id for d in sent}) == 3


def test_a_canceled_build_is_an_event_and_a_store_without_targets_writes_none(
    outbox_store: Store,
) -> None:
    store = outbox_store
    quiet = submit(store, PARKED)
    store.builds.cancel(quiet)
    assert due(store, 2**62, 100) == []
    target = webhook(store, "http://receiver.example/")
    build_id = submit(store, PARKED)
    store.builds.cancel(build_id)
    (canceled,) = drain(store, target)
    assert (doc(canceled)["build"]["id"], doc(canceled)["build"]["status"]) == (
        build_id,
        "canceled",
    )


def test_a_failed_try_holds_back_only_its_target_until_it_is_due_or_given_up(
    outbox_store: Store, agent: int
) -> None:
    store = outbox_store
    first, second = webhook(store, "http://a.example/"), webhook(store, "http://b.example/")
    for _ in range(2):
        submit(store, SINGLE)
        succeed(store, claim_one(store, agent))
    now = int(time.time() * 1000) + 1000  # past every event's first due time
    heads = due(store, now, 100)
    assert sorted(d.target_id for d in heads) == [first, second]
    failing = next(d for d in heads if d.target_id == first)
    later = now + 60_000
    store.notifications.record_try(failing.id, TryOutcome(now, 503, "HTTP 503: busy"), later)
    # Not due before its next try; the other target goes on meanwhile.
    assert [d.target_id for d in due(store, later - 1, 100)] == [second]
    (again,) = [d for d in due(store, later, 100) if d.target_id == first]
    assert (again.id, again.tries, again.body) == (failing.id, 1, failing.body)
    store.notifications.record_try(again.id, TryOutcome(later, None, "ConnectError: refused"), None)
    (target, other) = store.notifications.targets()
    assert (target.id, target.delivered, target.pending, target.failed) == (first, 0, 1, 1)
    assert target.last_error == "ConnectError: refused"
    assert [(t.status, t.error) for t in store.notifications.tries(failing.id)] == [
        (503, "HTTP 503: busy"),
        (None, "ConnectError: refused"),
    ]
    # Given up, the target's next event is its head now.
    (head,) = [d for d in due(store, 10**15, 100) if d.target_id == first]
    assert head.id > failing.id
    assert (other.pending, other.failed) == (2, 0)


def test_removing_a_target_drops_its_events_and_is_audited(outbox_store: Store) -> None:
    store = outbox_store
    target = webhook(store, "http://receiver.example/")
    store.builds.cancel(submit(store, PARKED))
    removed = store.notifications.remove(target, by="ops")
    assert (removed.id, removed.pending) == (target, 1)
    assert store.notifications.targets() == []
    assert due(store, 2**62, 100) == []
    with pytest.raises(NotFoundError):
        store.notifications.remove(target, by="ops")
    actions = [(e.action, e.target, e.by) for e in store.audit.events(10)]
    assert [a for a in actions if a[0].startswith("notify_")] == [
        ("notify_remove", f"target {target}", "ops"),
        ("notify_add", f"target {target}", "admin"),
    ]


def test_commit_statuses_go_only_for_builds_with_a_commit(outbox_store: Store, agent: int) -> None:
    store = outbox_store
    target = NewTarget(
        TargetKind.COMMIT_STATUS,
        "https://forge.example/api/v1/",
        "team/shop",
        (NotifyEvent.BUILD, NotifyEvent.GATE),
        None,
        "https://ci.example",
    )
    target_id = store.notifications.add(target, by="admin").id
    submit(store, SINGLE)  # no git source: no commit to set a status on
    succeed(store, claim_one(store, agent))
    pipeline = load_pipeline(SINGLE, "pipeline.yml")
    build_id = store.builds.create(
        name=pipeline.name,
        pipeline_yaml=SINGLE,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
        source=SourceSpec(git_url="https://forge.example/team/shop.git", git_ref="main"),
    )
    store.artifacts.set_commit(build_id, COMMIT, None)
    succeed(store, claim_one(store, agent))
    (status,) = drain(store, target_id)
    assert status.url == f"https://forge.example/api/v1/repos/team/shop/statuses/{COMMIT}"
    assert doc(status) == {
        "state": "success",
        "target_url": f"https://ci.example/builds/{build_id}",
        "description": f"build {build_id} succeeded",
        "context": "conveyor/single",
    }


def test_a_claimed_event_goes_to_one_sender_until_its_claim_runs_out_or_is_released(
    outbox_store: Store, database_url: str
) -> None:
    """Coordinators sharing a database never send one event side by side."""
    store, other = outbox_store, Store(database_url, events=event_body)
    try:
        webhook(store, "http://receiver.example/")
        store.builds.cancel(submit(store, PARKED))
        now = int(time.time() * 1000) + 1000
        (mine,) = store.notifications.claim(now, 10, until=now + 60_000)
        assert other.notifications.claim(now + 59_999, 10, until=now + 120_000) == []
        (theirs,) = other.notifications.claim(now + 60_000, 10, until=now + 120_000)
        assert theirs.id == mine.id  # the first sender died holding it: the claim ran out
        other.notifications.release([theirs.id], now + 60_001)
        (again,) = store.notifications.claim(now + 60_001, 10, until=now + 180_000)
        assert (again.id, again.tries) == (mine.id, 0)
    finally:
        other.close()


def test_a_commit_status_target_hears_only_of_its_repository_and_of_builds_failed_at_once(
    outbox_store: Store, agent: int
) -> None:
    """Another repository's commit would be refused by the forge (and retried for hours ahead
    of the target's next events); a watched repository's build whose pipeline file is invalid
    ends as it is made, without progress, and is a build event all the same."""
    store = outbox_store
    target = NewTarget(
        TargetKind.COMMIT_STATUS, "https://forge.example/api/v1", "Team/Shop",
        (NotifyEvent.BUILD,), None, "https://ci.example",
    )  # fmt: skip
    status_target = store.notifications.add(target, by="admin").id
    hook = webhook(store, "https://hook.example/", (NotifyEvent.BUILD,))
    pipeline = load_pipeline(SINGLE, "pipeline.yml")
    other = store.builds.create(
        name=pipeline.name, pipeline_yaml=SINGLE, source_name="pipeline.yml", env={},
        jobs=jobs_from_pipeline(pipeline, {}),
        source=SourceSpec(git_url="https://forge.example/team/shop-fork.git", git_ref="main"),
    )  # fmt: skip
    store.artifacts.set_commit(other, COMMIT, None)
    succeed(store, claim_one(store, agent))
    repo = RepoRecord(
        name="shop", url="git@forge.example:team/shop.git", pipeline_path=".conveyor.yml",
        poll_s=60.0, sealed_secret=None, heads={}, last_check_ms=None, last_error="",
        failures=0, next_check_ms=0, created_at_ms=0, created_by="admin",
    )  # fmt: skip
    store.repos.add(repo)
    trigger = Trigger("push", "shop", "main", None, COMMIT, None, "Break it", "ada")
    broken = NewBuild(
        name="shop", pipeline_yaml="jobs: [", source_name=".conveyor.yml", jobs=(),
        source=SourceSpec(git_url=repo.url, git_ref=COMMIT),
        context=BuildContext("push", "main"), trigger=trigger,
        error=".conveyor.yml:1:7: unexpected end of the file",
    )  # fmt: skip
    checked = store.repos.record_check(
        "shop", seen={}, heads={"refs/heads/main": COMMIT}, builds=(broken,), schedules={},
        schedules_commit="", next_check_ms=0, supersede=False,
    )  # fmt: skip
    (failed,) = checked.build_ids
    (status,) = drain(store, status_target)
    assert status.url == f"https://forge.example/api/v1/repos/Team/Shop/statuses/{COMMIT}"
    assert doc(status)["state"] == "failure"
    assert [doc(d)["build"]["id"] for d in drain(store, hook)] == [other, failed]
