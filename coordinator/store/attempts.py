"""Attempts: claims, step events and results, the hot paths of the farm.

Each is a handful of single SQL statements on columns (no ORM objects are loaded), so their cost
does not grow with the size of a build or the history of the farm. The statements run for every
job are built once, at import, with bound parameters: building a statement costs ten times what
running a built one does (SQLAlchemy's compiled cache then serves them at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from sqlalchemy import Row, Table, bindparam, exists, func, select, update
from sqlmodel import Session, col

from conveyor.states import JobStatus, Outcome, Reason, StepStatus
from coordinator.config import MAX_UNSTARTED_REQUEUES
from coordinator.domain.errors import FencedError, NotFoundError
from coordinator.domain.records import Assignment, AttemptEnd, LiveAttempt, StepFinish
from coordinator.policy import retry
from coordinator.store import claims, deployments, progress, rowmap
from coordinator.store.base import Component
from coordinator.store.delivery_tables import DeliveryJobRow
from coordinator.store.engine import now_ms
from coordinator.store.prepared import Prepared
from coordinator.store.tables import AttemptRow, BuildRow, JobRow, StepRow

ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
STEPS: Table = StepRow.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]

# A step changes only while its attempt is live (one statement: no read first).
_LIVE_STEP = (
    STEPS.c.attempt_id == bindparam("p_attempt"),
    STEPS.c.idx == bindparam("p_index"),
    exists().where(ATTEMPTS.c.id == bindparam("p_attempt"), ATTEMPTS.c.outcome.is_(None)),
)
# The attempt's cancel flag comes back with the change: one statement, no read after it.
_START_STEP = Prepared(
    update(STEPS)
    .where(*_LIVE_STEP)
    .values(status=StepStatus.RUNNING, started_at_ms=bindparam("p_stamp"))
    .returning(
        select(ATTEMPTS.c.cancel_requested)
        .where(ATTEMPTS.c.id == bindparam("p_attempt"))
        .scalar_subquery()
    )
)
_FINISH_STEP = Prepared(
    update(STEPS)
    .where(*_LIVE_STEP)
    .values(
        status=bindparam("p_status"),
        exit_code=bindparam("p_exit"),
        log_length=bindparam("p_length"),
        log_lost_bytes=bindparam("p_lost"),
        finished_at_ms=bindparam("p_stamp"),
        started_at_ms=func.coalesce(STEPS.c.started_at_ms, bindparam("p_stamp")),
    )
)
_ATTEMPT_OUTCOME = Prepared(
    select(ATTEMPTS.c.outcome).where(ATTEMPTS.c.id == bindparam("p_attempt"))
)
_RECORD_RESULT = Prepared(
    update(ATTEMPTS)
    .where(ATTEMPTS.c.id == bindparam("p_attempt"), ATTEMPTS.c.outcome.is_(None))
    .values(
        outcome=bindparam("p_outcome"),
        reason=bindparam("p_reason"),
        message=bindparam("p_message"),
        exit_code=bindparam("p_exit"),
        finished_at_ms=bindparam("p_stamp"),
    )
    .returning(
        ATTEMPTS.c.job_id, ATTEMPTS.c.build_id, ATTEMPTS.c.number, ATTEMPTS.c.cancel_requested
    )
)
_RECORDED = Prepared(
    select(ATTEMPTS.c.build_id, ATTEMPTS.c.outcome, ATTEMPTS.c.reason).where(
        ATTEMPTS.c.id == bindparam("p_attempt")
    )
)
_STEP_STATUSES = Prepared(
    select(STEPS.c.idx, STEPS.c.status).where(STEPS.c.attempt_id == bindparam("p_attempt"))
)
_CLOSING = (
    update(STEPS)
    .where(STEPS.c.attempt_id == bindparam("p_attempt"), STEPS.c.idx == bindparam("p_index"))
    .values(status=bindparam("p_status"))
)
_CLOSE_STEP = Prepared(_CLOSING)
_CLOSE_RUNNING_STEP = Prepared(_CLOSING.values(finished_at_ms=bindparam("p_stamp")))
_JOB_TALLY = Prepared(
    select(
        JOBS.c.attempt_count,
        JOBS.c.retry_base,
        JOBS.c.unstarted_requeues,
        JOBS.c.spec_json,
        JOBS.c.labels_json,
        JOBS.c.reason,
        JOBS.c.message,
        BUILDS.c.cancel_requested.label("build_canceling"),
        DELIVERY.c.job_id.label("delivery_job"),
        DELIVERY.c.environment,
    )
    .join(BUILDS, BUILDS.c.id == JOBS.c.build_id)
    .outerjoin(DELIVERY, DELIVERY.c.job_id == JOBS.c.id)
    .where(JOBS.c.id == bindparam("p_job"))
)


class AttemptStore(Component):
    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        """Atomically gives up to `slots` of the oldest queued jobs matching `labels`."""
        if slots <= 0:
            return []
        with self._tx() as session:
            return claims.claim(session, agent_id, labels, slots)

    def start_step(self, attempt_id: int, index: int) -> bool:
        """Marks a step running; returns whether the attempt has been asked to cancel."""
        values = {"p_attempt": attempt_id, "p_index": index, "p_stamp": now_ms()}
        with self._tx() as session:
            started = _START_STEP.run(session, values).one_or_none()
            if started is None:
                _refuse_step(session, attempt_id, index)
            return bool(started[0])

    def finish_step(
        self,
        attempt_id: int,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_length: int,
        log_lost_bytes: int = 0,
    ) -> None:
        step = StepFinish(index, status, exit_code, log_length, log_lost_bytes)
        with self._tx() as session:
            _update_step(session, _FINISH_STEP, _step_values(attempt_id, step))

    def finish(
        self,
        attempt_id: int,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None = None,
    ) -> AttemptEnd:
        """Records an attempt's result once, after `step`'s end if given; a repeated finish
        returns the stored result (and changes no step: the statement finds the attempt ended)."""
        with self._tx() as session:
            if step is not None:
                _FINISH_STEP.run(session, _step_values(attempt_id, step))
            values = {
                "p_attempt": attempt_id,
                "p_outcome": outcome,
                "p_reason": reason,
                "p_message": message,
                "p_exit": exit_code,
                "p_stamp": now_ms(),
            }
            recorded = _RECORD_RESULT.run(session, values).one_or_none()
            if recorded is None:
                return _already_recorded(session, attempt_id)
            started = _close_steps(session, attempt_id, outcome)
            ended = retry.EndedAttempt(recorded.number, outcome, reason, message, started)
            job = _JOB_TALLY.run(session, {"p_job": recorded.job_id}).one()
            requeued = _settle_job(
                session, recorded.job_id, job, ended, exit_code,
                canceled=bool(recorded.cancel_requested),
            )  # fmt: skip
            environment = None if job.delivery_job is None else job.environment
            freed = deployments.after_attempt(session, recorded.job_id, attempt_id, environment)
            queued = progress.advance(session, recorded.build_id)
            if requeued is not None:
                queued.append(requeued)
            queued += freed.queued_labels
            return AttemptEnd(
                recorded.build_id,
                outcome,
                reason,
                jobs_queued=bool(queued),
                queued_labels=tuple(queued),
                changed_builds=tuple(sorted(freed.changed_builds - {recorded.build_id})),
            )

    def live(self) -> list[LiveAttempt]:
        step_count = (
            select(func.count())
            .where(col(StepRow.attempt_id) == col(AttemptRow.id))
            .correlate(AttemptRow)
            .scalar_subquery()
        )
        with self._tx() as session:
            rows = session.execute(
                select(
                    col(AttemptRow.id),
                    col(AttemptRow.agent_id),
                    col(AttemptRow.build_id),
                    col(AttemptRow.lease_token),
                    col(AttemptRow.cancel_requested),
                    step_count,
                ).where(col(AttemptRow.outcome).is_(None))
            ).all()
            return [LiveAttempt(*row) for row in rows]

    def result(self, attempt_id: int) -> tuple[Outcome | None, str, str]:
        """(outcome, reason, lease token) of an attempt; outcome None while it runs."""
        with self._tx() as session:
            row = session.execute(
                select(
                    col(AttemptRow.outcome), col(AttemptRow.reason), col(AttemptRow.lease_token)
                ).where(col(AttemptRow.id) == attempt_id)
            ).one_or_none()
            if row is None:
                raise NotFoundError(f"attempt {attempt_id} does not exist")
            return (Outcome(row.outcome) if row.outcome else None), row.reason, row.lease_token


def _step_values(attempt_id: int, step: StepFinish) -> dict[str, object]:
    return {
        "p_attempt": attempt_id,
        "p_index": step.index,
        "p_status": step.status,
        "p_exit": step.exit_code,
        "p_length": step.log_length,
        "p_lost": step.log_lost_bytes,
        "p_stamp": now_ms(),
    }


def _update_step(session: Session, statement: Prepared, values: dict[str, Any]) -> None:
    """Runs `_FINISH_STEP` on a live attempt's step."""
    changed = statement.run(session, values)
    if changed.rowcount != 1:
        _refuse_step(session, values["p_attempt"], values["p_index"])


def _refuse_step(session: Session, attempt_id: int, index: int) -> NoReturn:
    """Says why a step statement changed nothing: no such attempt or step, or it has ended."""
    outcome = _ATTEMPT_OUTCOME.run(session, {"p_attempt": attempt_id}).one_or_none()
    if outcome is None:
        raise NotFoundError(f"attempt {attempt_id} does not exist")
    if outcome[0] is not None:
        raise FencedError(f"attempt {attempt_id} has ended")
    raise NotFoundError(f"attempt {attempt_id} has no step {index}")


def _already_recorded(session: Session, attempt_id: int) -> AttemptEnd:
    row = _RECORDED.run(session, {"p_attempt": attempt_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"attempt {attempt_id} does not exist")
    return AttemptEnd(
        row.build_id, Outcome(row.outcome), row.reason, jobs_queued=False, already_recorded=True
    )


def _close_steps(session: Session, attempt_id: int, outcome: Outcome) -> bool:
    """Ends the attempt's unfinished steps; returns whether any step had started."""
    rows = _STEP_STATUSES.run(session, {"p_attempt": attempt_id}).all()
    statuses = [StepStatus(row.status) for row in rows]
    stamp = now_ms()
    for row, before, after in zip(
        rows, statuses, retry.close_steps(statuses, outcome), strict=True
    ):
        if after is before:
            continue
        running = before is StepStatus.RUNNING
        (_CLOSE_RUNNING_STEP if running else _CLOSE_STEP).run(
            session,
            {"p_attempt": attempt_id, "p_index": row.idx, "p_status": after, "p_stamp": stamp},
        )
    return any(status is not StepStatus.PENDING for status in statuses)


def _settle_job(
    session: Session,
    job_id: int,
    job: Row[Any],
    ended: retry.EndedAttempt,
    exit_code: int | None,
    *,
    canceled: bool,
) -> dict[str, str] | None:
    """Applies the policy's decision to the job (`job`: its `_JOB_TALLY` row); returns its
    labels if it was queued again. `canceled`: the attempt was asked to stop (its build
    canceled, or a newer push superseded it), so however it ended it is not run again."""
    canceling = canceled or bool(job.build_canceling)
    spec = rowmap.spec_from_json(job.spec_json)
    tally = retry.JobTally(
        job.attempt_count, job.retry_base, job.unstarted_requeues, spec.retry_max, spec.retry_when
    )
    decision = retry.settle(
        tally, ended, build_canceling=canceling, max_free_requeues=MAX_UNSTARTED_REQUEUES
    )
    reason, message = decision.reason, decision.message
    if decision.status is JobStatus.CANCELED and job.reason == Reason.SUPERSEDED:
        # A newer push asked for this cancel: the job says so, not the agent's "canceled".
        reason, message = job.reason, job.message
    left = progress.Ended(exit_code, decision.free)
    progress.set_job(session, job_id, decision.status, reason, message, ended=left)
    if decision.status is JobStatus.QUEUED:
        labels: dict[str, str] = json.loads(job.labels_json)
        return labels
    return None
