"""Reads shared by the store's transactions: rows by key, and builds assembled into records.

Every function runs inside the caller's session; none commits.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, Table, bindparam
from sqlalchemy import select as select_columns
from sqlmodel import Session, col, select

from conveyor.states import JobStatus, StepStatus
from coordinator.domain.records import (
    ApprovalRecord,
    AttemptRecord,
    BuildRecord,
    JobRecord,
    StepRecord,
)
from coordinator.policy import scheduling as scheduler
from coordinator.store import progress, rowmap
from coordinator.store.prepared import Prepared
from coordinator.store.tables import AgentRow, ApprovalRow, AttemptRow, BuildRow, JobRow, StepRow

# A build is read back after every change a follower sees: its statements are built once.
_BUILD_JOBS = (
    select(JobRow).where(JobRow.build_id == bindparam("p_build")).order_by(col(JobRow.position))
)
BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
STEPS: Table = StepRow.__table__  # type: ignore[attr-defined]
BUILD_ROW = Prepared(select_columns(BUILDS).where(BUILDS.c.id == bindparam("p_build")))
_JOB_ROWS = Prepared(
    select_columns(JOBS).where(JOBS.c.build_id == bindparam("p_build")).order_by(JOBS.c.position)
)
AGENTS: Table = AgentRow.__table__  # type: ignore[attr-defined]
# The step columns a build read shows, named apart from the attempt's own (`s_idx`, ...).
_STEP_COLUMNS = ("idx", "name", "status", "exit_code", "started_at_ms", "finished_at_ms",
                 "log_length", "log_lost_bytes")  # fmt: skip
# Each attempt with its agent's name and its steps (a row per step), in one statement.
_BUILD_ATTEMPTS = Prepared(
    select_columns(
        ATTEMPTS,
        AGENTS.c.name.label("agent_name"),
        *(STEPS.c[name].label(f"s_{name}") for name in _STEP_COLUMNS),
    )
    .outerjoin(AGENTS, AGENTS.c.id == ATTEMPTS.c.agent_id)
    .outerjoin(STEPS, STEPS.c.attempt_id == ATTEMPTS.c.id)
    .where(ATTEMPTS.c.build_id == bindparam("p_build"))
    .order_by(ATTEMPTS.c.id, STEPS.c.idx)
)


def build_jobs(session: Session, build_id: int) -> list[JobRow]:
    return list(session.exec(_BUILD_JOBS, params={"p_build": build_id}))


def build_record(session: Session, build: rowmap.AnyBuild, *, with_attempts: bool) -> BuildRecord:
    """The build as a record, read with plain statements (what is pending in the session must
    be flushed first, as every caller does)."""
    assert build.id is not None
    jobs: list[rowmap.AnyJob] = list(_JOB_ROWS.run(session, {"p_build": build.id}).all())
    attempts: dict[int, list[AttemptRecord]] = {}
    if with_attempts:
        attempts = attempt_records(session, build.id)
    statuses = {job.name: JobStatus(job.status) for job in jobs}
    gates = approval_records(session, jobs)
    records = [
        with_waiting_message(
            rowmap.job_record(job, attempts.get(job.id or 0, []), gates.get(job.id or 0)),
            statuses,
        )
        for job in jobs
    ]
    return rowmap.build_record(build, records)


def approval_records(session: Session, jobs: Sequence[rowmap.AnyJob]) -> dict[int, ApprovalRecord]:
    """Each gate's prompt and, once it is decided, its latest decision (a retried gate waits
    for a new one)."""
    gates = {job.id: job for job in jobs if job.approval_json is not None and job.id is not None}
    if not gates:
        return {}
    decided: dict[int, ApprovalRow] = {}
    rows = session.exec(
        select(ApprovalRow)
        .where(col(ApprovalRow.job_id).in_(list(gates)))
        .order_by(col(ApprovalRow.id))
    )
    for row in rows:
        decided[row.job_id] = row
    result: dict[int, ApprovalRecord] = {}
    for job_id, job in gates.items():
        assert job.approval_json is not None
        gate = progress.gate_of(job.approval_json)
        latest = decided.get(job_id)
        if latest is None or not JobStatus(job.status).final:
            result[job_id] = ApprovalRecord(gate.prompt, roles=gate.roles)
        else:
            result[job_id] = ApprovalRecord(
                gate.prompt,
                latest.decision,
                latest.decided_by,
                latest.decided_at_ms,
                latest.comment,
                gate.roles,
            )
    return result


def attempt_records(session: Session, build_id: int) -> dict[int, list[AttemptRecord]]:
    result: dict[int, list[AttemptRecord]] = {}
    rows = _BUILD_ATTEMPTS.run(session, {"p_build": build_id})
    for _, lines in itertools.groupby(rows, key=lambda row: row.id):
        first, *rest = lines
        steps = [_step(line) for line in (first, *rest) if line.s_idx is not None]
        record = rowmap.attempt_record(first, first.agent_name or "?", steps)
        result.setdefault(first.job_id, []).append(record)
    return result


def _step(line: Row[Any]) -> StepRecord:
    return StepRecord(
        index=line.s_idx,
        name=line.s_name,
        status=StepStatus(line.s_status),
        exit_code=line.s_exit_code,
        started_at_ms=line.s_started_at_ms,
        finished_at_ms=line.s_finished_at_ms,
        log_length=line.s_log_length,
        log_lost_bytes=line.s_log_lost_bytes,
    )


def with_waiting_message(job: JobRecord, statuses: Mapping[str, JobStatus]) -> JobRecord:
    if job.status is not JobStatus.WAITING:
        return job
    message = scheduler.waiting_message(job.needs, statuses)
    return JobRecord(**{**job.__dict__, "reason": "waiting_for_needs", "message": message})
