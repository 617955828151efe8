"""Moving jobs and builds on, inside the caller's transaction, as `coordinator.policy` decides.

Shared by the build and attempt components: submitting, cancelling, retrying and ending an
attempt all end by advancing the build. Columns are read and written with single statements;
no ORM objects are loaded on these paths, and the statements every job runs are built once,
with bound parameters (see `coordinator.store.attempts`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import NamedTuple

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session, col

from conveyor.states import BuildStatus, JobStatus
from coordinator.domain.notify_records import NotifyEvent
from coordinator.domain.records import GateSpec
from coordinator.policy import scheduling
from coordinator.store import locks, outbox
from coordinator.store.delivery_tables import DeliveryJobRow
from coordinator.store.engine import now_ms
from coordinator.store.prepared import Prepared
from coordinator.store.queue_order import next_queue_seq
from coordinator.store.tables import BuildRow, JobRow

JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]

_SET_JOB = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("p_job"))
    .values(
        status=bindparam("p_status"), reason=bindparam("p_reason"), message=bindparam("p_message")
    )
)
_QUEUE_JOB = _SET_JOB.values(queued_seq=bindparam("p_seq"), queued_at_ms=bindparam("p_stamp"))
# What an ended attempt adds to its job's move, in the same statement: its exit code, and for an
# attempt that never started (`free`), a retry that does not count.
_EXIT: dict[str, object] = {"exit_code": bindparam("p_exit")}
_FREE: dict[str, object] = {
    **_EXIT,
    "retry_base": JOBS.c.retry_base + 1,
    "unstarted_requeues": JOBS.c.unstarted_requeues + 1,
}
# (queued?, what the attempt's end adds) -> the statement, all built once.
_SETTERS = {
    (False, None): Prepared(_SET_JOB),
    (True, None): Prepared(_QUEUE_JOB),
    (False, False): Prepared(_SET_JOB.values(**_EXIT)),
    (True, False): Prepared(_QUEUE_JOB.values(**_EXIT)),
    (False, True): Prepared(_SET_JOB.values(**_FREE)),
    (True, True): Prepared(_QUEUE_JOB.values(**_FREE)),
}
_BUILD_JOBS = Prepared(
    select(
        JOBS.c.id,
        JOBS.c.name,
        JOBS.c.status,
        JOBS.c.needs_json,
        JOBS.c.labels_json,
        JOBS.c.reason,
        JOBS.c.approval_json,
        # The build's own state rides along, so settling it reads nothing more.
        BUILDS.c.status.label("build_status"),
        BUILDS.c.cancel_requested.label("build_canceling"),
        # Only delivery jobs (those with a row there) take part in locks.
        DELIVERY.c.job_id.label("delivery_job"),
    )
    .join(BUILDS, BUILDS.c.id == JOBS.c.build_id)
    .outerjoin(DELIVERY, DELIVERY.c.job_id == JOBS.c.id)
    .where(JOBS.c.build_id == bindparam("p_build"))
    .order_by(JOBS.c.position)
)
_BUILD_STATE = Prepared(
    select(BUILDS.c.status, BUILDS.c.cancel_requested).where(BUILDS.c.id == bindparam("p_build"))
)
_END_BUILD = Prepared(
    update(BUILDS)
    .where(BUILDS.c.id == bindparam("p_build"))
    .values(status=bindparam("p_status"), finished_at_ms=bindparam("p_stamp"))
)


class Ended(NamedTuple):
    exit_code: int | None
    free: bool


def set_job(
    session: Session,
    job_id: int,
    status: JobStatus,
    reason: str,
    message: str,
    gate_timeout_s: float | None = None,
    ended: Ended | None = None,
) -> None:
    """Moves a job; with `ended`, also records what the attempt that just ended left on it."""
    values: dict[str, object] = {
        "p_job": job_id,
        "p_status": status,
        "p_reason": reason,
        "p_message": message,
    }
    if ended is not None:
        values["p_exit"] = ended.exit_code
    waits = status is JobStatus.WAITING_FOR_APPROVAL and ended is None
    if waits and gate_timeout_s is not None:
        deadline = now_ms() + int(gate_timeout_s * 1000)
        session.execute(
            update(JobRow)
            .where(col(JobRow.id) == job_id)
            .values(status=status, reason=reason, message=message, approval_deadline_ms=deadline)
        )
        return
    queued = status is JobStatus.QUEUED
    if queued:
        values.update(p_seq=next_queue_seq(session), p_stamp=now_ms())
    _SETTERS[queued, None if ended is None else ended.free].run(session, values)


class JobLine(NamedTuple):
    """What advancing a build reads of each of its jobs (a row of `_BUILD_JOBS`)."""

    id: int
    name: str
    status: str
    needs_json: str
    labels_json: str
    reason: str
    approval_json: str | None
    build_status: str
    build_canceling: bool
    delivery_job: int | None


def advance(
    session: Session, build_id: int, known: Sequence[JobLine] | None = None
) -> list[dict[str, str]]:
    """Applies the scheduler's transitions to a build and settles its final status; returns the
    labels of the jobs it queued. `known`: the build's jobs as this transaction just wrote them
    (a new build's), so they are not read back."""
    rows = known
    if rows is None:
        rows = [JobLine._make(row) for row in _BUILD_JOBS.run(session, {"p_build": build_id})]
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
    delivery = [row.id for row in queued if row.delivery_job is not None]
    if delivery and locks.settle_queued(session, build_id, delivery):
        # Outdated deployment jobs were skipped: what needs them moves on too.
        return labels + advance(session, build_id)
    statuses = {state.name: (state.status, state.reason) for state in states}
    statuses.update({step.name: (step.status, step.reason) for step in transitions})
    counted = [scheduling.outcome_status(status, reason) for status, reason in statuses.values()]
    state = (rows[0].build_status, rows[0].build_canceling) if rows else None
    settle_build(session, build_id, counted, state)
    return labels


def gate_to_json(gate: GateSpec | None) -> str | None:
    return None if gate is None else json.dumps(asdict(gate), sort_keys=True)


def gate_of(text: str) -> GateSpec:
    raw = json.loads(text)
    return GateSpec(str(raw["prompt"]), tuple(raw["roles"]), raw["timeout_s"])


def settle_build(
    session: Session,
    build_id: int,
    statuses: Iterable[JobStatus],
    state: tuple[str, bool] | None = None,
) -> None:
    """Ends the build once its jobs are all final. `state`: its (status, cancel_requested) as
    read in this transaction already (None: read here)."""
    if state is None:
        row = _BUILD_STATE.run(session, {"p_build": build_id}).one()
        state = (row.status, row.cancel_requested)
    status, canceling = state
    final = scheduling.build_outcome(statuses, bool(canceling))
    if final is not None and status != final:
        _END_BUILD.run(session, {"p_build": build_id, "p_status": final, "p_stamp": now_ms()})
        outbox.emit(session, NotifyEvent.BUILD, build_id)


def mark_running(session: Session, build_id: int) -> None:
    session.execute(
        update(BuildRow)
        .where(col(BuildRow.id) == build_id, col(BuildRow.status) == BuildStatus.QUEUED)
        .values(status=BuildStatus.RUNNING)
    )
