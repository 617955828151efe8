"""The coordinator's durable state. One public method is one transaction; it returns records.

Every method is blocking and meant to run on the store's single worker thread (see
the `Coordinator`), which also serialises writers so SQLite never sees lock contention.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from sqlalchemy import func, tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from conveyor.states import BuildStatus, JobStatus, Outcome, Reason, StepStatus
from coordinator.config import CLAIM_PAGE_ROWS, CLAIM_SCAN_LIMIT, MAX_UNSTARTED_REQUEUES
from coordinator.domain.errors import ConflictError, FencedError, NotFoundError
from coordinator.domain.records import (
    AgentRecord,
    Assignment,
    AttemptEnd,
    BuildRecord,
    CancelResult,
    LiveAttempt,
    NewJob,
)
from coordinator.policy import scheduling as scheduler
from coordinator.store import claims, queries, rowmap, schema
from coordinator.store.artifacts import SourceSpec, add_build_source
from coordinator.store.engine import make_engine, now_ms
from coordinator.store.queue_order import next_queue_seq_for
from coordinator.store.tables import AgentRow, AttemptRow, BuildRow, JobRow, StepRow


class Store:
    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        schema.migrate(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session
            session.commit()

    # Builds

    def create_build(
        self,
        *,
        name: str,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        jobs: Sequence[NewJob],
        source: SourceSpec | None = None,
    ) -> int:
        with self._tx() as session:
            build = BuildRow(
                name=name,
                status=BuildStatus.QUEUED,
                pipeline_yaml=pipeline_yaml,
                source_name=source_name,
                env_json=json.dumps(dict(env)),
                created_at_ms=now_ms(),
            )
            session.add(build)
            session.flush()
            assert build.id is not None
            if source is not None:
                add_build_source(session, build.id, source)
            for position, job in enumerate(jobs):
                session.add(
                    JobRow(
                        build_id=build.id,
                        position=position,
                        name=job.name,
                        status=JobStatus.WAITING,
                        needs_json=json.dumps(list(job.needs)),
                        labels_json=json.dumps(job.labels),
                        spec_json=rowmap.spec_to_json(job.spec),
                    )
                )
            session.flush()
            self._advance(session, build)
            return build.id

    def get_build(self, build_id: int) -> BuildRecord:
        with self._tx() as session:
            build = session.get(BuildRow, build_id)
            if build is None:
                raise NotFoundError(f"build {build_id} does not exist")
            return queries.build_record(session, build, with_attempts=True)

    def list_builds(self, limit: int) -> list[BuildRecord]:
        with self._tx() as session:
            rows = session.exec(select(BuildRow).order_by(col(BuildRow.id).desc()).limit(limit))
            return [queries.build_record(session, row, with_attempts=False) for row in rows]

    def cancel_build(self, build_id: int) -> CancelResult:
        with self._tx() as session:
            build = session.get(BuildRow, build_id)
            if build is None:
                raise NotFoundError(f"build {build_id} does not exist")
            if BuildStatus(build.status).final:
                return CancelResult(queries.build_record(session, build, with_attempts=True))
            build.cancel_requested = True
            running: list[LiveAttempt] = []
            for job in queries.build_jobs(session, build_id):
                status = JobStatus(job.status)
                if status in (JobStatus.WAITING, JobStatus.QUEUED):
                    self._set_job(job, JobStatus.CANCELED, "canceled", "canceled before it ran")
                elif status is JobStatus.RUNNING:
                    running.extend(self._request_attempt_cancel(session, job))
            self._advance(session, build)
            return CancelResult(
                queries.build_record(session, build, with_attempts=True), tuple(running)
            )

    def retry_build(self, build_id: int, job_name: str | None) -> BuildRecord:
        with self._tx() as session:
            build = session.get(BuildRow, build_id)
            if build is None:
                raise NotFoundError(f"build {build_id} does not exist")
            jobs = queries.build_jobs(session, build_id)
            targets = _retry_targets(jobs, job_name, build_id)
            for job in jobs:
                if job.name in targets:
                    self._set_job(job, JobStatus.WAITING, "", "")
                    job.exit_code = None
                    # A manual retry gives the job its automatic retries afresh.
                    job.retry_base = job.attempt_count
            build.status = BuildStatus.RUNNING
            build.cancel_requested = False
            build.finished_at_ms = None
            session.flush()
            self._advance(session, build)
            return queries.build_record(session, build, with_attempts=True)

    # Agents and attempts

    def register_agent(
        self, *, name: str, labels: Mapping[str, str], capacity: int, session_hash: str
    ) -> AgentRecord:
        with self._tx() as session:
            row = session.exec(select(AgentRow).where(AgentRow.name == name)).first()
            stamp = now_ms()
            if row is None:
                row = AgentRow(
                    name=name,
                    labels_json="{}",
                    capacity=0,
                    session_hash="",
                    registered_at_ms=stamp,
                    last_seen_ms=stamp,
                )
                session.add(row)
            row.labels_json = json.dumps(dict(labels))
            row.capacity = capacity
            row.session_hash = session_hash
            row.last_seen_ms = stamp
            session.flush()
            return rowmap.agent_record(row, {})

    def list_agents(self) -> list[AgentRecord]:
        with self._tx() as session:
            counts = dict(
                session.exec(
                    select(AttemptRow.agent_id, func.count())
                    .where(col(AttemptRow.outcome).is_(None))
                    .group_by(col(AttemptRow.agent_id))
                ).all()
            )
            rows = session.exec(select(AgentRow).order_by(col(AgentRow.name)))
            return [rowmap.agent_record(row, counts) for row in rows]

    def set_agent_mode(self, name: str, mode: str) -> AgentRecord:
        with self._tx() as session:
            row = session.exec(select(AgentRow).where(AgentRow.name == name)).first()
            if row is None:
                raise NotFoundError(f"no agent named '{name}'")
            row.mode = mode
            session.flush()
            return rowmap.agent_record(row, {})

    def touch_agents(self, last_seen_ms: Mapping[int, int]) -> None:
        # One executemany by primary key: a thousand agents every reaper period must stay cheap.
        rows = [{"id": agent_id, "last_seen_ms": stamp} for agent_id, stamp in last_seen_ms.items()]
        with self._tx() as session:
            session.execute(update(AgentRow), rows)

    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        """Atomically gives up to `slots` of the oldest queued jobs matching `labels`."""
        if slots <= 0:
            return []
        with self._tx() as session:
            return claims.claim(session, agent_id, labels, slots)

    @staticmethod
    def _matching_queued(session: Session, labels: Mapping[str, str], wanted: int) -> list[int]:
        """Ids of up to `wanted` oldest queued jobs `labels` satisfy, read a page at a time.

        Only ids and labels are read, along the queue index, and only as far as needed (at most
        CLAIM_SCAN_LIMIT jobs), so a claim costs the same with ten queued jobs or ten thousand.
        """
        found: list[int] = []
        after: tuple[int, int] | None = None
        scanned = 0
        while len(found) < wanted and scanned < CLAIM_SCAN_LIMIT:
            query = select(JobRow.id, JobRow.queued_seq, JobRow.labels_json).where(
                JobRow.status == JobStatus.QUEUED
            )
            if after is not None:
                query = query.where(tuple_(col(JobRow.queued_seq), col(JobRow.id)) > after)
            page = session.exec(
                query.order_by(col(JobRow.queued_seq), col(JobRow.id)).limit(CLAIM_PAGE_ROWS)
            ).all()
            for job_id, seq, labels_json in page:
                assert job_id is not None and seq is not None
                after = (seq, job_id)
                if len(found) < wanted and scheduler.labels_match(json.loads(labels_json), labels):
                    found.append(job_id)
            scanned += len(page)
            if len(page) < CLAIM_PAGE_ROWS:
                break
        return found

    def start_step(self, attempt_id: int, index: int) -> bool:
        """Marks a step running; returns whether the attempt has been asked to cancel."""
        with self._tx() as session:
            attempt = queries.attempt(session, attempt_id)
            if attempt.outcome is not None:
                raise FencedError(f"attempt {attempt_id} has ended")
            step = queries.step(session, attempt_id, index)
            step.status = StepStatus.RUNNING
            step.started_at_ms = now_ms()
            return attempt.cancel_requested

    def finish_step(
        self,
        attempt_id: int,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_length: int,
        log_lost_bytes: int = 0,
    ) -> None:
        with self._tx() as session:
            if queries.attempt(session, attempt_id).outcome is not None:
                raise FencedError(f"attempt {attempt_id} has ended")
            step = queries.step(session, attempt_id, index)
            step.status = status
            step.exit_code = exit_code
            step.log_length = log_length
            step.log_lost_bytes = log_lost_bytes
            step.finished_at_ms = now_ms()
            if step.started_at_ms is None:
                step.started_at_ms = step.finished_at_ms

    def finish_attempt(
        self, attempt_id: int, *, outcome: Outcome, reason: str, message: str, exit_code: int | None
    ) -> AttemptEnd:
        """Records an attempt's result once; a repeated finish returns the stored result."""
        with self._tx() as session:
            attempt = queries.attempt(session, attempt_id)
            if attempt.outcome is not None:
                return AttemptEnd(
                    attempt.build_id,
                    Outcome(attempt.outcome),
                    attempt.reason,
                    jobs_queued=False,
                    already_recorded=True,
                )
            attempt.outcome = outcome
            attempt.reason, attempt.message, attempt.exit_code = reason, message, exit_code
            attempt.finished_at_ms = now_ms()
            started = self._close_steps(session, attempt_id, outcome)
            job = session.get(JobRow, attempt.job_id)
            build = session.get(BuildRow, attempt.build_id)
            assert job is not None and build is not None
            self._settle_job(job, build, attempt, started=started)
            session.flush()
            queued = self._advance(session, build)
            if job.status == JobStatus.QUEUED:
                queued.append(json.loads(job.labels_json))
            return AttemptEnd(
                attempt.build_id,
                outcome,
                reason,
                jobs_queued=bool(queued),
                queued_labels=tuple(queued),
            )

    def live_attempts(self) -> list[LiveAttempt]:
        with self._tx() as session:
            rows = session.exec(select(AttemptRow).where(col(AttemptRow.outcome).is_(None)))
            return [queries.live(row) for row in rows]

    def attempt_result(self, attempt_id: int) -> tuple[Outcome | None, str, str]:
        """(outcome, reason, lease token) of an attempt; outcome None while it runs."""
        with self._tx() as session:
            row = queries.attempt(session, attempt_id)
            return (Outcome(row.outcome) if row.outcome else None), row.reason, row.lease_token

    # Helpers (run inside the caller's transaction)

    @staticmethod
    def _set_job(job: JobRow, status: JobStatus, reason: str, message: str) -> None:
        job.status, job.reason, job.message = status, reason, message
        if status is JobStatus.QUEUED:
            job.queued_seq = next_queue_seq_for(job)

    def _new_attempt(self, session: Session, job: JobRow, agent_id: int) -> Assignment:
        assert job.id is not None
        job.attempt_count += 1
        attempt = AttemptRow(
            job_id=job.id,
            build_id=job.build_id,
            number=job.attempt_count,
            agent_id=agent_id,
            lease_token=secrets.token_urlsafe(18),
            started_at_ms=now_ms(),
        )
        session.add(attempt)
        session.flush()
        assert attempt.id is not None
        spec = rowmap.spec_from_json(job.spec_json)
        for index, step in enumerate(spec.steps):
            session.add(
                StepRow(attempt_id=attempt.id, idx=index, name=step.name, status=StepStatus.PENDING)
            )
        build = session.get(BuildRow, job.build_id)
        if build is not None and build.status == BuildStatus.QUEUED:
            build.status = BuildStatus.RUNNING
        return Assignment(
            attempt.id, attempt.lease_token, job.build_id, job.name, attempt.number, spec
        )

    def _request_attempt_cancel(self, session: Session, job: JobRow) -> list[LiveAttempt]:
        query = select(AttemptRow).where(
            AttemptRow.job_id == job.id, col(AttemptRow.outcome).is_(None)
        )
        live = []
        for attempt in session.exec(query):
            attempt.cancel_requested = True
            live.append(queries.live(attempt))
        return live

    def _close_steps(self, session: Session, attempt_id: int, outcome: Outcome) -> bool:
        """Ends the attempt's unfinished steps; returns whether any step had started."""
        stamp, started = now_ms(), False
        for step in session.exec(select(StepRow).where(StepRow.attempt_id == attempt_id)):
            started = started or step.status != StepStatus.PENDING
            if step.status == StepStatus.PENDING:
                step.status = StepStatus.SKIPPED
            elif step.status == StepStatus.RUNNING:
                lost = StepStatus.CANCELED if outcome is Outcome.CANCELED else StepStatus.FAILED
                step.status, step.finished_at_ms = lost, stamp
        return started

    def _settle_job(
        self, job: JobRow, build: BuildRow, attempt: AttemptRow, *, started: bool
    ) -> None:
        assert attempt.outcome is not None
        outcome = Outcome(attempt.outcome)
        spec = rowmap.spec_from_json(job.spec_json)
        job.exit_code = attempt.exit_code
        if outcome is Outcome.SUCCEEDED:
            self._set_job(job, JobStatus.SUCCEEDED, "", attempt.message)
        elif outcome is Outcome.CANCELED or build.cancel_requested:
            self._set_job(job, JobStatus.CANCELED, attempt.reason or "canceled", attempt.message)
        elif (
            attempt.reason == Reason.AGENT_LOST
            and not started
            and job.unstarted_requeues < MAX_UNSTARTED_REQUEUES
        ):
            # The agent vanished before running anything (e.g. the assignment never reached it):
            # running it elsewhere cannot repeat a side effect, so it does not use up a retry.
            job.retry_base += 1
            job.unstarted_requeues += 1
            message = f"attempt {attempt.number} never started on its agent; queued again"
            self._set_job(job, JobStatus.QUEUED, attempt.reason, message)
        elif scheduler.should_retry(
            reason=attempt.reason,
            attempts_used=job.attempt_count - job.retry_base,
            retry_max=spec.retry_max,
            retry_when=spec.retry_when,
        ):
            message = f"attempt {attempt.number} ended with {attempt.reason}; retrying"
            self._set_job(job, JobStatus.QUEUED, attempt.reason, message)
        else:
            self._set_job(job, JobStatus.FAILED, attempt.reason, attempt.message)

    def _advance(self, session: Session, build: BuildRow) -> list[dict[str, str]]:
        """Applies the scheduler's transitions to a build; returns the labels of jobs it queued."""
        assert build.id is not None
        jobs = queries.build_jobs(session, build.id)
        by_name = {job.name: job for job in jobs}
        states = [
            scheduler.JobState(j.name, JobStatus(j.status), tuple(json.loads(j.needs_json)))
            for j in jobs
        ]
        transitions = scheduler.advance(states)
        for step in transitions:
            self._set_job(by_name[step.name], step.status, step.reason, step.message)
        final = scheduler.build_outcome((JobStatus(j.status) for j in jobs), build.cancel_requested)
        if final is not None and build.status != final:
            build.status, build.finished_at_ms = final, now_ms()
        return [
            json.loads(by_name[t.name].labels_json)
            for t in transitions
            if t.status is JobStatus.QUEUED
        ]


def _retry_targets(jobs: Sequence[JobRow], job_name: str | None, build_id: int) -> set[str]:
    """The jobs a retry re-runs: the named one (or every unsuccessful one) and their dependents."""
    by_name = {job.name: job for job in jobs}
    if job_name is not None:
        job = by_name.get(job_name)
        if job is None:
            raise NotFoundError(f"build {build_id} has no job '{job_name}'")
        if not JobStatus(job.status).final:
            raise ConflictError(
                f"job '{job_name}' is {job.status}; only a finished job can be retried"
            )
        targets = {job_name}
    else:
        if any(not JobStatus(job.status).final for job in jobs):
            raise ConflictError(
                f"build {build_id} is still running; cancel it or wait for it to end"
            )
        targets = {job.name for job in jobs if job.status != JobStatus.SUCCEEDED}
        if not targets:
            raise ConflictError(f"build {build_id} succeeded; there is nothing to retry")
    grew = True
    while grew:
        dependents = {j.name for j in jobs if set(json.loads(j.needs_json)) & targets} - targets
        targets |= dependents
        grew = bool(dependents)
    # Re-running a job re-runs what needs it; one of those still running would get a second
    # live attempt, so the retry waits until they have ended.
    busy = sorted(name for name in targets if not JobStatus(by_name[name].status).final)
    if busy:
        raise ConflictError(
            f"cannot retry yet: {', '.join(busy)} still running or queued; "
            "cancel the build or wait for it to end"
        )
    return targets
