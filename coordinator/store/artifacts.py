"""Durable metadata of blobs, artifacts and build sources. One public method, one transaction.

Shares the engine of the build store and, like it, runs on the store's single thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, update
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from coordinator.domain.artifact_records import (
    ArtifactRecord,
    Collected,
    Inputs,
    NewArtifact,
    SourceSpec,
    duplicate_artifact_message,
)
from coordinator.domain.errors import AlreadyExistsError, LimitError, NotFoundError
from coordinator.store import rowmap
from coordinator.store.artifact_tables import ArtifactRow, BlobRow, BuildSourceRow
from coordinator.store.base import transaction
from coordinator.store.commits import build_commit
from coordinator.store.delivery_tables import DeploymentRow, deployed_builds
from coordinator.store.engine import now_ms
from coordinator.store.prepared import Prepared
from coordinator.store.tables import AttemptRow, BuildRow, JobRow

_ATTEMPTS: Table = AttemptRow.__table__  # type: ignore[attr-defined]
_JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]
_BUILDS: Table = BuildRow.__table__  # type: ignore[attr-defined]
_SOURCES: Table = BuildSourceRow.__table__  # type: ignore[attr-defined]
_BLOBS: Table = BlobRow.__table__  # type: ignore[attr-defined]


def _inputs_query(*extra: Any) -> Select[Any]:
    """Every attempt's inputs are read as it starts: one statement, built once, reads what
    they need of the attempt's job, build, source and snapshot."""
    return (
        select_columns(
            _JOBS.c.name,
            _JOBS.c.needs_json,
            _JOBS.c.spec_json,
            _BUILDS.c.id.label("build_id"),
            _BUILDS.c.redeploys,
            _SOURCES.c.build_id.label("source_build"),
            _SOURCES.c.snapshot_sha256,
            _SOURCES.c.git_url,
            _SOURCES.c.git_ref,
            _SOURCES.c.git_commit,
            _SOURCES.c.collected,
            _BLOBS.c.size,
            *extra,
        )
        .select_from(_ATTEMPTS)
        .join(_JOBS, _JOBS.c.id == _ATTEMPTS.c.job_id)
        .join(_BUILDS, _BUILDS.c.id == _JOBS.c.build_id)
        .outerjoin(_SOURCES, _SOURCES.c.build_id == _BUILDS.c.id)
        .outerjoin(_BLOBS, _BLOBS.c.sha256 == _SOURCES.c.snapshot_sha256)
        .where(_ATTEMPTS.c.id == bindparam("p_attempt"))
    )


_INPUTS = Prepared(_inputs_query(_BUILDS.c.pipeline_yaml))
# A claim hands the inputs over with the assignment: the pipeline, up to 1 MiB, is not read for
# that (a job whose spec predates its frozen artifact rule is left to ask GetInputs).
_CLAIMED_INPUTS = Prepared(_inputs_query())


def add_build_source(session: Session, build_id: int, source: SourceSpec) -> None:
    """Part of the build's creating transaction (see Store.create_build)."""
    session.add(
        BuildSourceRow(
            build_id=build_id,
            snapshot_sha256=source.snapshot_sha256,
            git_url=source.git_url,
            git_ref=source.git_ref,
        )
    )


def _source(row: BuildSourceRow | None) -> SourceSpec | None:
    if row is None:
        return None
    return SourceSpec(row.snapshot_sha256, row.git_url, row.git_ref, row.git_commit, row.collected)


def _record(row: ArtifactRow) -> ArtifactRecord:
    return ArtifactRecord(
        row.job_name, row.name, row.sha256, row.size, row.mode, row.attempt_number
    )


def current_rows(session: Session, build_id: int, jobs: set[str] | None) -> list[ArtifactRow]:
    """Artifacts of each job's latest attempt that kept any (a retry replaces older ones)."""
    rows = list(
        session.exec(
            select(ArtifactRow)
            .where(ArtifactRow.build_id == build_id)
            .order_by(col(ArtifactRow.job_name), col(ArtifactRow.name))
        )
    )
    latest: dict[str, int] = {}
    for row in rows:
        latest[row.job_name] = max(latest.get(row.job_name, 0), row.attempt_id)
    return [
        row
        for row in rows
        if row.attempt_id == latest[row.job_name] and (jobs is None or row.job_name in jobs)
    ]


def through_gates(session: Session, build_id: int, needs: set[str]) -> set[str]:
    """The jobs whose artifacts a job receives: its needs, with each approval gate among them
    replaced by the gate's own needs (a gate makes none, and hides none: DESIGN §4.1)."""
    if not needs:
        return needs
    rows = session.execute(
        select(col(JobRow.name), col(JobRow.needs_json), col(JobRow.approval_json)).where(
            col(JobRow.build_id) == build_id
        )
    ).all()
    gates = {row.name: json.loads(row.needs_json) for row in rows if row.approval_json}
    found: set[str] = set()
    pending = list(needs)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        pending.extend(gates.get(name, ()))
    return found - set(gates)


def received_rows(
    session: Session, build_id: int, redeploys: int | None, needs_json: str
) -> list[ArtifactRow]:
    """The artifacts a job (its needs as stored) of a build (a rollback if it `redeploys`)
    receives as its inputs, and a deployment records: for a rollback, those its redeployed
    deployment recorded; otherwise those of its needs, through gates."""
    if redeploys is not None:
        return redeployed_rows(session, redeploys)
    needs = through_gates(session, build_id, set(json.loads(needs_json)))
    return current_rows(session, build_id, needs) if needs else []


def redeployed_rows(session: Session, deployment_id: int) -> list[ArtifactRow]:
    """The artifact rows, by digest, of what a deployment recorded, from the build that made
    them (a rollback's deployment recorded its target's, so follow the chain to the first)."""
    deployment = session.get(DeploymentRow, deployment_id)
    # A chain ends: a rollback only ever redeploys a deployment recorded before it.
    while deployment is not None and deployment.redeploys is not None:
        deployment = session.get(DeploymentRow, deployment.redeploys)
    if deployment is None:
        return []
    origin = session.get(BuildRow, deployment.build_id)
    if origin is None or origin.redeploys is not None:
        return []
    wanted = {(a["job"], a["name"], a["sha256"]) for a in json.loads(deployment.artifacts_json)}
    rows = session.exec(
        select(ArtifactRow)
        .where(ArtifactRow.build_id == deployment.build_id)
        .order_by(col(ArtifactRow.job_name), col(ArtifactRow.name), col(ArtifactRow.id))
    )
    found: dict[tuple[str, str], ArtifactRow] = {}
    for row in rows:
        if (row.job_name, row.name, row.sha256) in wanted:
            found.setdefault((row.job_name, row.name), row)
    return list(found.values())


def attempt_inputs(session: Session, attempt_id: int, *, with_pipeline: bool) -> Inputs | None:
    """What the attempt starts from (None: no such attempt); `pipeline_yaml` is read only
    `with_pipeline` (else "")."""
    query = _INPUTS if with_pipeline else _CLAIMED_INPUTS
    row = query.run(session, {"p_attempt": attempt_id}).one_or_none()
    if row is None:
        return None
    needed = received_rows(session, row.build_id, row.redeploys, row.needs_json)
    source = None
    if row.source_build is not None:
        # The exact commit when the store knows it, so the agent checks out no other.
        commit = build_commit(row.git_url, row.git_ref, row.git_commit)
        source = SourceSpec(row.snapshot_sha256, row.git_url, row.git_ref, commit, row.collected)
    spec = rowmap.spec_from_json(row.spec_json)
    return Inputs(
        source,
        tuple(_record(r) for r in needed),
        row.pipeline_yaml if with_pipeline else "",
        row.name,
        row.size or 0,
        spec.artifact_paths,
        spec.artifacts_always,
    )


class ArtifactStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with transaction(self._engine) as session:
            yield session

    def inputs(self, attempt_id: int) -> Inputs:
        with self._tx() as session:
            found = attempt_inputs(session, attempt_id, with_pipeline=True)
            if found is None:
                raise NotFoundError(f"attempt {attempt_id} does not exist")
            return found

    def add_blob(self, sha256: str, size: int) -> None:
        with self._tx() as session:
            if session.get(BlobRow, sha256) is None:
                session.add(BlobRow(sha256=sha256, size=size, created_at_ms=now_ms()))

    def has_blob(self, sha256: str) -> bool:
        with self._tx() as session:
            return session.get(BlobRow, sha256) is not None

    def artifact_digest(self, attempt_id: int, name: str) -> str | None:
        with self._tx() as session:
            row = session.exec(
                select(ArtifactRow).where(
                    col(ArtifactRow.attempt_id) == attempt_id, col(ArtifactRow.name) == name
                )
            ).first()
            return None if row is None else row.sha256

    def check_room(self, build_id: int, size: int, max_bytes: int, max_count: int) -> None:
        with self._tx() as session:
            self._check_room(session, build_id, size, max_bytes, max_count)

    def _check_room(
        self, session: Session, build_id: int, size: int, max_bytes: int, max_count: int
    ) -> None:
        count, used = session.exec(
            select(func.count(), func.coalesce(func.sum(ArtifactRow.size), 0)).where(
                ArtifactRow.build_id == build_id
            )
        ).one()
        if count + 1 > max_count:
            raise LimitError(
                f"build {build_id} already keeps {count} artifacts (limit {max_count})"
            )
        if used + size > max_bytes:
            raise LimitError(
                f"the build's artifacts would total {used + size} bytes, "
                f"over the limit of {max_bytes} bytes per build"
            )

    def add_artifact(self, new: NewArtifact, max_bytes: int, max_count: int) -> None:
        """Records an artifact whose blob is in place; the room is checked again, atomically."""
        with self._tx() as session:
            attempt = session.get(AttemptRow, new.attempt_id)
            job = session.get(JobRow, attempt.job_id) if attempt else None
            if attempt is None or job is None:
                raise NotFoundError(f"attempt {new.attempt_id} does not exist")
            held = session.exec(
                select(ArtifactRow).where(
                    col(ArtifactRow.attempt_id) == new.attempt_id, col(ArtifactRow.name) == new.name
                )
            ).first()
            if held is not None:
                if (held.sha256, held.size) == (new.sha256, new.size):
                    return  # the identical file resent: already recorded
                raise AlreadyExistsError(duplicate_artifact_message(new.name, held.sha256))
            self._check_room(session, new.build_id, new.size, max_bytes, max_count)
            if session.get(BlobRow, new.sha256) is None:
                session.add(BlobRow(sha256=new.sha256, size=new.size, created_at_ms=now_ms()))
            session.add(
                ArtifactRow(
                    build_id=new.build_id,
                    job_name=job.name,
                    attempt_id=new.attempt_id,
                    attempt_number=attempt.number,
                    name=new.name,
                    sha256=new.sha256,
                    size=new.size,
                    mode=new.mode,
                    created_at_ms=now_ms(),
                )
            )

    def set_commit(self, build_id: int, commit: str, committed_at_ms: int | None) -> str:
        """Keeps the build's commit (`build_commit`; the first resolved one when its ref is a
        name) and its time, so every job of the build checks out the same one; returns it."""
        with self._tx() as session:
            row = session.get(BuildSourceRow, build_id)
            if row is None or not row.git_url:
                raise NotFoundError(f"build {build_id} has no git source")
            kept = build_commit(row.git_url, row.git_ref, row.git_commit) or commit
            if not row.git_commit:
                row.git_commit = kept
            # A rollback or a watched push names its commit in advance; the agent that checks it
            # out tells when it was made.
            if kept == commit and row.git_committed_at_ms is None:
                row.git_committed_at_ms = committed_at_ms
            session.add(row)
            return row.git_commit

    def artifacts(self, build_id: int) -> tuple[list[ArtifactRecord], SourceSpec | None]:
        with self._tx() as session:
            if session.get(BuildRow, build_id) is None:
                raise NotFoundError(f"build {build_id} does not exist")
            rows = current_rows(session, build_id, None)
            return [_record(r) for r in rows], _source(session.get(BuildSourceRow, build_id))

    def blob_of_build(self, build_id: int, sha256: str) -> bool:
        with self._tx() as session:
            artifact = session.exec(
                select(ArtifactRow.id).where(
                    ArtifactRow.build_id == build_id, ArtifactRow.sha256 == sha256
                )
            ).first()
            source = session.get(BuildSourceRow, build_id)
            build = session.get(BuildRow, build_id)
            if artifact is None and build is not None and build.redeploys is not None:
                redeployed = redeployed_rows(session, build.redeploys)
                artifact = next((r.id for r in redeployed if r.sha256 == sha256), None)
            return artifact is not None or (
                source is not None and source.snapshot_sha256 == sha256 and not source.collected
            )

    def collect(self, cutoff_ms: int) -> Collected:
        """Forgets artifacts and sources of builds created before the cutoff (never the newest
        build's, nor those of a build any deployment came from: a rollback deploys them again)
        and returns the digests no longer referenced, whose rows are deleted here."""
        with self._tx() as session:
            newest = session.exec(select(func.max(BuildRow.id))).one() or 0
            old = set(
                session.exec(
                    select(BuildRow.id).where(
                        col(BuildRow.created_at_ms) < cutoff_ms,
                        col(BuildRow.id) != newest,
                        col(BuildRow.id).not_in(deployed_builds()),
                    )
                )
            )
            old_ids = [i for i in old if i is not None]
            _mark_collected(session, old_ids)
            session.exec(delete(ArtifactRow).where(col(ArtifactRow.build_id).in_(old_ids)))
            sources = session.exec(
                select(BuildSourceRow).where(col(BuildSourceRow.build_id).in_(old_ids))
            )
            for source in sources:
                source.collected = True
                session.add(source)
            session.flush()
            used = set(session.exec(select(ArtifactRow.sha256))) | set(
                session.exec(
                    select(BuildSourceRow.snapshot_sha256).where(
                        col(BuildSourceRow.collected).is_(False)
                    )
                )
            )
            # Blobs newer than the cutoff stay: a source may be uploaded but not yet submitted.
            stale = [
                b.sha256
                for b in session.exec(select(BlobRow).where(col(BlobRow.created_at_ms) < cutoff_ms))
                if b.sha256 not in used
            ]
            session.exec(delete(BlobRow).where(col(BlobRow.sha256).in_(stale)))
            return Collected(len(old_ids), tuple(stale))


def _mark_collected(session: Session, build_ids: list[int]) -> None:
    """Marks the builds that lose a source or an artifact now, so a retry of one is refused."""
    losing = set(
        session.exec(select(ArtifactRow.build_id).where(col(ArtifactRow.build_id).in_(build_ids)))
    ) | set(
        session.exec(
            select(BuildSourceRow.build_id).where(
                col(BuildSourceRow.build_id).in_(build_ids),
                col(BuildSourceRow.collected).is_(False),
            )
        )
    )
    if losing:
        session.exec(update(BuildRow).where(col(BuildRow.id).in_(losing)).values(collected=True))
