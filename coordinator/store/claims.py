"""Claims: the oldest queued jobs an agent's labels satisfy become its attempts, atomically.

This is the hottest write path, so it works on columns and statements, never ORM objects:

1. read candidate ids along the queue index (ids and labels only, a page at a time);
2. take them with one compare-and-set UPDATE ... WHERE status = 'queued' RETURNING, which on
   PostgreSQL also skips rows another coordinator has locked (FOR UPDATE SKIP LOCKED) instead of
   waiting for it; on SQLite the writer lock serialises the statement;
3. insert the attempts and their steps, and mark the builds running.

A job another claimer took between (1) and (2) is simply not returned by (2), so no job is ever
given twice; a claim that lost some candidates that way looks again, a bounded number of times.

No job can poison a claim: one whose stored labels or spec cannot be read is failed (reason
`error`, logged) in the claim's transaction, and the claim goes on without it.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    Table,
    bindparam,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlmodel import Session

from conveyor.states import BuildStatus, JobStatus, Outcome, Reason, StepStatus
from coordinator.config import CLAIM_PAGE_ROWS, CLAIM_ROUNDS, CLAIM_SCAN_LIMIT
from coordinator.domain.records import Assignment, StepContext
from coordinator.policy import scheduling as scheduler
from coordinator.store import locks, progress, rowmap
from coordinator.store.artifacts import attempt_inputs
from coordinator.store.delivery_tables import DeliveryJobRow
from coordinator.store.engine import now_ms
from coordinator.store.prepared import Prepared, PreparedInsert
from coordinator.store.secrets import sealed_for
from coordinator.store.tables import AttemptRow, BuildRow, JobRow, StepRow

JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
STEPS: Table = StepRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]

# The claim's statements, built once with bound parameters (building one costs ten times what
# running it does); `p_`-named so they never clash with the columns they set.
_QUEUE = (
    select(JOBS.c.id, JOBS.c.queued_seq, JOBS.c.labels_json)
    .where(JOBS.c.status == JobStatus.QUEUED)
    .order_by(JOBS.c.queued_seq, JOBS.c.id)
    .limit(CLAIM_PAGE_ROWS)
)
_QUEUE_PAGE = Prepared(_QUEUE)
_QUEUE_PAGE_AFTER = Prepared(
    _QUEUE.where(
        tuple_(JOBS.c.queued_seq, JOBS.c.id) > tuple_(bindparam("p_seq"), bindparam("p_id"))
    )
)
_STILL_QUEUED = (
    select(JOBS.c.id)
    .where(JOBS.c.id.in_(bindparam("p_jobs", expanding=True)), JOBS.c.status == JobStatus.QUEUED)
    .with_for_update(skip_locked=True)  # PostgreSQL only; SQLite renders no locking clause
)
# The same for one candidate, the usual claim (an agent with one free slot): it can be prepared.
_ONE_STILL_QUEUED = (
    select(JOBS.c.id)
    .where(JOBS.c.id == bindparam("p_job"), JOBS.c.status == JobStatus.QUEUED)
    .with_for_update(skip_locked=True)
)


def _lookup(wanted: Column[str], key: Column[int], equals: Column[int]) -> ColumnElement[str]:
    """`(SELECT wanted FROM its table WHERE key = equals)`, every name qualified. Written out:
    SQLAlchemy renders RETURNING on SQLite without table names, and inside a subquery an
    unqualified name may resolve to the wrong table."""

    def name(column: Column[Any]) -> str:
        return f"{column.table.name}.{column.name}"

    where = f"{name(key)} = {name(equals)}"
    sql = f"(SELECT {name(wanted)} FROM {wanted.table.name} WHERE {where})"
    return literal_column(sql, type_=String)


# The build's context and the job's environment come back with the take (one statement, not a
# read after it): RETURNING cannot join, but it can look a column up by key.
_CONTEXT = (
    _lookup(BUILDS.c.event, BUILDS.c.id, JOBS.c.build_id),
    _lookup(BUILDS.c.branch, BUILDS.c.id, JOBS.c.build_id),
    _lookup(BUILDS.c.tag, BUILDS.c.id, JOBS.c.build_id),
    _lookup(DELIVERY.c.environment, DELIVERY.c.job_id, JOBS.c.id),
)
_TAKING = (
    update(JOBS)
    .where(JOBS.c.status == JobStatus.QUEUED)
    .values(
        status=JobStatus.RUNNING,
        reason="",
        message="",
        attempt_count=JOBS.c.attempt_count + 1,
    )
    .returning(
        JOBS.c.id,
        JOBS.c.build_id,
        JOBS.c.name,
        JOBS.c.spec_json,
        JOBS.c.attempt_count,
        JOBS.c.queued_at_ms,
        *_CONTEXT,
    )
)
_TAKE = _TAKING.where(JOBS.c.id.in_(_STILL_QUEUED))
_TAKE_ONE = Prepared(_TAKING.where(JOBS.c.id.in_(_ONE_STILL_QUEUED)))
# One row a statement: a claim inserts one attempt with a step or a few, and prepared single
# inserts cost less than one batched insert through the ORM session.
_ADD_ATTEMPT = PreparedInsert(ATTEMPTS)
_ADD_STEP = PreparedInsert(STEPS)
_MARK_RUNNING = Prepared(
    update(BUILDS)
    .where(BUILDS.c.id == bindparam("p_build"), BUILDS.c.status == BuildStatus.QUEUED)
    .values(status=BuildStatus.RUNNING)
)

LOGGER = logging.getLogger(__name__)
# What decoding a stored row that is not what this version wrote may raise.
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError)


class Taken(NamedTuple):
    job_id: int
    build_id: int
    name: str
    spec_json: str
    attempt_number: int
    queued_at_ms: int | None
    event: str | None
    branch: str | None
    tag: str | None
    environment: str | None

    @property
    def context(self) -> StepContext:
        return StepContext(
            self.event or "manual", self.branch or "", self.tag or "", self.environment or ""
        )


def claim(
    session: Session, agent_id: int, labels: Mapping[str, str], slots: int
) -> list[Assignment]:
    """Up to `slots` of the oldest queued jobs `labels` satisfy, as new attempts of `agent_id`."""
    assignments: list[Assignment] = []
    lost: set[int] = set()
    gate = locks.gate(session)
    for _ in range(CLAIM_ROUNDS):
        candidates = matching_queued(session, labels, slots - len(assignments), lost | gate.blocked)
        candidates, locked = locks.take(session, candidates, gate)
        if not candidates:
            break
        taken = _take(session, candidates)
        locks.drop(session, locked - {row.job_id for row in taken})
        assignments += _start_attempts(session, taken, agent_id)
        if len(taken) == len(candidates) or len(assignments) >= slots:
            break
        # Taken by another coordinator meanwhile; it may not have committed, so do not retry them.
        lost.update(set(candidates) - {row.job_id for row in taken})
    return assignments


def matching_queued(
    session: Session, labels: Mapping[str, str], wanted: int, exclude: Collection[int] = ()
) -> list[int]:
    """Ids of up to `wanted` oldest queued jobs `labels` satisfy, read a page at a time.

    Only ids and labels are read, along the queue index, and only as far as needed (at most
    CLAIM_SCAN_LIMIT jobs), so a claim costs the same with ten queued jobs or ten thousand.
    """
    found: list[int] = []
    after: tuple[int, int] | None = None
    scanned = 0
    while len(found) < wanted and scanned < CLAIM_SCAN_LIMIT:
        if after is None:
            page = _QUEUE_PAGE.run(session).all()
        else:
            page = _QUEUE_PAGE_AFTER.run(session, {"p_seq": after[0], "p_id": after[1]}).all()
        for job_id, seq, labels_json in page:
            after = (seq, job_id)
            wanted_here = len(found) < wanted and job_id not in exclude
            if not wanted_here:
                continue
            try:
                matches = scheduler.labels_match(json.loads(labels_json), labels)
            except _UNREADABLE as error:
                fail_unreadable(session, job_id, "labels", error)
                continue
            if matches:
                found.append(job_id)
        scanned += len(page)
        if len(page) < CLAIM_PAGE_ROWS:
            break
    return found


def _take(session: Session, candidates: Sequence[int]) -> list[Taken]:
    """Moves those candidates still queued to running; returns them in the candidates' order."""
    if len(candidates) == 1:
        rows = _TAKE_ONE.run(session, {"p_job": candidates[0]}).all()
    else:
        rows = list(session.execute(_TAKE, {"p_jobs": list(candidates)}).all())
    order = {job_id: index for index, job_id in enumerate(candidates)}
    return sorted((Taken._make(row) for row in rows), key=lambda t: order[t.job_id])


def _start_attempts(session: Session, taken: Sequence[Taken], agent_id: int) -> list[Assignment]:
    if not taken:
        return []
    stamp = now_ms()
    tokens = [secrets.token_urlsafe(18) for _ in taken]
    attempt_ids = [
        _ADD_ATTEMPT.add(session, _attempt_values(job, agent_id, token, stamp))
        for job, token in zip(taken, tokens, strict=True)
    ]
    assignments, steps = [], []
    for job, token, attempt_id in zip(taken, tokens, attempt_ids, strict=True):
        try:
            spec = rowmap.spec_from_json(job.spec_json)
        except _UNREADABLE as error:
            _drop_attempt(session, attempt_id)
            fail_unreadable(session, job.job_id, "spec", error)
            continue
        steps += [
            {
                "attempt_id": attempt_id,
                "idx": index,
                "name": step.name,
                "status": StepStatus.PENDING,
                "log_length": 0,
                "log_lost_bytes": 0,
            }
            for index, step in enumerate(spec.steps)
        ]
        # Sealed still: the domain opens them for the agent's answer, nothing else sees them.
        sealed = sealed_for(session, job.job_id, spec.secrets)
        assignments.append(
            Assignment(
                attempt_id,
                token,
                job.build_id,
                job.name,
                job.attempt_number,
                spec,
                sealed,
                queued_for_ms=None
                if job.queued_at_ms is None
                else max(0, stamp - job.queued_at_ms),
                context=job.context,
                # In the same transaction: what the claim decided is what the agent starts from.
                inputs=attempt_inputs(session, attempt_id, with_pipeline=False),
            )
        )
    for step_values in steps:
        _ADD_STEP.add(session, step_values)
    for build_id in sorted({job.build_id for job in taken}):
        _MARK_RUNNING.run(session, {"p_build": build_id})
    return assignments


def fail_unreadable(session: Session, job_id: int, what: str, error: Exception) -> None:
    """Fails a queued (or just taken) job whose stored `what` cannot be read, and moves its build
    on, so that it is never a candidate again."""
    build_id = session.execute(select(JOBS.c.build_id).where(JOBS.c.id == job_id)).scalar_one()
    LOGGER.error(
        "job %d of build %d: stored %s unreadable (%r); job failed", job_id, build_id, what, error
    )
    message = f"the job's stored {what} cannot be read ({type(error).__name__}); it cannot run"
    progress.set_job(session, job_id, JobStatus.FAILED, Reason.ERROR, message)
    progress.advance(session, build_id)


def _drop_attempt(session: Session, attempt_id: int) -> None:
    """Ends an attempt that was never handed out (its job could not be read), before it leases."""
    session.execute(
        update(ATTEMPTS)
        .where(ATTEMPTS.c.id == attempt_id)
        .values(
            outcome=Outcome.FAILED,
            reason=Reason.ERROR,
            message="job unreadable",
            finished_at_ms=now_ms(),
        )
    )


def _attempt_values(job: Taken, agent_id: int, token: str, stamp: int) -> dict[str, object]:
    return {
        "job_id": job.job_id,
        "build_id": job.build_id,
        "number": job.attempt_number,
        "agent_id": agent_id,
        "lease_token": token,
        "reason": "",
        "message": "",
        "cancel_requested": False,
        "started_at_ms": stamp,
    }
