"""Approval gates on the store (both backends): waiting, deciding once, timeouts, artifacts."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus, JobStatus, Reason
from coordinator.domain.access import Principal, check_role
from coordinator.domain.artifact_records import NewArtifact
from coordinator.domain.errors import ConflictError, RoleError
from coordinator.domain.records import BuildRecord
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store
from tests.unit.coordinator.test_inputs_rule import assert_claim_carried_inputs
from tests.unit.coordinator.test_store import claim_one, job_of, statuses, succeed

GATED = """\
name: gated
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
    artifacts: [dist.tar]
  ship-it:
    needs: [build]
    approval: {prompt: "Ship to production?", timeout: TIMEOUT}
  production:
    needs: [ship-it]
    steps: [{run: "true"}]
"""


@pytest.fixture
def agent_id(store: Store) -> int:
    return store.agents.register(name="a", labels={}, capacity=4, session_hash="").id


def create(store: Store, timeout: str = "1h") -> int:
    text = GATED.replace("TIMEOUT", timeout)
    pipeline = load_pipeline(text)
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=text,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
    )


DIGEST = "ab" * 32


def anyone(roles: Sequence[str]) -> None:
    del roles


def decide(store: Store, build_id: int, approve: bool, comment: str = "") -> BuildRecord:
    return store.approvals.decide(
        build_id, "ship-it", approve=approve, by="admin", comment=comment, authorize=anyone
    )


def waiting_gate(store: Store, agent_id: int, timeout: str = "1h") -> int:
    build_id = create(store, timeout)
    assert statuses(store, build_id)["ship-it"] is JobStatus.WAITING
    assignment = claim_one(store, agent_id)
    store.artifacts.add_blob(DIGEST, 3)
    artifact = NewArtifact(build_id, assignment.attempt_id, "dist.tar", DIGEST, 3, 0o644)
    store.artifacts.add_artifact(artifact, 1 << 20, 10)
    succeed(store, assignment)
    return build_id


def test_a_gate_waits_for_a_decision_and_is_never_queued(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)
    gate = job_of(store.builds.get(build_id), "ship-it")
    assert (gate.status, gate.reason, gate.message) == (
        JobStatus.WAITING_FOR_APPROVAL,
        Reason.WAITING_FOR_APPROVAL,
        "Ship to production?",
    )
    assert gate.approval is not None and gate.approval.prompt == "Ship to production?"
    assert gate.approval.decision == ""
    assert store.attempts.claim(agent_id, {}, 4) == []
    assert store.builds.get(build_id).status is BuildStatus.RUNNING


def test_approval_is_recorded_once_and_lets_dependents_run(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)
    build = decide(store, build_id, True, "looks good")
    gate = job_of(build, "ship-it")
    assert gate.status is JobStatus.SUCCEEDED
    assert gate.approval is not None
    assert (gate.approval.decision, gate.approval.by, gate.approval.comment) == (
        "approved",
        "admin",
        "looks good",
    )
    assert gate.approval.at_ms is not None and gate.approval.at_ms > 0
    assert job_of(build, "production").status is JobStatus.QUEUED
    with pytest.raises(ConflictError, match="already decided"):
        decide(store, build_id, False)
    assert job_of(store.builds.get(build_id), "ship-it").approval == gate.approval
    succeed(store, claim_one(store, agent_id))
    assert store.builds.get(build_id).status is BuildStatus.SUCCEEDED


def test_rejection_fails_the_gate_and_skips_dependents(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)
    build = decide(store, build_id, False, "not today")
    gate, production = job_of(build, "ship-it"), job_of(build, "production")
    assert (gate.status, gate.reason) == (JobStatus.FAILED, Reason.REJECTED)
    assert gate.message == "rejected by admin: not today"
    assert (production.status, production.reason) == (JobStatus.SKIPPED, Reason.DEPENDENCY_FAILED)
    assert build.status is BuildStatus.FAILED


def test_a_gate_not_yet_waiting_or_not_a_gate_is_refused(store: Store, agent_id: int) -> None:
    build_id = create(store)
    with pytest.raises(ConflictError, match="not waiting for approval yet"):
        decide(store, build_id, True)
    with pytest.raises(ConflictError, match="not an approval gate"):
        store.approvals.decide(
            build_id, "build", approve=True, by="admin", comment="", authorize=anyone
        )
    assert statuses(store, build_id)["ship-it"] is JobStatus.WAITING


def test_a_refused_role_changes_nothing(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)

    def developer(roles: Sequence[str]) -> None:
        check_role(Principal("ci", "developer"), roles, "approve")

    with pytest.raises(RoleError):
        store.approvals.decide(
            build_id, "ship-it", approve=True, by="ci", comment="", authorize=developer
        )
    assert statuses(store, build_id)["ship-it"] is JobStatus.WAITING_FOR_APPROVAL


def test_a_gate_past_its_timeout_fails_with_reason_timeout(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id, timeout="0.2s")
    deadline = time.monotonic() + 30
    changed: list[int] = []
    while not changed and time.monotonic() < deadline:
        changed = store.approvals.expire_due()
    assert changed == [build_id]
    build = store.builds.get(build_id)
    assert (job_of(build, "ship-it").status, job_of(build, "ship-it").reason) == (
        JobStatus.FAILED,
        Reason.TIMEOUT,
    )
    assert job_of(build, "production").status is JobStatus.SKIPPED
    with pytest.raises(ConflictError, match="nothing to decide"):
        decide(store, build_id, True)


def test_cancel_ends_a_waiting_gate(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)
    store.builds.cancel(build_id)
    build = store.builds.get(build_id)
    assert job_of(build, "ship-it").status is JobStatus.CANCELED
    assert build.status is BuildStatus.CANCELED


def test_the_job_after_a_gate_receives_the_artifacts_of_the_gates_needs(
    store: Store, agent_id: int
) -> None:
    build_id = waiting_gate(store, agent_id)
    decide(store, build_id, True)
    production = claim_one(store, agent_id)
    inputs = store.artifacts.inputs(production.attempt_id)
    assert [(a.job, a.name, a.sha256) for a in inputs.needed] == [("build", "dist.tar", DIGEST)]
    assert_claim_carried_inputs(store, production)


def test_a_retried_gate_waits_for_a_new_decision(store: Store, agent_id: int) -> None:
    build_id = waiting_gate(store, agent_id)
    decide(store, build_id, False, "not today")
    store.builds.retry(build_id, "ship-it")
    gate = job_of(store.builds.get(build_id), "ship-it")
    assert gate.status is JobStatus.WAITING_FOR_APPROVAL
    assert gate.approval is not None and gate.approval.decision == ""
    build = decide(store, build_id, True, "now")
    gate = job_of(build, "ship-it")
    assert gate.approval is not None
    assert (gate.status, gate.approval.decision, gate.approval.comment) == (
        JobStatus.SUCCEEDED,
        "approved",
        "now",
    )
