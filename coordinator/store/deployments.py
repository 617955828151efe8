"""Environments and deployments: registered with a build, recorded as its attempts end.

`add_jobs` is part of the build's creating transaction and `after_attempt` part of the one that
ends an attempt, so a deployment exists exactly when its job's result does, and a lock is never
released without the result that frees it. The component's public methods are one transaction
each.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Row, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from conveyor.states import JobStatus
from coordinator.domain.delivery_records import (
    ApprovalRecord,
    DeployedArtifact,
    DeploymentRecord,
    EnvironmentRecord,
)
from coordinator.domain.errors import NotFoundError
from coordinator.domain.notify_records import NotifyEvent
from coordinator.domain.records import NewJob
from coordinator.store import locks, outbox
from coordinator.store.artifact_tables import BuildSourceRow
from coordinator.store.artifacts import received_rows
from coordinator.store.base import Component
from coordinator.store.commits import build_commit
from coordinator.store.delivery_tables import (
    DeliveryJobRow,
    DeploymentRow,
    EnvironmentRow,
)
from coordinator.store.engine import now_ms
from coordinator.store.tables import ApprovalRow, AttemptRow, BuildRow, JobRow

ENVIRONMENTS: Table = EnvironmentRow.__table__  # type: ignore[attr-defined]
DEPLOYMENTS: Table = DeploymentRow.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]
# Asked at every attempt's end, of jobs that are mostly not deployments: built once.


def add_jobs(
    session: Session, build_id: int, job_ids: Sequence[int], jobs: Sequence[NewJob], actor: str
) -> None:
    """Registers the build's deployment and lock jobs (`job_ids`: the ids of `jobs`)."""
    for job_id, job in zip(job_ids, jobs, strict=True):
        delivery = job.delivery
        if delivery is None:
            continue
        session.add(
            DeliveryJobRow(
                job_id=job_id,
                build_id=build_id,
                environment=delivery.environment,
                lock_group=delivery.lock_group,
                lock_order=delivery.lock_order,
                actor=actor,
            )
        )
        if delivery.environment:
            _upsert_environment(session, delivery.environment, delivery.url)


def _upsert_environment(session: Session, name: str, url: str) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ENVIRONMENTS).values(name=name, url=url)
    # The newest pipeline that names a url says where the environment is; one without keeps it.
    if url:
        session.execute(statement.on_conflict_do_update(index_elements=["name"], set_={"url": url}))
    else:
        session.execute(statement.on_conflict_do_nothing())


def after_attempt(
    session: Session, job_id: int, attempt_id: int, environment: str | None
) -> locks.Released:
    """Records the deployment if the job has its result now, then frees the job's lock.
    `environment`: the job's delivery row's (read by the caller), None if it has none."""
    if environment is None:
        # Not a delivery job: it records no deployment, and only delivery jobs take locks.
        return locks.Released()
    if environment:
        delivery = session.get(DeliveryJobRow, job_id)
        assert delivery is not None
        _record(session, delivery, attempt_id)
    return locks.release(session, job_id)


def _record(session: Session, delivery: DeliveryJobRow, attempt_id: int) -> None:
    job = session.execute(
        select(JOBS.c.name, JOBS.c.status, JOBS.c.needs_json).where(JOBS.c.id == delivery.job_id)
    ).one()
    status = JobStatus(job.status)
    if not status.final:
        return  # retried: the next attempt's end records it
    # The same selection the attempt was handed as its inputs.
    build = session.get(BuildRow, delivery.build_id)
    assert build is not None
    assert build.id is not None
    received = received_rows(session, build.id, build.redeploys, job.needs_json)
    started = session.execute(
        select(ATTEMPTS.c.started_at_ms).where(ATTEMPTS.c.id == attempt_id)
    ).scalar_one()
    source = session.get(BuildSourceRow, delivery.build_id)
    git = source is not None and bool(source.git_url)
    commit = build_commit(source.git_url, source.git_ref, source.git_commit) if source else ""
    committed_at_ms = source.git_committed_at_ms if source is not None and git else None
    artifacts = [{"job": a.job_name, "name": a.name, "sha256": a.sha256} for a in received]
    row = DeploymentRow(
        environment=delivery.environment,
        build_id=delivery.build_id,
        job_id=delivery.job_id,
        job_name=job.name,
        status=status,
        commit=commit,
        committed_at_ms=committed_at_ms,
        artifacts_json=json.dumps(artifacts),
        approvals_json=json.dumps(_approvals(session, delivery)),
        redeploys=build.redeploys,
        actor=delivery.actor,
        started_at_ms=started,
        finished_at_ms=now_ms(),
    )
    session.add(row)
    session.flush()
    recorded = session.execute(select(DEPLOYMENTS).where(DEPLOYMENTS.c.id == row.id)).one()
    outbox.emit(
        session, NotifyEvent.DEPLOYMENT, delivery.build_id, deployment=_deployment(recorded)
    )


def _approvals(session: Session, delivery: DeliveryJobRow) -> list[dict[str, object]]:
    """The decisions on the gates the job's path runs through ({"job", "by", "decision",
    "at_ms", "comment"}), oldest first: every gate it needs, directly or not."""
    rows = session.execute(
        select(JOBS.c.id, JOBS.c.name, JOBS.c.needs_json, JOBS.c.approval_json).where(
            JOBS.c.build_id == delivery.build_id
        )
    ).all()
    by_name = {row.name: row for row in rows}
    own = next(row for row in rows if row.id == delivery.job_id)
    upstream: set[str] = set()
    pending = list(json.loads(own.needs_json))
    while pending:
        name = pending.pop()
        if name not in upstream and name in by_name:
            upstream.add(name)
            pending.extend(json.loads(by_name[name].needs_json))
    gates = {by_name[name].id: name for name in upstream if by_name[name].approval_json}
    if not gates:
        return []
    decisions = session.execute(
        select(ApprovalRow)
        .where(col(ApprovalRow.job_id).in_(gates))
        .order_by(col(ApprovalRow.decided_at_ms), col(ApprovalRow.id))
    ).scalars()
    return [
        {
            "job": gates[d.job_id],
            "by": d.decided_by,
            "decision": d.decision,
            "at_ms": d.decided_at_ms,
            "comment": d.comment,
        }
        for d in decisions
    ]


class DeploymentStore(Component):
    def environments(self) -> list[EnvironmentRecord]:
        """Every environment by name, with its current (latest successful) deployment."""
        with self._tx() as session:
            rows = session.execute(select(ENVIRONMENTS).order_by(ENVIRONMENTS.c.name)).all()
            current = _current_deployments(session, {row.name for row in rows})
            return [
                EnvironmentRecord(row.name, row.url or None, current.get(row.name)) for row in rows
            ]

    def deployments(self, environment: str, limit: int) -> list[DeploymentRecord]:
        """The environment's deployments, newest first; NotFoundError for an unknown one."""
        with self._tx() as session:
            if session.get(EnvironmentRow, environment) is None:
                raise NotFoundError(f"environment {environment!r} does not exist")
            rows = session.execute(
                select(DEPLOYMENTS)
                .where(DEPLOYMENTS.c.environment == environment)
                .order_by(DEPLOYMENTS.c.id.desc())
                .limit(limit)
            ).all()
            return [_deployment(row) for row in rows]


def _current_deployments(session: Session, names: set[str]) -> dict[str, DeploymentRecord]:
    if not names:
        return {}
    latest = (
        select(func.max(DEPLOYMENTS.c.id))
        .where(DEPLOYMENTS.c.environment.in_(names), DEPLOYMENTS.c.status == JobStatus.SUCCEEDED)
        .group_by(DEPLOYMENTS.c.environment)
    )
    rows = session.execute(select(DEPLOYMENTS).where(DEPLOYMENTS.c.id.in_(latest))).all()
    return {row.environment: _deployment(row) for row in rows}


def _deployment(row: Row[tuple[object, ...]]) -> DeploymentRecord:
    data = row._mapping
    return DeploymentRecord(
        id=data["id"],
        environment=data["environment"],
        build_id=data["build_id"],
        job=data["job_name"],
        status=data["status"],
        commit=data["commit"] or None,
        artifacts=tuple(DeployedArtifact(**item) for item in json.loads(data["artifacts_json"])),
        approvals=tuple(ApprovalRecord(**item) for item in json.loads(data["approvals_json"])),
        redeploys=data["redeploys"],
        actor=data["actor"],
        started_at_ms=data["started_at_ms"],
        finished_at_ms=data["finished_at_ms"],
        committed_at_ms=data["committed_at_ms"],
    )
