"""Attempts: claims, step events and results, the hot paths of the farm.

Each is a handful of single SQL statements on columns (no ORM objects are loaded), so their cost
does not grow with the size of a build or the history of the farm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import exists, func, select, update
from sqlmodel import Session, col

from conveyor.states import JobStatus, Outcome, Reason, StepStatus
from coordinator.config import MAX_UNSTARTED_REQUEUES
from coordinator.domain.errors import FencedError, NotFoundError
from coordinator.domain.records import Assignment, AttemptEnd, LiveAttempt
from coordinator.policy import retry
from coordinator.store import claims, deployments, progress, rowmap
from coordinator.store.base import Component
from coordinator.store.engine import now_ms
from coordinator.store.tables import AttemptRow, BuildRow, JobRow, StepRow


class AttemptStore(Component):
    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        """Atomically gives up to `slots` of the oldest queued jobs matching `labels`."""
        if slots <= 0:
            return []
        with self._tx() as session:
            return claims.claim(session, agent_id, labels, slots)

    def start_step(self, attempt_id: int, index: int) -> bool:
        """Marks a step running; returns whether the attempt has been asked to cancel."""
        with self._tx() as session:
            _update_step(
                session,
                attempt_id,
                index,
                status=StepStatus.RUNNING,
                started_at_ms=now_ms(),
            )
            return bool(
                session.execute(
                    select(col(AttemptRow.cancel_requested)).where(col(AttemptRow.id) == attempt_id)
                ).scalar_one()
            )

    def finish_step(
        self,
        attempt_id: int,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_length: int,
        log_lost_bytes: int = 0,
    ) -> None:
        stamp = now_ms()
        with self._tx() as session:
            _update_step(
                session,
                attempt_id,
                index,
                status=status,
                exit_code=exit_code,
                log_length=log_length,
                log_lost_bytes=log_lost_bytes,
                finished_at_ms=stamp,
                started_at_ms=_coalesce_started(stamp),
            )

    def finish(
        self, attempt_id: int, *, outcome: Outcome, reason: str, message: str, exit_code: int | None
    ) -> AttemptEnd:
        """Records an attempt's result once; a repeated finish returns the stored result."""
        with self._tx() as session:
            recorded = session.execute(
                update(AttemptRow)
                .where(col(AttemptRow.id) == attempt_id, col(AttemptRow.outcome).is_(None))
                .values(
                    outcome=outcome,
                    reason=reason,
                    message=message,
                    exit_code=exit_code,
                    finished_at_ms=now_ms(),
                )
                .returning(
                    col(AttemptRow.job_id),
                    col(AttemptRow.build_id),
                    col(AttemptRow.number),
                    col(AttemptRow.cancel_requested),
                )
            ).one_or_none()
            if recorded is None:
                return _already_recorded(session, attempt_id)
            started = _close_steps(session, attempt_id, outcome)
            ended = retry.EndedAttempt(recorded.number, outcome, reason, message, started)
            requeued = _settle_job(
                session, recorded.job_id, recorded.build_id, ended, exit_code,
                canceled=bool(recorded.cancel_requested),
            )  # fmt: skip
            freed = deployments.after_attempt(session, recorded.job_id, attempt_id)
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


def _coalesce_started(stamp: int) -> object:
    return func.coalesce(col(StepRow.started_at_ms), stamp)


def _update_step(session: Session, attempt_id: int, index: int, **values: object) -> None:
    """One statement: the step changes only while its attempt is live."""
    live = exists().where(col(AttemptRow.id) == attempt_id, col(AttemptRow.outcome).is_(None))
    changed = session.execute(
        update(StepRow)
        .where(col(StepRow.attempt_id) == attempt_id, col(StepRow.idx) == index, live)
        .values(**values)
    )
    if changed.rowcount == 1:  # type: ignore[attr-defined]
        return
    outcome = session.execute(
        select(col(AttemptRow.outcome)).where(col(AttemptRow.id) == attempt_id)
    ).one_or_none()
    if outcome is None:
        raise NotFoundError(f"attempt {attempt_id} does not exist")
    if outcome[0] is not None:
        raise FencedError(f"attempt {attempt_id} has ended")
    raise NotFoundError(f"attempt {attempt_id} has no step {index}")


def _already_recorded(session: Session, attempt_id: int) -> AttemptEnd:
    row = session.execute(
        select(col(AttemptRow.build_id), col(AttemptRow.outcome), col(AttemptRow.reason)).where(
            col(AttemptRow.id) == attempt_id
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"attempt {attempt_id} does not exist")
    return AttemptEnd(
        row.build_id, Outcome(row.outcome), row.reason, jobs_queued=False, already_recorded=True
    )


def _close_steps(session: Session, attempt_id: int, outcome: Outcome) -> bool:
    """Ends the attempt's unfinished steps; returns whether any step had started."""
    rows = session.execute(
        select(col(StepRow.idx), col(StepRow.status)).where(col(StepRow.attempt_id) == attempt_id)
    ).all()
    statuses = [StepStatus(row.status) for row in rows]
    stamp = now_ms()
    for row, before, after in zip(
        rows, statuses, retry.close_steps(statuses, outcome), strict=True
    ):
        if after is before:
            continue
        values: dict[str, object] = {"status": after}
        if before is StepStatus.RUNNING:
            values["finished_at_ms"] = stamp
        session.execute(
            update(StepRow)
            .where(col(StepRow.attempt_id) == attempt_id, col(StepRow.idx) == row.idx)
            .values(**values)
        )
    return any(status is not StepStatus.PENDING for status in statuses)


def _settle_job(
    session: Session,
    job_id: int,
    build_id: int,
    ended: retry.EndedAttempt,
    exit_code: int | None,
    *,
    canceled: bool,
) -> dict[str, str] | None:
    """Applies the policy's decision to the job; returns its labels if it was queued again.
    `canceled`: the attempt was asked to stop (its build canceled, or a newer push superseded
    it), so however it ended it is not run again."""
    job = session.execute(
        select(
            col(JobRow.attempt_count),
            col(JobRow.retry_base),
            col(JobRow.unstarted_requeues),
            col(JobRow.spec_json),
            col(JobRow.labels_json),
            col(JobRow.reason),
            col(JobRow.message),
        ).where(col(JobRow.id) == job_id)
    ).one()
    build_canceled = session.execute(
        select(col(BuildRow.cancel_requested)).where(col(BuildRow.id) == build_id)
    ).scalar_one()
    canceling = canceled or bool(build_canceled)
    spec = rowmap.spec_from_json(job.spec_json)
    tally = retry.JobTally(
        job.attempt_count, job.retry_base, job.unstarted_requeues, spec.retry_max, spec.retry_when
    )
    decision = retry.settle(
        tally, ended, build_canceling=canceling, max_free_requeues=MAX_UNSTARTED_REQUEUES
    )
    values: dict[str, object] = {"exit_code": exit_code}
    if decision.free:
        values["retry_base"] = col(JobRow.retry_base) + 1
        values["unstarted_requeues"] = col(JobRow.unstarted_requeues) + 1
    session.execute(update(JobRow).where(col(JobRow.id) == job_id).values(**values))
    reason, message = decision.reason, decision.message
    if decision.status is JobStatus.CANCELED and job.reason == Reason.SUPERSEDED:
        # A newer push asked for this cancel: the job says so, not the agent's "canceled".
        reason, message = job.reason, job.message
    progress.set_job(session, job_id, decision.status, reason, message)
    if decision.status is JobStatus.QUEUED:
        labels: dict[str, str] = json.loads(job.labels_json)
        return labels
    return None
