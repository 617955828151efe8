"""Watched repositories as stored (migration 0012). One public method, one transaction: a check's
new heads are recorded in the same transaction as the builds they start, so a crash between
cannot lose a build (the heads are not recorded either: the next check sees them again) nor
double one (once recorded, the heads are no longer new)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence

from sqlalchemy import LargeBinary, delete, select, update
from sqlmodel import Field, Session, SQLModel, col

from conveyor.states import BuildStatus, JobStatus, Reason
from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.domain.records import LiveAttempt
from coordinator.domain.repo_records import CheckResult, NewBuild, RepoRecord
from coordinator.policy.superseding import superseded_message
from coordinator.store import audit, progress
from coordinator.store.base import Component
from coordinator.store.builds import insert_build, request_attempt_cancel
from coordinator.store.coltypes import BigInt
from coordinator.store.engine import now_ms
from coordinator.store.tables import BuildRow, JobRow

_OPEN_JOB = (JobStatus.WAITING, JobStatus.QUEUED)
_FINAL_BUILD = tuple(s.value for s in BuildStatus if s.final)


class RepoRow(SQLModel, table=True):
    __tablename__ = "repos"

    name: str = Field(primary_key=True)
    url: str
    pipeline_path: str
    poll_s: float
    sealed_secret: bytes | None = Field(default=None, sa_type=LargeBinary)
    # Ref name to commit, as the last successful check saw them (JSON object).
    heads_json: str
    # {"commit": the default branch's commit they were read from, "next": a schedule entry's
    # key to its next fire time in ms}.
    schedules_json: str = "{}"
    last_check_ms: int | None = Field(default=None, sa_type=BigInt)
    last_error: str = ""
    failures: int = 0
    # What the watcher looks up several times a second: due repositories.
    next_check_ms: int = Field(sa_type=BigInt, index=True)
    created_at_ms: int = Field(sa_type=BigInt)
    created_by: str


class RepoStore(Component):
    def add(self, repo: RepoRecord) -> RepoRecord:
        with self._tx() as session:
            if session.get(RepoRow, repo.name) is not None:
                raise ConflictError(f"repository {repo.name!r} already exists")
            row = RepoRow(
                name=repo.name,
                url=repo.url,
                pipeline_path=repo.pipeline_path,
                poll_s=repo.poll_s,
                sealed_secret=repo.sealed_secret,
                heads_json=json.dumps(repo.heads, sort_keys=True),
                schedules_json=_schedules_json(repo.schedules, repo.schedules_commit),
                last_check_ms=repo.last_check_ms,
                next_check_ms=repo.next_check_ms,
                created_at_ms=repo.created_at_ms,
                created_by=repo.created_by,
            )
            session.add(row)
            audit.record(session, repo.created_by, AuditAction.REPO_ADD, repo.name, repo.url)
            return _record(row)

    def remove(self, name: str, by: str) -> RepoRecord:
        with self._tx() as session:
            record = _record(_repo(session, name))
            session.execute(delete(RepoRow).where(col(RepoRow.name) == name))
            audit.record(session, by, AuditAction.REPO_REMOVE, name, record.url)
            return record

    def list(self) -> list[RepoRecord]:
        with self._tx() as session:
            rows = session.execute(select(RepoRow).order_by(col(RepoRow.name))).scalars()
            return [_record(row) for row in rows]

    def get(self, name: str) -> RepoRecord:
        with self._tx() as session:
            return _record(_repo(session, name))

    def due(self, now: int, limit: int) -> builtins.list[RepoRecord]:
        with self._tx() as session:
            rows = session.execute(
                select(RepoRow)
                .where(col(RepoRow.next_check_ms) <= now)
                .order_by(col(RepoRow.next_check_ms))
                .limit(limit)
            ).scalars()
            return [_record(row) for row in rows]

    def record_check(
        self,
        name: str,
        *,
        seen: Mapping[str, str],
        heads: Mapping[str, str],
        builds: Sequence[NewBuild],
        schedules: Mapping[str, int],
        schedules_commit: str,
        next_check_ms: int,
        supersede: bool,
    ) -> CheckResult:
        with self._tx() as session:
            row = _repo(session, name)
            if json.loads(row.heads_json) != dict(seen):
                raise ConflictError(f"repository {name!r} was checked meanwhile")
            row.heads_json = json.dumps(dict(heads), sort_keys=True)
            row.schedules_json = _schedules_json(schedules, schedules_commit)
            row.last_check_ms, row.last_error, row.failures = now_ms(), "", 0
            row.next_check_ms = next_check_ms
            session.add(row)
            ids: list[int] = []
            stopped: list[LiveAttempt] = []
            for new in builds:
                build_id = insert_build(
                    session,
                    name=new.name,
                    pipeline_yaml=new.pipeline_yaml,
                    source_name=new.source_name,
                    env={},
                    jobs=new.jobs,
                    source=new.source,
                    context=new.context,
                    actor=f"repo:{name}",
                    trigger=new.trigger,
                    error=new.error,
                )
                ids.append(build_id)
                if supersede and new.context.event == "push" and new.context.branch:
                    stopped += _supersede(session, name, new.context.branch, build_id)
            return CheckResult(tuple(ids), tuple(stopped))

    def record_failure(self, name: str, error: str, next_check_ms: int) -> None:
        with self._tx() as session:
            session.execute(
                update(RepoRow)
                .where(col(RepoRow.name) == name)
                .values(
                    last_check_ms=now_ms(),
                    last_error=error,
                    failures=col(RepoRow.failures) + 1,
                    next_check_ms=next_check_ms,
                )
            )


def _supersede(session: Session, repo: str, branch: str, newest: int) -> list[LiveAttempt]:
    """Cancels the interruptible jobs of the repository's older, unfinished push builds of
    `branch` (reason superseded); running ones through the normal cancel path."""
    older = session.execute(
        select(col(BuildRow.id)).where(
            col(BuildRow.trigger_repo) == repo,
            col(BuildRow.branch) == branch,
            col(BuildRow.event) == "push",
            col(BuildRow.id) < newest,
            col(BuildRow.status).not_in(_FINAL_BUILD),
        )
    ).scalars()
    stopped: list[LiveAttempt] = []
    for build_id in list(older):
        jobs = session.execute(select(JobRow).where(col(JobRow.build_id) == build_id)).scalars()
        message = superseded_message(branch, newest)
        canceled = [j.name for j in list(jobs) if _supersede_job(session, j, message, stopped)]
        if canceled:
            # A cancel the trail records like any other (DESIGN §7.12), by the repository.
            detail = f"superseded by build {newest}: {', '.join(canceled)}"
            audit.record(session, f"repo:{repo}", AuditAction.CANCEL, f"build {build_id}", detail)
            progress.advance(session, build_id)
    return stopped


def _supersede_job(session: Session, job: JobRow, message: str, stopped: list[LiveAttempt]) -> bool:
    """Cancels `job` if it is interruptible and not yet done (its running attempt added to
    `stopped`); whether it did."""
    if not json.loads(job.spec_json).get("interruptible", False):
        return False
    status = JobStatus(job.status)
    assert job.id is not None
    if status in _OPEN_JOB:
        progress.set_job(session, job.id, JobStatus.CANCELED, Reason.SUPERSEDED, message)
        return True
    if status is JobStatus.RUNNING:
        job.reason, job.message = Reason.SUPERSEDED, message
        session.add(job)
        stopped += request_attempt_cancel(session, job)
        return True
    return False


def _repo(session: Session, name: str) -> RepoRow:
    row = session.get(RepoRow, name)
    if row is None:
        raise NotFoundError(f"no repository {name!r} (see `conveyor repo list`)")
    return row


def _schedules_json(schedules: Mapping[str, int], commit: str) -> str:
    return json.dumps({"commit": commit, "next": dict(schedules)}, sort_keys=True)


def _record(row: RepoRow) -> RepoRecord:
    schedules = json.loads(row.schedules_json)
    return RepoRecord(
        name=row.name,
        url=row.url,
        pipeline_path=row.pipeline_path,
        poll_s=row.poll_s,
        sealed_secret=bytes(row.sealed_secret) if row.sealed_secret is not None else None,
        heads=dict(json.loads(row.heads_json)),
        last_check_ms=row.last_check_ms,
        last_error=row.last_error,
        failures=row.failures,
        next_check_ms=row.next_check_ms,
        created_at_ms=row.created_at_ms,
        created_by=row.created_by,
        schedules=dict(schedules.get("next", {})),
        schedules_commit=schedules.get("commit", ""),
    )
