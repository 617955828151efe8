"""A build's context (event, branch, tag) stored, and `when:` decided at creation, on the store."""

from __future__ import annotations

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus, JobStatus, Reason
from coordinator.domain.errors import ConflictError
from coordinator.domain.submit import build_context, jobs_from_pipeline
from coordinator.policy.conditions import BuildContext
from coordinator.store import Store
from tests.unit.coordinator.test_store import claim_one, fail, job_of, statuses, succeed

DELIVERY = """\
name: delivery
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
  production:
    needs: [build]
    when: {branch: [main, "release/*"]}
    steps: [{run: "true"}]
  smoke:
    needs: [production]
    steps: [{run: "true"}]
"""


@pytest.fixture
def agent_id(store: Store) -> int:
    return store.agents.register(name="a", labels={}, capacity=4, session_hash="").id


def create(store: Store, context: BuildContext) -> int:
    pipeline = load_pipeline(DELIVERY)
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=DELIVERY,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}, context),
        context=context,
    )


def test_the_context_is_stored_and_read_back(store: Store) -> None:
    branch = store.builds.get(create(store, BuildContext("manual", branch="release/2")))
    assert (branch.event, branch.branch, branch.tag) == ("manual", "release/2", None)
    tag = store.builds.get(create(store, BuildContext("manual", tag="v1")))
    assert (tag.event, tag.branch, tag.tag) == ("manual", None, "v1")


def test_a_false_condition_skips_the_job_and_its_dependents_at_once(
    store: Store, agent_id: int
) -> None:
    build_id = create(store, BuildContext("manual", branch="other"))
    build = store.builds.get(build_id)
    production, smoke = job_of(build, "production"), job_of(build, "smoke")
    assert (production.status, production.reason) == (JobStatus.SKIPPED, Reason.CONDITION)
    assert production.message == "not run: branch other is not one of main, release/*"
    assert (smoke.status, smoke.reason) == (JobStatus.SKIPPED, Reason.CONDITION)
    assert smoke.message == "not run: production skipped by condition"
    succeed(store, claim_one(store, agent_id))
    # Not meant to run on this branch is not a failure: the build succeeds.
    assert store.builds.get(build_id).status is BuildStatus.SUCCEEDED
    assert store.attempts.claim(agent_id, {}, 4) == []


def test_a_true_condition_lets_the_job_run(store: Store, agent_id: int) -> None:
    build_id = create(store, BuildContext("manual", branch="main"))
    assert statuses(store, build_id)["production"] is JobStatus.WAITING
    succeed(store, claim_one(store, agent_id))
    assert statuses(store, build_id)["production"] is JobStatus.QUEUED


def test_a_retry_never_runs_a_job_its_condition_skipped(store: Store, agent_id: int) -> None:
    build_id = create(store, BuildContext("manual", branch="other"))
    fail(store, claim_one(store, agent_id), "exit_code", 1)
    assert store.builds.get(build_id).status is BuildStatus.FAILED
    store.builds.retry(build_id, None)
    assert statuses(store, build_id) == {
        "build": JobStatus.QUEUED,
        "production": JobStatus.SKIPPED,
        "smoke": JobStatus.SKIPPED,
    }
    with pytest.raises(ConflictError, match="not meant to run in this build"):
        store.builds.retry(build_id, "production")


def test_build_context_checks_what_the_client_sends() -> None:
    assert build_context("", "") == BuildContext("manual")
    assert build_context("main", "") == BuildContext("manual", branch="main")
    with pytest.raises(ValueError, match="not both"):
        build_context("main", "v1")
    with pytest.raises(ValueError, match=r"branch: too long \(256 > 255 bytes\)"):
        build_context("b" * 256, "")
    for bad in ("-x", "a b", "a\nb", "a\x00b"):
        with pytest.raises(ValueError, match="tag: invalid name"):
            build_context("", bad)
