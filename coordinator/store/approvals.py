"""Approval gates' decisions and timeouts. One public method, one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlmodel import Session, col

from conveyor.states import JobStatus, Reason
from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.domain.records import BuildRecord
from coordinator.store import audit, progress, queries
from coordinator.store.base import Component
from coordinator.store.engine import now_ms
from coordinator.store.tables import ApprovalRow, BuildRow, JobRow

APPROVED = "approved"
REJECTED = "rejected"

Authorize = Callable[[Sequence[str]], None]
"""Raises unless the caller may decide a gate that admits these roles."""


class ApprovalStore(Component):
    def decide(
        self,
        build_id: int,
        job_name: str,
        *,
        approve: bool,
        by: str,
        comment: str,
        authorize: Authorize,
    ) -> BuildRecord:
        """Records the one decision on a waiting gate and moves the build on; ConflictError
        (nothing changed) for a job that is not a gate or not waiting for a decision."""
        with self._tx() as session:
            job = _gate_job(session, build_id, job_name)
            assert job.id is not None and job.approval_json is not None
            authorize(progress.gate_of(job.approval_json).roles)
            decision = APPROVED if approve else REJECTED
            # The status check and the change are one statement: of two deciders, one wins.
            won = session.execute(
                update(JobRow)
                .where(
                    col(JobRow.id) == job.id,
                    col(JobRow.status) == JobStatus.WAITING_FOR_APPROVAL,
                )
                .values(**_outcome(approve, by, comment))
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError(_not_waiting(session, job))
            session.add(
                ApprovalRow(
                    job_id=job.id,
                    decision=decision,
                    decided_by=by,
                    decided_at_ms=now_ms(),
                    comment=comment,
                )
            )
            action = AuditAction.APPROVE if approve else AuditAction.REJECT
            audit.record(session, by, action, f"build {build_id} job {job_name}", comment)
            session.flush()
            progress.advance(session, build_id)
            session.expire_all()
            build = session.get(BuildRow, build_id)
            assert build is not None
            return queries.build_record(session, build, with_attempts=True)

    def expire_due(self) -> list[int]:
        """Fails every waiting gate past its deadline (reason timeout); the builds it moved on."""
        with self._tx() as session:
            due = session.execute(
                select(col(JobRow.id), col(JobRow.build_id)).where(
                    col(JobRow.status) == JobStatus.WAITING_FOR_APPROVAL,
                    col(JobRow.approval_deadline_ms) <= now_ms(),
                )
            ).all()
            for row in due:
                progress.set_job(
                    session, row.id, JobStatus.FAILED, Reason.TIMEOUT, "no decision in time"
                )
            builds = sorted({row.build_id for row in due})
            for build_id in builds:
                progress.advance(session, build_id)
            return builds


def _outcome(approve: bool, by: str, comment: str) -> dict[str, object]:
    said = f": {comment}" if comment else ""
    if approve:
        return {"status": JobStatus.SUCCEEDED, "reason": "", "message": f"approved by {by}{said}"}
    return {
        "status": JobStatus.FAILED,
        "reason": Reason.REJECTED,
        "message": f"rejected by {by}{said}",
    }


def _gate_job(session: Session, build_id: int, job_name: str) -> JobRow:
    if session.get(BuildRow, build_id) is None:
        raise NotFoundError(f"build {build_id} does not exist")
    job: JobRow | None = session.execute(
        select(JobRow).where(col(JobRow.build_id) == build_id, col(JobRow.name) == job_name)
    ).scalar_one_or_none()
    if job is None:
        raise NotFoundError(f"build {build_id} has no job '{job_name}'")
    if job.approval_json is None:
        raise ConflictError(f"job '{job_name}' is not an approval gate")
    return job


def _not_waiting(session: Session, job: JobRow) -> str:
    session.expire(job)
    status = JobStatus(job.status)
    if status is JobStatus.SUCCEEDED or job.reason == Reason.REJECTED:
        return f"job '{job.name}' was already decided ({job.message})"
    if status.final:
        return f"job '{job.name}' is {status} ({job.reason}); there is nothing to decide"
    return f"job '{job.name}' is not waiting for approval yet: {status}"
