"""Builds: submission, reading, cancelling and retrying. One public method, one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import RowMapping, Select, Table, func, select, update
from sqlmodel import Session, col

from conveyor.states import BuildStatus, JobStatus, Reason
from coordinator.domain.access import SERVER_TOKEN_NAME
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.domain.notify_records import NotifyEvent
from coordinator.domain.records import (
    BuildFilter,
    BuildRecord,
    BuildSummary,
    CancelResult,
    LiveAttempt,
    NewJob,
    Trigger,
)
from coordinator.policy import retry
from coordinator.policy.conditions import MANUAL, BuildContext
from coordinator.store import audit, deployments, outbox, progress, queries, rowmap
from coordinator.store.artifacts import add_build_source
from coordinator.store.base import Component
from coordinator.store.engine import now_ms
from coordinator.store.prepared import PreparedInsert
from coordinator.store.tables import AttemptRow, BuildRow, JobRow

BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
# Submission inserts with prepared statements: the ORM's unit of work would flush the same rows
# at several times the cost.
_ADD_BUILD = PreparedInsert(BUILDS)
_ADD_JOB = PreparedInsert(JOBS)
EVERY_BUILD = BuildFilter()


def _filtered(chosen: Select[tuple[BuildRow]], only: BuildFilter) -> Select[tuple[BuildRow]]:
    if only.statuses:
        chosen = chosen.where(col(BuildRow.status).in_([s.value for s in only.statuses]))
    if only.name is not None:
        chosen = chosen.where(col(BuildRow.name) == only.name)
    if only.branch is not None:
        chosen = chosen.where(col(BuildRow.branch) == only.branch)
    return chosen


class BuildStore(Component):
    def create(
        self,
        *,
        name: str,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        jobs: Sequence[NewJob],
        source: SourceSpec | None = None,
        context: BuildContext = MANUAL,
        actor: str = SERVER_TOKEN_NAME,
    ) -> int:
        with self._tx() as session:
            return insert_build(
                session,
                name=name,
                pipeline_yaml=pipeline_yaml,
                source_name=source_name,
                env=env,
                jobs=jobs,
                source=source,
                context=context,
                actor=actor,
            )

    def get(self, build_id: int) -> BuildRecord:
        with self._tx() as session:
            build = queries.BUILD_ROW.run(session, {"p_build": build_id}).one_or_none()
            if build is None:
                raise NotFoundError(f"build {build_id} does not exist")
            return queries.build_record(session, build, with_attempts=True)

    def list(self, limit: int, only: BuildFilter = EVERY_BUILD) -> list[BuildSummary]:
        with self._tx() as session:
            newest = (
                _filtered(select(BuildRow), only)
                .order_by(col(BuildRow.id).desc())
                .limit(limit)
                .subquery()
            )
            jobs = func.count(col(JobRow.id)).label("job_count")
            counted = (
                select(newest, jobs)
                .join(JobRow, col(JobRow.build_id) == newest.c.id, isouter=True)
                .group_by(*newest.c)
                .order_by(newest.c.id.desc())
            )
            return [_summary(row._mapping) for row in session.execute(counted)]

    def cancel(self, build_id: int, by: str = SERVER_TOKEN_NAME) -> CancelResult:
        with self._tx() as session:
            build = _build(session, build_id)
            if BuildStatus(build.status).final:
                return CancelResult(queries.build_record(session, build, with_attempts=True))
            audit.record(session, by, AuditAction.CANCEL, f"build {build_id}")
            build.cancel_requested = True
            session.flush()
            running: list[LiveAttempt] = []
            for job in queries.build_jobs(session, build_id):
                status = JobStatus(job.status)
                if status in (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.WAITING_FOR_APPROVAL):
                    assert job.id is not None
                    progress.set_job(
                        session, job.id, JobStatus.CANCELED, "canceled", "canceled before it ran"
                    )
                elif status is JobStatus.RUNNING:
                    running.extend(request_attempt_cancel(session, job))
            progress.advance(session, build_id)
            session.expire_all()
            build = _build(session, build_id)
            return CancelResult(
                queries.build_record(session, build, with_attempts=True), tuple(running)
            )

    def retry(
        self, build_id: int, job_name: str | None, by: str = SERVER_TOKEN_NAME
    ) -> BuildRecord:
        with self._tx() as session:
            build = _build(session, build_id)
            jobs = queries.build_jobs(session, build_id)
            candidates = [
                retry.RetryCandidate(
                    j.name, JobStatus(j.status), tuple(json.loads(j.needs_json)), j.reason
                )
                for j in jobs
            ]
            try:
                targets = retry.retry_targets(candidates, job_name, build_id)
            except retry.RetryRefused as refused:
                kind = NotFoundError if refused.unknown_job else ConflictError
                raise kind(str(refused)) from None
            if build.collected:
                raise ConflictError(
                    f"build {build_id} cannot be retried: gc removed its source and artifacts,"
                    " which its jobs would need; submit the pipeline again instead"
                )
            for job in jobs:
                if job.name in targets:
                    job.status, job.reason, job.message = JobStatus.WAITING, "", ""
                    job.exit_code = None
                    job.approval_deadline_ms = None
                    # A manual retry gives the job its automatic retries afresh.
                    job.retry_base = job.attempt_count
            build.status = BuildStatus.RUNNING
            build.cancel_requested = False
            build.finished_at_ms = None
            detail = f"job {job_name}" if job_name else "unsuccessful jobs"
            audit.record(session, by, AuditAction.RETRY, f"build {build_id}", detail)
            session.flush()
            progress.advance(session, build_id)
            session.expire_all()
            return queries.build_record(session, _build(session, build_id), with_attempts=True)


def insert_build(
    session: Session,
    *,
    name: str,
    pipeline_yaml: str,
    source_name: str,
    env: Mapping[str, str],
    jobs: Sequence[NewJob],
    source: SourceSpec | None = None,
    context: BuildContext = MANUAL,
    actor: str = SERVER_TOKEN_NAME,
    trigger: Trigger | None = None,
    error: str = "",
) -> int:
    """Adds a build and its jobs inside the caller's transaction. With `error` the build is
    failed at once, with no jobs: its pipeline could not be read."""
    created = now_ms()
    build: dict[str, object] = {
        "event": context.event,
        "branch": context.branch,
        "tag": context.tag,
        "name": name,
        "status": BuildStatus.FAILED if error else BuildStatus.QUEUED,
        "pipeline_yaml": pipeline_yaml,
        "source_name": source_name,
        "env_json": json.dumps(dict(env)),
        "created_at_ms": created,
        "finished_at_ms": created if error else None,
        "started_by": actor,
        "error": error or None,
    }
    if trigger is not None:
        build.update(_trigger_values(trigger))
    build_id = _ADD_BUILD.add(session, build)
    if source is not None:
        add_build_source(session, build_id, source)
    if error:
        # Ended as it is made: the one place a build finishes without progress.settle_build.
        outbox.emit(session, NotifyEvent.BUILD, build_id)
        return build_id
    rows = _job_rows(build_id, jobs)
    ids = [_ADD_JOB.add(session, row) for row in rows]
    deployments.add_jobs(session, build_id, ids, jobs, actor)
    progress.advance(session, build_id, _lines(ids, rows, jobs))
    return build_id


def _lines(
    ids: Sequence[int], rows: Sequence[Mapping[str, Any]], jobs: Sequence[NewJob]
) -> list[progress.JobLine]:
    """A new build's jobs as advancing it would read them back."""
    return [
        progress.JobLine(
            job_id, row["name"], row["status"], row["needs_json"], row["labels_json"],
            row["reason"], row["approval_json"], BuildStatus.QUEUED, False,
            None if job.delivery is None else job_id,
        )
        for job_id, row, job in zip(ids, rows, jobs, strict=True)
    ]  # fmt: skip


def _trigger_values(trigger: Trigger) -> dict[str, object]:
    return {
        "trigger_repo": trigger.repo,
        "trigger_commit": trigger.commit,
        "trigger_committed_at_ms": trigger.committed_at_ms,
        "trigger_message": trigger.message,
        "trigger_author": trigger.author,
    }


def _build(session: Session, build_id: int) -> BuildRow:
    build = session.get(BuildRow, build_id)
    if build is None:
        raise NotFoundError(f"build {build_id} does not exist")
    return build


def _job_rows(build_id: int, jobs: Sequence[NewJob]) -> list[dict[str, Any]]:
    return [
        {
            "build_id": build_id,
            "position": position,
            "name": job.name,
            "status": JobStatus.SKIPPED if job.skipped else JobStatus.WAITING,
            "reason": Reason.CONDITION if job.skipped else "",
            "message": job.skipped,
            "approval_json": progress.gate_to_json(job.gate),
            "needs_json": json.dumps(list(job.needs)),
            "labels_json": json.dumps(job.labels),
            "spec_json": rowmap.spec_to_json(job.spec),
        }
        for position, job in enumerate(jobs)
    ]


def request_attempt_cancel(session: Session, job: JobRow) -> list[LiveAttempt]:
    live = session.execute(
        update(AttemptRow)
        .where(col(AttemptRow.job_id) == job.id, col(AttemptRow.outcome).is_(None))
        .values(cancel_requested=True)
        .returning(
            col(AttemptRow.id),
            col(AttemptRow.agent_id),
            col(AttemptRow.build_id),
            col(AttemptRow.lease_token),
        )
    ).all()
    return [LiveAttempt(row.id, row.agent_id, row.build_id, row.lease_token, True) for row in live]


def _summary(row: RowMapping) -> BuildSummary:
    return BuildSummary(
        id=row["id"],
        name=row["name"],
        status=BuildStatus(row["status"]),
        created_at_ms=row["created_at_ms"],
        finished_at_ms=row["finished_at_ms"],
        cancel_requested=bool(row["cancel_requested"]),
        job_count=row["job_count"],
        event=row["event"],
        branch=row["branch"],
        tag=row["tag"],
        redeploys=row["redeploys"],
        started_by=row["started_by"],
        trigger=rowmap.trigger_of(row.__getitem__),
        error=row["error"],
    )
