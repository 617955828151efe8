"""Moving jobs and builds on, inside the caller's transaction, as `coordinator.policy` decides.

Shared by the build and attempt components: submitting, cancelling, retrying and ending an
attempt all end by advancing the build. Columns are read and written with single statements;
no ORM objects are loaded on these paths, and the statements every job runs are built once,
with bound parameters (see `coordinator.store.attempts`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session, col

from conveyor.states import BuildStatus, JobStatus
from coordinator.domain.notify_records import NotifyEvent
from coordinator.domain.records import GateSpec
from coordinator.policy import scheduling
from coordinator.store import locks, outbox
from coordinator.store.engine import now_ms
from coordinator.store.queue_order import next_queue_seq
from coordinator.store.tables import BuildRow, JobRow

JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]

_SET_JOB = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("p_job"))
    .values(
        status=bindparam("p_status"), reason=bindparam("p_reason"), message=bindparam("p_message")
    )
)
_QUEUE_JOB = _SET_JOB.values(queued_seq=bindparam("p_seq"), queued_at_ms=bindparam("p_stamp"))
_BUILD_JOBS = (
    select(
        JOBS.c.id,
        JOBS.c.name,
        JOBS.c.status,
        JOBS.c.needs_json,
        JOBS.c.labels_json,
        JOBS.c.reason,
        JOBS.c.approval_json,
    )
    .where(JOBS.c.build_id == bindparam("p_build"))
    .order_by(JOBS.c.position)
)
_BUILD_STATE = select(BUILDS.c.status, BUILDS.c.cancel_requested).where(
    BUILDS.c.id == bindparam("p_build")
)
_END_BUILD = (
    update(BUILDS)
    .where(BUILDS.c.id == bindparam("p_build"))
    .values(status=bindparam("p_status"), finished_at_ms=bindparam("p_stamp"))
)


def set_job(
    session: Session,
    job_id: int,
    status: JobStatus,
    reason: str,
    message: str,
    gate_timeout_s: float | None = None,
) -> None:
    values: dict[str, object] = {
        "p_job": job_id,
        "p_status": status,
        "p_reason": reason,
        "p_message": message,
    }
    if status is JobStatus.WAITING_FOR_APPROVAL and gate_timeout_s is not None:
        deadline = now_ms() + int(gate_timeout_s * 1000)
        session.execute(
            update(JobRow)
            .where(col(JobRow.id) == job_id)
            .values(status=status, reason=reason, message=message, approval_deadline_ms=deadline)
        )
        return
    if status is JobStatus.QUEUED:
        values.update(p_seq=next_queue_seq(session), p_stamp=now_ms())
    session.execute(_QUEUE_JOB if status is JobStatus.QUEUED else _SET_JOB, values)


def advance(session: Session, build_id: int) -> list[dict[str, str]]:
    """Applies the scheduler's transitions to a build and settles its final status; returns the
    labels of the jobs it queued."""
    rows = session.execute(_BUILD_JOBS, {"p_build": build_id}).all()
    states = [
        scheduling.JobState(
            row.name,
            JobStatus(row.status),
            tuple(json.loads(row.needs_json)),
            row.reason,
            gate_of(row.approval_json).prompt if row.approval_json else None,
        )
        for row in rows
    ]
    by_name = {row.name: row for row in rows}
    transitions = scheduling.advance(states)
    for step in transitions:
        row = by_name[step.name]
        timeout_s = gate_of(row.approval_json).timeout_s if row.approval_json else None
        set_job(session, row.id, step.status, step.reason, step.message, timeout_s)
    for step in transitions:
        if step.status is JobStatus.WAITING_FOR_APPROVAL:
            outbox.emit(session, NotifyEvent.GATE, build_id, gate=step.name)
    queued = [by_name[t.name] for t in transitions if t.status is JobStatus.QUEUED]
    labels = [json.loads(row.labels_json) for row in queued]
    if queued and locks.settle_queued(session, build_id, [row.id for row in queued]):
        # Outdated deployment jobs were skipped: what needs them moves on too.
        return labels + advance(session, build_id)
    statuses = {state.name: (state.status, state.reason) for state in states}
    statuses.update({step.name: (step.status, step.reason) for step in transitions})
    counted = [scheduling.outcome_status(status, reason) for status, reason in statuses.values()]
    settle_build(session, build_id, counted)
    return labels


def gate_to_json(gate: GateSpec | None) -> str | None:
    return None if gate is None else json.dumps(asdict(gate), sort_keys=True)


def gate_of(text: str) -> GateSpec:
    raw = json.loads(text)
    return GateSpec(str(raw["prompt"]), tuple(raw["roles"]), raw["timeout_s"])


def settle_build(session: Session, build_id: int, statuses: Iterable[JobStatus]) -> None:
    build = session.execute(_BUILD_STATE, {"p_build": build_id}).one()
    final = scheduling.build_outcome(statuses, build.cancel_requested)
    if final is not None and build.status != final:
        session.execute(_END_BUILD, {"p_build": build_id, "p_status": final, "p_stamp": now_ms()})
        outbox.emit(session, NotifyEvent.BUILD, build_id)


def mark_running(session: Session, build_id: int) -> None:
    session.execute(
        update(BuildRow)
        .where(col(BuildRow.id) == build_id, col(BuildRow.status) == BuildStatus.QUEUED)
        .values(status=BuildStatus.RUNNING)
    )
