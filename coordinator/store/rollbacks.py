"""Rollbacks: a new build that runs one recorded deployment's job again, nothing rebuilt.

The new build copies what the deployment's own build froze at submission (pipeline text, env,
the job's resolved steps, labels and lock) and its source, pinned to the deployed commit. Its job
needs nothing: its inputs are the artifacts the deployment recorded, by digest (see
`redeployed_rows`), which gc keeps for as long as the deployment is on record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import Table, select
from sqlmodel import Session

from conveyor.states import BuildStatus, JobStatus
from coordinator.domain.audit import AuditAction
from coordinator.domain.delivery_records import RollbackPlan
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.policy import rollback as policy
from coordinator.store import audit, progress
from coordinator.store.artifact_tables import BuildSourceRow
from coordinator.store.base import Component
from coordinator.store.delivery_tables import DeliveryJobRow, DeploymentRow, EnvironmentRow
from coordinator.store.engine import now_ms
from coordinator.store.tables import BuildRow, JobRow

DEPLOYMENTS: Table = DeploymentRow.__table__  # type: ignore[attr-defined]


class RollbackStore(Component):
    def plan(self, environment: str, to: int | None) -> RollbackPlan:
        """The deployment a rollback of `environment` redeploys (`to`, or the default target)
        and what its build was made of; NotFoundError / ConflictError saying why there is none."""
        with self._tx() as session:
            if session.get(EnvironmentRow, environment) is None:
                raise NotFoundError(f"environment {environment!r} does not exist")
            target = _target(session, environment, to)
            build = session.get(BuildRow, target.build_id)
            job = session.get(JobRow, target.job_id)
            assert build is not None and job is not None
            return RollbackPlan(
                environment=environment,
                redeploys=_id(target),
                job=target.job_name,
                pipeline_yaml=build.pipeline_yaml,
                source_name=build.source_name,
                branch=build.branch,
                tag=build.tag,
                labels=json.loads(job.labels_json),
            )

    def create(self, plan: RollbackPlan, actor: str) -> int:
        """The rollback build of `plan` (queued at once); returns its id."""
        with self._tx() as session:
            target = session.get(DeploymentRow, plan.redeploys)
            if target is None:
                raise NotFoundError(f"deployment {plan.redeploys} does not exist")
            origin = session.get(BuildRow, target.build_id)
            job = session.get(JobRow, target.job_id)
            delivery = session.get(DeliveryJobRow, target.job_id)
            assert origin is not None and job is not None and delivery is not None
            build = BuildRow(
                event="rollback",
                branch=origin.branch,
                tag=origin.tag,
                redeploys=plan.redeploys,
                started_by=actor,
                name=origin.name,
                status=BuildStatus.QUEUED,
                pipeline_yaml=origin.pipeline_yaml,
                source_name=origin.source_name,
                env_json=origin.env_json,
                created_at_ms=now_ms(),
            )
            session.add(build)
            session.flush()
            assert build.id is not None
            _copy_source(session, origin, target, build.id)
            _copy_job(session, job, delivery, build.id, actor)
            progress.advance(session, build.id)
            audit.record(
                session,
                actor,
                AuditAction.ROLLBACK,
                plan.environment,
                f"build {build.id} redeploys deployment {plan.redeploys}",
            )
            return build.id


def _target(session: Session, environment: str, to: int | None) -> DeploymentRow:
    try:
        if to is None:
            chosen = policy.pick_target(environment, _history(session, environment))
            found = session.get(DeploymentRow, chosen.id)
            assert found is not None
            return found
        named = session.get(DeploymentRow, to)
        if named is None or named.environment != environment:
            raise NotFoundError(f"deployment {to} of {environment} does not exist")
        policy.check_named(environment, _candidate(named))
        return named
    except policy.RollbackRefused as refused:
        raise ConflictError(str(refused)) from None


def _history(session: Session, environment: str) -> Iterator[policy.Candidate]:
    # Newest first, read lazily: the default target is usually one or two rows down.
    rows = session.execute(
        select(DeploymentRow)
        .where(DEPLOYMENTS.c.environment == environment)
        .order_by(DEPLOYMENTS.c.id.desc())
        .execution_options(yield_per=64)
    ).scalars()
    for row in rows:
        yield _candidate(row)


def _candidate(row: DeploymentRow) -> policy.Candidate:
    digests = tuple(sorted(item["sha256"] for item in json.loads(row.artifacts_json)))
    return policy.Candidate(_id(row), row.status, (row.commit, digests))


def _id(row: DeploymentRow) -> int:
    assert row.id is not None
    return row.id


def _copy_source(session: Session, origin: BuildRow, target: DeploymentRow, build_id: int) -> None:
    source = session.get(BuildSourceRow, origin.id)
    if source is None:
        return
    if source.collected:
        # gc keeps every deployed build's source; this one was lost some other way.
        raise ConflictError(
            f"deployment {target.id} cannot be deployed again: the source of build {origin.id} "
            "is gone"
        )
    session.add(
        BuildSourceRow(
            build_id=build_id,
            snapshot_sha256=source.snapshot_sha256,
            git_url=source.git_url,
            git_ref=source.git_ref,
            # Pinned: the agent checks out exactly the deployed commit, wherever the ref moved.
            git_commit=target.commit or source.git_commit,
            git_committed_at_ms=target.committed_at_ms or source.git_committed_at_ms,
        )
    )


def _copy_job(
    session: Session, job: JobRow, delivery: DeliveryJobRow, build_id: int, actor: str
) -> None:
    row = JobRow(
        build_id=build_id,
        position=0,
        name=job.name,
        status=JobStatus.WAITING,
        needs_json="[]",
        labels_json=job.labels_json,
        spec_json=job.spec_json,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add(
        DeliveryJobRow(
            job_id=row.id,
            build_id=build_id,
            environment=delivery.environment,
            lock_group=delivery.lock_group,
            lock_order=delivery.lock_order,
            actor=actor,
        )
    )
