"""Deploy locks and concurrency groups in the store, inside the callers' transactions.

A held lock is a `deploy_locks` row: taken in the claim's transaction (the group's primary key
makes a second holder impossible, whichever coordinator claims), dropped in the transaction that
ends the holder's attempt, however it ends. `coordinator.policy.locks` decides who gets a free
lock; this module reads what it needs and applies its plan.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Row, Select, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from conveyor.states import JobStatus, Reason
from coordinator.policy import locks as policy
from coordinator.store.delivery_tables import (
    DeliveryJobRow,
    DeployLockRow,
    DeploymentRow,
    EnvironmentRow,
)
from coordinator.store.engine import now_ms
from coordinator.store.prepared import Prepared
from coordinator.store.tables import JobRow

LOCKS: Table = DeployLockRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]
DEPLOYMENTS: Table = DeploymentRow.__table__  # type: ignore[attr-defined]
JOBS: Table = JobRow.__table__  # type: ignore[attr-defined]

# Run by every claim, attempt end and queueing, deployment or not: built once.
_RELEASE = delete(LOCKS).where(LOCKS.c.job_id == bindparam("p_job")).returning(LOCKS.c.group_name)
_ACTIVATE = (
    update(DELIVERY)
    .where(DELIVERY.c.job_id.in_(bindparam("p_jobs", expanding=True)))
    .values(active=True)  # again, for a retried job
    .returning(DELIVERY.c.lock_group)
)
_ACTIVE_WAITERS = select(
    DELIVERY.c.job_id,
    DELIVERY.c.build_id,
    DELIVERY.c.environment,
    DELIVERY.c.lock_group,
    DELIVERY.c.lock_order,
).where(DELIVERY.c.active.is_(True))
_EVERY_ACTIVE_WAITER = Prepared(_ACTIVE_WAITERS)

# job id, build id, environment, lock group, lock order
_ActiveRow = Row[int, int, str, str, str]

LOGGER = logging.getLogger(__name__)


@dataclass
class Gate:
    """What a claim may take: queued lock jobs are blocked unless they may take a free lock."""

    blocked: set[int] = field(default_factory=set)
    grantable: dict[int, str] = field(default_factory=dict)
    """Job id to the group whose free lock it may take."""


@dataclass(frozen=True)
class _Queued:
    waiter: policy.Waiter
    group: str
    reason: str
    message: str


def gate(session: Session) -> Gate:
    """The claim's view of the locks; tells waiting jobs what they wait for. Skips nothing (the
    transactions that end attempts and queue jobs do, where the builds they touch are known)."""
    active = _active(session, None)
    _deactivate_final(session, list(active))
    queued = _queued(session, None, active)
    if not queued:
        return Gate()
    result = Gate()
    for group, plan in _plans(session, queued).items():
        for item in queued:
            if item.group != group:
                continue
            job_id = item.waiter.job_id
            if job_id == plan.winner:
                result.grantable[job_id] = group
            else:
                result.blocked.add(job_id)
        _tell_waiting(session, queued, plan)
    return result


def acquire(session: Session, group: str, job_id: int, build_id: int) -> bool:
    """Takes `group`'s lock for the job unless someone holds it; in the claim's transaction."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(LOCKS)
        .values(group_name=group, job_id=job_id, build_id=build_id, acquired_at_ms=now_ms())
        .on_conflict_do_nothing()
        .returning(LOCKS.c.job_id)
    )
    taken = session.execute(statement).scalar_one_or_none() is not None
    if taken:
        words = policy.held_words(group, build_id, _is_environment(session, group))
        others = _group_queued(group).where(JOBS.c.id != job_id)
        session.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(_unlocked(others)))
            .values(reason=Reason.WAITING_FOR_LOCK, message=words)
        )
    return taken


def take(session: Session, candidates: list[int], locks: Gate) -> tuple[list[int], set[int]]:
    """Takes the free locks the claim's candidates may have; returns the candidates left (those
    refused a lock dropped) and the jobs it took locks for."""
    wanted = [job_id for job_id in candidates if job_id in locks.grantable]
    if not wanted:
        return candidates, set()
    builds = dict(
        session.execute(select(JOBS.c.id, JOBS.c.build_id).where(JOBS.c.id.in_(wanted))).all()
    )
    taken = {
        job_id
        for job_id in wanted
        if acquire(session, locks.grantable.pop(job_id), job_id, builds[job_id])
    }
    # Once considered, never again in this claim: a lock is granted once.
    locks.blocked.update(wanted)
    return [job_id for job_id in candidates if job_id not in set(wanted) - taken], taken


def drop(session: Session, job_ids: Collection[int]) -> None:
    """Gives back locks taken for jobs the claim did not get after all."""
    if job_ids:
        session.execute(delete(LOCKS).where(LOCKS.c.job_id.in_(job_ids)))


@dataclass
class Released:
    changed_builds: set[int] = field(default_factory=set)
    queued_labels: list[dict[str, str]] = field(default_factory=list)


def release(session: Session, job_id: int) -> Released:
    """Drops the lock the job held (its attempt ended) and decides the group's waiters now:
    skips the outdated and superseded; the others are woken to claim the free lock."""
    group = session.execute(_RELEASE, {"p_job": job_id}).scalar_one_or_none()
    if group is None:
        return Released()
    queued = _queued(session, {group})
    released = Released()
    for plan in _plans(session, queued).values():
        released.changed_builds |= _apply_skips(session, queued, plan, only_build=None)
        _tell_waiting(session, queued, plan)
    labels = session.execute(
        select(JOBS.c.labels_json).where(JOBS.c.id.in_(_group_queued(group)))
    ).scalars()
    released.queued_labels = [json.loads(text) for text in labels]
    return released


def settle_queued(session: Session, build_id: int, job_ids: Iterable[int]) -> bool:
    """Skips the build's just-queued lock jobs that are already outdated (or superseded) and
    tells the others what they wait for; returns whether it skipped any."""
    ids = list(job_ids)
    groups = set(session.execute(_ACTIVATE, {"p_jobs": ids}).scalars())
    if not groups:
        return False
    queued = _queued(session, groups)
    skipped = False
    for plan in _plans(session, queued).values():
        skipped |= bool(_apply_skips(session, queued, plan, only_build=build_id))
        # Said now, not at the next claim: with every agent busy none may come for a while.
        _tell_waiting(session, [item for item in queued if item.waiter.build_id == build_id], plan)
    return skipped


# -- reading --------------------------------------------------------------------------------------


def _group_queued(group: str) -> Select[tuple[int]]:
    """The group's queued jobs, found by id among its active lock jobs (see `_queued`)."""
    active = select(DELIVERY.c.job_id).where(
        DELIVERY.c.active.is_(True), DELIVERY.c.lock_group == group
    )
    return select(JOBS.c.id).where(JOBS.c.id.in_(active), JOBS.c.status == JobStatus.QUEUED)


def _active(session: Session, groups: set[str] | None) -> dict[int, _ActiveRow]:
    """The active lock jobs (of `groups`, or all) by job id."""
    if groups is None:  # every claim asks this: prepared
        return {row[0]: row for row in _EVERY_ACTIVE_WAITER.run(session).all()}
    active = _ACTIVE_WAITERS.where(DELIVERY.c.lock_group.in_(groups))
    return {row[0]: row for row in session.execute(active).all()}


def _queued(
    session: Session,
    groups: set[str] | None,
    active: dict[int, _ActiveRow] | None = None,
) -> list[_Queued]:
    """The queued lock jobs (of `groups`, or all), read from the active ones first (`active`
    when the caller read them already): the queue may hold thousands of other jobs, and the
    history thousands of finished deployments."""
    rows = _active(session, groups) if active is None else active
    if not rows:
        return []
    jobs = session.execute(
        select(JOBS.c.id, JOBS.c.reason, JOBS.c.message).where(
            JOBS.c.id.in_(list(rows)), JOBS.c.status == JobStatus.QUEUED
        )
    ).all()
    queued = []
    for job_id, reason, message in jobs:
        _, build_id, environment, group, order = rows[job_id]
        queued.append(
            _Queued(policy.Waiter(job_id, build_id, environment, order), group, reason, message)
        )
    return queued


def _plans(session: Session, queued: list[_Queued]) -> dict[str, policy.Plan]:
    groups = {item.group for item in queued}
    holders = _holders(session, groups)
    current = current_builds(session, {item.waiter.environment for item in queued} - {""})
    return {
        group: policy.plan(
            group,
            [item.waiter for item in queued if item.group == group],
            holders.get(group),
            current,
        )
        for group in groups
    }


def _holders(session: Session, groups: set[str]) -> dict[str, int]:
    """Holder build per group; a lock whose job no longer runs (it ended by a path that forgot
    to drop it) is dropped here rather than blocking the group forever."""
    rows = session.execute(
        select(LOCKS.c.group_name, LOCKS.c.build_id, LOCKS.c.job_id, JOBS.c.status)
        .join(JOBS, JOBS.c.id == LOCKS.c.job_id, isouter=True)
        .where(LOCKS.c.group_name.in_(groups))
    ).all()
    holders: dict[str, int] = {}
    for group, build_id, job_id, status in rows:
        if status == JobStatus.RUNNING:
            holders[group] = build_id
        else:
            LOGGER.warning("lock %s: its holder job %d is %s; lock dropped", group, job_id, status)
            session.execute(delete(LOCKS).where(LOCKS.c.group_name == group))
    return holders


def current_builds(session: Session, environments: set[str]) -> dict[str, int]:
    """The build of each environment's current (latest successful) deployment."""
    if not environments:
        return {}
    latest = (
        select(func.max(DEPLOYMENTS.c.id))
        .where(DEPLOYMENTS.c.environment.in_(environments), DEPLOYMENTS.c.status == "succeeded")
        .group_by(DEPLOYMENTS.c.environment)
    )
    rows = session.execute(
        select(DEPLOYMENTS.c.environment, DEPLOYMENTS.c.build_id).where(
            DEPLOYMENTS.c.id.in_(latest)
        )
    ).all()
    return {environment: build_id for environment, build_id in rows}


def _is_environment(session: Session, group: str) -> bool:
    return session.get(EnvironmentRow, group) is not None


def _deactivate_final(session: Session, active: list[int]) -> None:
    """Clears the mark of those `active` lock jobs that are final now (a retry marks them
    again)."""
    final = [status.value for status in JobStatus if status.final]
    if not active:
        return
    done = select(JOBS.c.id).where(JOBS.c.id.in_(active), JOBS.c.status.in_(final))
    ids = list(session.execute(done).scalars())
    if ids:
        session.execute(update(DELIVERY).where(DELIVERY.c.job_id.in_(ids)).values(active=False))


# -- writing --------------------------------------------------------------------------------------


def _apply_skips(
    session: Session, queued: list[_Queued], plan: policy.Plan, only_build: int | None
) -> set[int]:
    # Imported here: progress calls settle_queued, so a module-level import would be circular.
    from coordinator.store import progress

    builds = {item.waiter.job_id: item.waiter.build_id for item in queued}
    changed: set[int] = set()
    for skip in plan.skipped:
        build_id = builds[skip.job_id]
        if only_build is not None and build_id != only_build:
            continue
        progress.set_job(session, skip.job_id, JobStatus.SKIPPED, skip.reason, skip.message)
        changed.add(build_id)
    for build_id in changed:
        if build_id != only_build:
            progress.advance(session, build_id)
    return changed


def _tell_waiting(session: Session, queued: list[_Queued], plan: policy.Plan) -> None:
    """Stores each waiter's words; the winner's stale ones are cleared (it waits for an agent
    now, which a build read back says from the agents it knows)."""
    for item in queued:
        words = plan.waiting.get(item.waiter.job_id)
        if words is None:
            if item.waiter.job_id != plan.winner or item.reason != Reason.WAITING_FOR_LOCK:
                continue
            values = ("", "")
        else:
            values = (Reason.WAITING_FOR_LOCK, words)
        if (item.reason, item.message) == values:
            continue
        still_queued = select(JOBS.c.id).where(
            JOBS.c.id == item.waiter.job_id, JOBS.c.status == JobStatus.QUEUED
        )
        session.execute(
            update(JOBS)
            .where(JOBS.c.id.in_(_unlocked(still_queued)))
            .values(reason=values[0], message=values[1])
        )


def _unlocked(jobs: Select[tuple[int]]) -> Select[tuple[int]]:
    """Those of `jobs` no other transaction has locked (PostgreSQL; SQLite renders no clause).

    The words a waiter shows are a courtesy: a claim of another coordinator that holds the row
    must not be waited for, let alone deadlocked with, for them.
    """
    return jobs.with_for_update(skip_locked=True)
