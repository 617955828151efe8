"""Rollbacks in the store, on the session's backend: the default target, the refusals, and a
rollback build that runs only the deployment job, with the recorded artifacts as its inputs."""

from __future__ import annotations

import time

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import JobStatus, Outcome, Reason
from coordinator.domain.artifact_records import NewArtifact, SourceSpec
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.domain.records import Assignment, NewJob
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store
from tests.unit.coordinator.test_deploy_store import SHIP, claim, end
from tests.unit.coordinator.test_inputs_rule import assert_claim_carried_inputs
from tests.unit.coordinator.test_store import submit


def ship(store: Store, agent: int, digest: str, outcome: Outcome = Outcome.SUCCEEDED) -> int:
    """A build of SHIP whose build job keeps shop.tar with `digest`, deployed to production;
    returns the deployment's id."""
    build_id = submit(store, SHIP)
    (build,) = claim(store, agent)
    store.artifacts.add_blob(digest, 3)
    new = NewArtifact(build_id, build.attempt_id, "shop.tar", digest, 3, 0o644)
    store.artifacts.add_artifact(new, 10**6, 10)
    end(store, build)
    (deploy,) = claim(store, agent)
    reason = "" if outcome is Outcome.SUCCEEDED else Reason.EXIT_CODE
    store.attempts.finish(
        deploy.attempt_id, outcome=outcome, reason=reason, message="", exit_code=None
    )
    return store.deployments.deployments("production", 1)[0].id


def roll_back(store: Store, to: int | None = None) -> int:
    return store.rollbacks.create(store.rollbacks.plan("production", to), "alice")


def test_the_default_target_is_the_last_success_before_the_current_one(
    store: Store, agent: int
) -> None:
    first = ship(store, agent, "a1" * 32)
    ship(store, agent, "b2" * 32, Outcome.FAILED)
    ship(store, agent, "c3" * 32)
    assert store.rollbacks.plan("production", None).redeploys == first


def test_the_default_skips_deployments_of_what_runs_now(store: Store, agent: int) -> None:
    first = ship(store, agent, "a1" * 32)
    second = ship(store, agent, "b2" * 32)
    (rollback,) = _run(store, agent, roll_back(store))
    assert store.deployments.deployments("production", 1)[0].redeploys == first
    # Now the first release runs again: going back once more goes to the second.
    assert store.rollbacks.plan("production", None).redeploys == second
    assert rollback.job_name == "production"


def test_nothing_to_go_back_to_is_refused(store: Store, agent: int) -> None:
    with pytest.raises(NotFoundError, match="environment 'production' does not exist"):
        store.rollbacks.plan("production", None)
    only = ship(store, agent, "a1" * 32)
    with pytest.raises(ConflictError, match=f"other than what deployment {only} runs now"):
        store.rollbacks.plan("production", None)
    failed = ship(store, agent, "b2" * 32, Outcome.FAILED)
    with pytest.raises(ConflictError, match="only a successful deployment"):
        store.rollbacks.plan("production", failed)
    with pytest.raises(NotFoundError, match="deployment 999 of production does not exist"):
        store.rollbacks.plan("production", 999)


def test_a_rollback_build_runs_only_the_job_with_the_recorded_artifacts(
    store: Store, agent: int
) -> None:
    first = ship(store, agent, "a1" * 32)
    ship(store, agent, "b2" * 32)
    build_id = roll_back(store, first)
    build = store.builds.get(build_id)
    assert (build.event, build.redeploys) == ("rollback", first)
    assert [(j.name, j.status) for j in build.jobs] == [("production", JobStatus.QUEUED)]
    (attempt,) = claim(store, agent)
    inputs = store.artifacts.inputs(attempt.attempt_id)
    assert [(a.job, a.name, a.sha256) for a in inputs.needed] == [("build", "shop.tar", "a1" * 32)]
    assert_claim_carried_inputs(store, attempt)
    # The agent may download that blob for this build, and no other build's.
    assert store.artifacts.blob_of_build(build_id, "a1" * 32)
    assert not store.artifacts.blob_of_build(build_id, "b2" * 32)
    end(store, attempt)
    newest = store.deployments.deployments("production", 1)[0]
    assert (newest.build_id, newest.redeploys, newest.actor) == (build_id, first, "alice")
    assert build.started_by == "alice"
    (event,) = [e for e in store.audit.events(10) if e.action == "rollback"]
    assert (event.by, event.target) == ("alice", "production")
    assert event.detail == f"build {build_id} redeploys deployment {first}"
    assert [a.sha256 for a in newest.artifacts] == ["a1" * 32]


def test_a_rollback_of_a_rollback_finds_the_artifacts_where_they_were_made(
    store: Store, agent: int
) -> None:
    first = ship(store, agent, "a1" * 32)
    ship(store, agent, "b2" * 32)
    _run(store, agent, roll_back(store, first))
    redeployed = store.deployments.deployments("production", 1)[0].id
    ship(store, agent, "c3" * 32)
    rollback = roll_back(store, redeployed)
    (attempt,) = claim(store, agent)
    assert attempt.build_id == rollback
    needed = store.artifacts.inputs(attempt.attempt_id).needed
    assert [a.sha256 for a in needed] == ["a1" * 32]


def test_a_git_rollback_is_pinned_to_the_deployed_commit(store: Store, agent: int) -> None:
    commit = "1f" * 20
    build_id = store.builds.create(
        name="ship",
        pipeline_yaml=SHIP,
        source_name="ship.yml",
        env={},
        jobs=_jobs(SHIP),
        source=SourceSpec(git_url="https://example.com/shop.git", git_ref="main"),
    )
    store.artifacts.set_commit(build_id, commit, 1_700_000_000_000)
    for _ in range(2):
        end(store, claim(store, agent)[0])
    first = store.deployments.deployments("production", 1)[0]
    assert first.committed_at_ms == 1_700_000_000_000
    ship(store, agent, "b2" * 32)
    rollback = roll_back(store, first.id)
    (attempt,) = claim(store, agent)
    source = store.artifacts.inputs(attempt.attempt_id).source
    assert source is not None
    assert (source.git_url, source.git_commit) == ("https://example.com/shop.git", commit)
    assert_claim_carried_inputs(store, attempt)
    assert attempt.build_id == rollback


def test_gc_keeps_what_a_rollback_deploys(store: Store, agent: int) -> None:
    first = ship(store, agent, "a1" * 32)
    ship(store, agent, "b2" * 32)
    store.artifacts.collect(int(time.time() * 1000) + 1000)
    _run(store, agent, roll_back(store, first))
    assert [a.sha256 for a in store.deployments.deployments("production", 1)[0].artifacts] == [
        "a1" * 32
    ]


def _run(store: Store, agent: int, build_id: int) -> list[Assignment]:
    taken = claim(store, agent)
    assert [a.build_id for a in taken] == [build_id]
    for attempt in taken:
        end(store, attempt)
    return taken


def _jobs(text: str) -> list[NewJob]:
    return jobs_from_pipeline(load_pipeline(text, "ship.yml"), {})
