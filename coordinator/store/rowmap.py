"""Turns table rows into the store's immutable records (and job specs to and from JSON)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Row

from conveyor.states import BuildStatus, JobStatus, Outcome
from coordinator.domain.records import (
    AgentRecord,
    ApprovalRecord,
    AttemptRecord,
    BuildRecord,
    JobRecord,
    JobSpecRecord,
    StepRecord,
    StepSpecRecord,
    Trigger,
)
from coordinator.store.tables import AgentRow, AttemptRow, BuildRow, JobRow

# A build read back takes its rows as plain result rows (loading SQLModel objects costs several
# times the read): the same columns under the same names as the models'.
AnyAttempt = AttemptRow | Row[Any]
AnyBuild = BuildRow | Row[Any]
AnyJob = JobRow | Row[Any]


def spec_to_json(spec: JobSpecRecord) -> str:
    raw = asdict(spec)
    if not spec.secrets:
        del raw["secrets"]  # jobs naming none are stored as before secrets existed
    if spec.artifact_paths is None:
        del raw["artifact_paths"], raw["artifacts_always"]
    return json.dumps(raw, sort_keys=True)


def spec_from_json(text: str) -> JobSpecRecord:
    raw = json.loads(text)
    steps = tuple(StepSpecRecord(**step) for step in raw["steps"])
    return JobSpecRecord(
        steps=steps,
        timeout_s=raw["timeout_s"],
        retry_max=raw["retry_max"],
        retry_when=tuple(raw["retry_when"]),
        secrets=tuple(str(name) for name in raw.get("secrets", ())),
        # Specs stored before `privileged` existed lack it.
        privileged=bool(raw.get("privileged", False)),
        # And before `interruptible`: such jobs were never canceled by a newer push.
        interruptible=bool(raw.get("interruptible", False)),
        # And before the artifacts rule was frozen in the spec (None: read the pipeline).
        artifact_paths=_optional_paths(raw.get("artifact_paths")),
        artifacts_always=bool(raw.get("artifacts_always", False)),
    )


def _optional_paths(value: object) -> tuple[str, ...] | None:
    return tuple(str(path) for path in value) if isinstance(value, list) else None


def attempt_record(row: AnyAttempt, agent_name: str, steps: Sequence[StepRecord]) -> AttemptRecord:
    assert row.id is not None
    return AttemptRecord(
        id=row.id,
        number=row.number,
        agent_id=row.agent_id,
        agent_name=agent_name,
        outcome=Outcome(row.outcome) if row.outcome else None,
        reason=row.reason,
        message=row.message,
        exit_code=row.exit_code,
        started_at_ms=row.started_at_ms,
        finished_at_ms=row.finished_at_ms,
        steps=tuple(sorted(steps, key=lambda step: step.index)),
    )


_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError)


def _step_names(row: AnyJob) -> tuple[str, ...]:
    """The job's step names; none when its stored spec cannot be read (the claim fails such a
    job, saying so; reading the build must not fail with it)."""
    try:
        return tuple(step.name for step in spec_from_json(row.spec_json).steps)
    except _UNREADABLE:
        return ()


def _labels(row: AnyJob) -> dict[str, str]:
    """The job's labels; none when they cannot be read (as for the spec, above)."""
    try:
        return {str(k): str(v) for k, v in dict(json.loads(row.labels_json)).items()}
    except _UNREADABLE:
        return {}


def job_record(
    row: AnyJob,
    attempts: Sequence[AttemptRecord] = (),
    approval: ApprovalRecord | None = None,
) -> JobRecord:
    return JobRecord(
        name=row.name,
        status=JobStatus(row.status),
        needs=tuple(json.loads(row.needs_json)),
        labels=_labels(row),
        reason=row.reason,
        message=row.message,
        exit_code=row.exit_code,
        step_names=_step_names(row),
        attempts=tuple(attempts),
        approval=approval,
    )


def build_record(row: AnyBuild, jobs: Sequence[JobRecord]) -> BuildRecord:
    assert row.id is not None
    return BuildRecord(
        id=row.id,
        name=row.name,
        status=BuildStatus(row.status),
        created_at_ms=row.created_at_ms,
        finished_at_ms=row.finished_at_ms,
        cancel_requested=row.cancel_requested,
        jobs=tuple(jobs),
        event=row.event,
        branch=row.branch,
        tag=row.tag,
        redeploys=row.redeploys,
        started_by=row.started_by,
        trigger=trigger_of(lambda key: getattr(row, key)),
        error=row.error,
    )


def trigger_of(get: Callable[[str], Any]) -> Trigger | None:
    """The trigger a repository's build keeps in its row (`get` reads a column); None for every
    other build."""
    repo = get("trigger_repo")
    if repo is None:
        return None
    return Trigger(
        event=get("event"),
        repo=repo,
        branch=get("branch"),
        tag=get("tag"),
        commit=get("trigger_commit") or "",
        committed_at_ms=get("trigger_committed_at_ms"),
        message=get("trigger_message") or "",
        author=get("trigger_author") or "",
    )


def agent_record(row: AgentRow, running: Mapping[int, int]) -> AgentRecord:
    assert row.id is not None
    return AgentRecord(
        id=row.id,
        name=row.name,
        labels=dict(json.loads(row.labels_json)),
        capacity=row.capacity,
        session_hash=row.session_hash,
        last_seen_ms=row.last_seen_ms,
        running=running.get(row.id, 0),
        mode=row.mode,
        credential_hash=row.credential_hash,
    )
