"""Deployments and deploy locks in the store, on the session's backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import time

import pytest

from conveyor.states import JobStatus, Outcome, Reason
from coordinator.domain.artifact_records import NewArtifact
from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import Assignment, AttemptEnd
from coordinator.store import Store
from tests.unit.coordinator.test_store import job_of, submit

SHIP = """\
name: ship
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
    artifacts: [shop.tar]
  production:
    needs: [build]
    environment: {name: production, url: "https://shop.example"}
    steps: [{run: "true"}]
"""
ONLY_DEPLOY = """\
name: deploy
image: conveyor/busybox
jobs:
  production:
    environment: production
    steps: [{run: "true"}]
"""
NEWEST = ONLY_DEPLOY.replace(
    "    environment: production\n",
    "    environment: production\n    concurrency: {group: production, order: newest_first}\n",
)
DIGEST = "ab" * 32


def end(store: Store, assignment: Assignment, outcome: Outcome = Outcome.SUCCEEDED) -> AttemptEnd:
    reason = "" if outcome is Outcome.SUCCEEDED else Reason.AGENT_LOST
    return store.attempts.finish(
        assignment.attempt_id, outcome=outcome, reason=reason, message="", exit_code=None
    )


def claim(store: Store, agent: int, slots: int = 8) -> list[Assignment]:
    return store.attempts.claim(agent, {}, slots)


def test_a_deployment_records_its_build_job_artifacts_and_times(store: Store, agent: int) -> None:
    build_id = submit(store, SHIP)
    assert store.deployments.environments()[0].current is None
    (build,) = claim(store, agent)
    store.artifacts.add_blob(DIGEST, 3)
    new = NewArtifact(build_id, build.attempt_id, "shop.tar", DIGEST, 3, 0o644)
    store.artifacts.add_artifact(new, 10**6, 10)
    end(store, build)
    (deploy,) = claim(store, agent)
    assert store.deployments.deployments("production", 10) == []
    end(store, deploy)
    (deployment,) = store.deployments.deployments("production", 10)
    assert (deployment.environment, deployment.build_id, deployment.job) == (
        "production",
        build_id,
        "production",
    )
    assert deployment.status == "succeeded"
    assert [(a.job, a.name, a.sha256) for a in deployment.artifacts] == [
        ("build", "shop.tar", DIGEST)
    ]
    assert deployment.commit is None and deployment.redeploys is None
    assert deployment.approvals == () and deployment.actor == "admin"
    assert 0 < deployment.started_at_ms <= deployment.finished_at_ms
    (environment,) = store.deployments.environments()
    assert (environment.name, environment.url) == ("production", "https://shop.example")
    assert environment.current == deployment


def test_an_unknown_environment_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="environment 'nowhere' does not exist"):
        store.deployments.deployments("nowhere", 10)


def test_one_holder_at_a_time_and_the_oldest_waiting_goes_next(store: Store, agent: int) -> None:
    builds = [submit(store, ONLY_DEPLOY) for _ in range(3)]
    (first,) = claim(store, agent)
    assert first.build_id == builds[0]
    assert claim(store, agent) == []
    waiting = job_of(store.builds.get(builds[2]), "production")
    assert (waiting.status, waiting.reason) == (JobStatus.QUEUED, Reason.WAITING_FOR_LOCK)
    assert waiting.message == f"production is being deployed by build {builds[0]}"
    end(store, first)
    (second,) = claim(store, agent)
    assert second.build_id == builds[1]
    assert claim(store, agent) == []


def test_a_lost_attempt_frees_the_lock_and_a_retry_takes_it_again(store: Store, agent: int) -> None:
    flaky = ONLY_DEPLOY.replace(
        "    environment:", "    retry: {max: 1, when: [agent_lost]}\n    environment:"
    )
    older = submit(store, flaky)
    newer = submit(store, ONLY_DEPLOY)
    (first,) = claim(store, agent)
    end(store, first, Outcome.FAILED)
    (again,) = claim(store, agent)
    assert (again.build_id, again.attempt_number) == (older, 2)
    end(store, again)
    (last,) = claim(store, agent)
    assert last.build_id == newer


def test_an_older_build_than_the_current_deployment_is_skipped_outdated(
    store: Store, agent: int
) -> None:
    older = submit(store, SHIP)
    newer = submit(store, SHIP)
    by_build = {a.build_id: a for a in claim(store, agent)}
    end(store, by_build[newer])
    (deploy,) = claim(store, agent)
    assert deploy.build_id == newer
    end(store, deploy)
    end(store, by_build[older])
    job = job_of(store.builds.get(older), "production")
    assert (job.status, job.reason) == (JobStatus.SKIPPED, Reason.OUTDATED)
    assert f"older than build {newer}" in job.message
    assert claim(store, agent) == []


def test_newest_first_skips_the_superseded_waiters(store: Store, agent: int) -> None:
    builds = [submit(store, NEWEST)]
    (first,) = claim(store, agent)
    builds += [submit(store, NEWEST) for _ in range(3)]
    assert claim(store, agent) == []
    freed = end(store, first)
    assert set(freed.changed_builds) == {builds[1], builds[2]}
    for superseded in builds[1:3]:
        job = job_of(store.builds.get(superseded), "production")
        assert (job.status, job.reason) == (JobStatus.SKIPPED, Reason.SUPERSEDED)
    (newest,) = claim(store, agent)
    assert newest.build_id == builds[3]


def test_the_lock_is_held_in_the_store_across_a_reopen(database_url: str) -> None:
    first = Store(database_url)
    agent = first.agents.register(name="a", labels={}, capacity=8, session_hash="").id
    submit(first, ONLY_DEPLOY)
    submit(first, ONLY_DEPLOY)
    (holder,) = first.attempts.claim(agent, {}, 8)
    first.close()
    second = Store(database_url)
    try:
        assert second.attempts.claim(agent, {}, 8) == []
        end(second, holder)
        assert len(second.attempts.claim(agent, {}, 8)) == 1
    finally:
        second.close()


def test_gc_keeps_what_a_deployment_came_from(store: Store, agent: int) -> None:
    deployed = submit(store, SHIP)
    (build,) = claim(store, agent)
    store.artifacts.add_blob(DIGEST, 3)
    new = NewArtifact(deployed, build.attempt_id, "shop.tar", DIGEST, 3, 0o644)
    store.artifacts.add_artifact(new, 10**6, 10)
    end(store, build)
    end(store, claim(store, agent)[0])
    plain = submit(store, ONLY_DEPLOY.replace("    environment: production\n", ""))
    end(store, claim(store, agent)[0])
    submit(store, ONLY_DEPLOY.replace("    environment: production\n", ""))
    collected = store.artifacts.collect(int(time.time() * 1000) + 1000)
    assert collected.builds == 1, "only the build no deployment came from"
    assert DIGEST not in collected.digests
    assert [a.sha256 for a in store.artifacts.artifacts(deployed)[0]] == [DIGEST]
    assert store.builds.get(plain).jobs[0].status is JobStatus.SUCCEEDED


def test_a_job_queued_behind_a_held_lock_says_so_before_any_claim(store: Store, agent: int) -> None:
    holder = submit(store, ONLY_DEPLOY)
    claim(store, agent)
    waiting = job_of(store.builds.get(submit(store, ONLY_DEPLOY)), "production")
    assert (waiting.reason, waiting.message) == (
        Reason.WAITING_FOR_LOCK,
        f"production is being deployed by build {holder}",
    )


TWO_ENVIRONMENTS = """\
name: two
image: conveyor/busybox
jobs:
  make:
    steps: [{run: "true"}]
  eu:
    needs: [make]
    environment: eu
    steps: [{run: "true"}]
  us:
    needs: [make]
    environment: us
    steps: [{run: "true"}]
"""


def test_every_outdated_job_of_a_build_is_skipped_at_once(store: Store, agent: int) -> None:
    older, newer = submit(store, TWO_ENVIRONMENTS), submit(store, TWO_ENVIRONMENTS)
    makes = {a.build_id: a for a in claim(store, agent)}
    end(store, makes[newer])
    for deploy in claim(store, agent):
        end(store, deploy)
    end(store, makes[older])
    build = store.builds.get(older)
    assert [(j.status, j.reason) for j in build.jobs if j.name != "make"] == [
        (JobStatus.SKIPPED, Reason.OUTDATED)
    ] * 2


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [(Outcome.FAILED, Reason.TIMEOUT), (Outcome.CANCELED, Reason.CANCELED)],
)
def test_a_timed_out_or_canceled_holder_frees_the_lock(
    store: Store, agent: int, outcome: Outcome, reason: Reason
) -> None:
    first, second = submit(store, ONLY_DEPLOY), submit(store, ONLY_DEPLOY)
    (holder,) = claim(store, agent)
    if outcome is Outcome.CANCELED:
        store.builds.cancel(first)
    store.attempts.finish(
        holder.attempt_id, outcome=outcome, reason=reason, message="", exit_code=None
    )
    (deployment,) = store.deployments.deployments("production", 10)
    assert (deployment.build_id, deployment.status) == (first, outcome.value)
    (next_one,) = claim(store, agent)
    assert next_one.build_id == second


BESIDE = """\
name: beside
image: conveyor/busybox
jobs:
  make:
    steps: [{run: "true"}]
  eu:
    needs: [make]
    environment: eu
    steps: [{run: "true"}]
  notify:
    needs: [make]
    labels: {os: linux}
    steps: [{run: "true"}]
"""


def test_skipping_an_outdated_job_still_wakes_for_the_jobs_queued_beside_it(
    store: Store, agent: int
) -> None:
    older, newer = submit(store, BESIDE), submit(store, BESIDE)
    makes = {a.build_id: a for a in claim(store, agent)}
    end(store, makes[newer])
    (deploy,) = claim(store, agent)
    end(store, deploy)
    freed = end(store, makes[older])
    assert job_of(store.builds.get(older), "eu").reason == Reason.OUTDATED
    assert {"os": "linux"} in freed.queued_labels


def test_a_retried_deployment_job_takes_the_lock_again(store: Store, agent: int) -> None:
    first = submit(store, ONLY_DEPLOY)
    end(store, claim(store, agent)[0])
    assert claim(store, agent) == []  # the finished job is no lock job in flight any more
    store.builds.retry(first, "production")
    (again,) = claim(store, agent)
    assert (again.build_id, again.attempt_number) == (first, 2)
    second = submit(store, ONLY_DEPLOY)
    waiting = job_of(store.builds.get(second), "production")
    assert waiting.message == f"production is being deployed by build {first}"
