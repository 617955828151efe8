"""Notification targets and their outbox as stored (migration 0013). One public method, one
transaction; secrets and tokens come in sealed and go out sealed."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Row, Table, case, delete, func, select, update
from sqlmodel import Session

from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import NotFoundError
from coordinator.domain.notify_records import (
    Delivery,
    DeliveryState,
    NewTarget,
    NotifyEvent,
    TargetKind,
    TargetRecord,
    TryOutcome,
)
from coordinator.store import audit
from coordinator.store.base import Component
from coordinator.store.engine import now_ms
from coordinator.store.notify_tables import NotifyOutboxRow, NotifyTargetRow, NotifyTryRow

TARGETS: Table = NotifyTargetRow.__table__  # type: ignore[attr-defined]
OUTBOX: Table = NotifyOutboxRow.__table__  # type: ignore[attr-defined]
TRIES: Table = NotifyTryRow.__table__  # type: ignore[attr-defined]
PENDING = DeliveryState.PENDING.value


class NotificationStore(Component):
    def add(self, target: NewTarget, *, by: str) -> TargetRecord:
        """Records a target; it hears of events from the next one on."""
        with self._tx() as session:
            row = NotifyTargetRow(
                kind=target.kind.value,
                url=target.url,
                repo=target.repo,
                events_json=json.dumps([e.value for e in target.events]),
                sealed=target.sealed,
                link=target.link,
                created_at_ms=now_ms(),
                created_by=by,
            )
            session.add(row)
            session.flush()
            assert row.id is not None
            audit.record(session, by, AuditAction.NOTIFY_ADD, f"target {row.id}", _what(row))
            return _targets(session, row.id)[0]

    def remove(self, target_id: int, *, by: str) -> TargetRecord:
        """Deletes the target with its events, sent or not; NotFoundError if there is none."""
        with self._tx() as session:
            found = _targets(session, target_id)
            if not found:
                raise NotFoundError(f"no notification target {target_id}")
            outbox_ids = select(OUTBOX.c.id).where(OUTBOX.c.target_id == target_id)
            session.execute(delete(TRIES).where(TRIES.c.outbox_id.in_(outbox_ids)))
            session.execute(delete(OUTBOX).where(OUTBOX.c.target_id == target_id))
            session.execute(delete(TARGETS).where(TARGETS.c.id == target_id))
            audit.record(session, by, AuditAction.NOTIFY_REMOVE, f"target {target_id}")
            return found[0]

    def targets(self) -> list[TargetRecord]:
        """Every target by id, with its events' counts, last error and next try."""
        with self._tx() as session:
            return _targets(session, None)

    def claim(self, now: int, limit: int, *, until: int) -> list[Delivery]:
        """Each target's oldest pending event, if it is due by `now` (ms): one per target, so a
        target's events go in order, and a target waiting to retry holds back only its own.
        Each is claimed (not due again) until `until`, or until its try is recorded; an event
        another coordinator claimed first is left out."""
        with self._tx() as session:
            heads = (
                select(func.min(OUTBOX.c.id))
                .where(OUTBOX.c.state == PENDING)
                .group_by(OUTBOX.c.target_id)
            )
            rows = session.execute(
                select(OUTBOX, TARGETS.c.kind, TARGETS.c.sealed, TARGETS.c.url.label("scope"))
                .join(TARGETS, TARGETS.c.id == OUTBOX.c.target_id)
                .where(OUTBOX.c.id.in_(heads), OUTBOX.c.next_try_at_ms <= now)
                .order_by(OUTBOX.c.next_try_at_ms, OUTBOX.c.id)
                .limit(limit)
            ).all()
            return [_delivery(row) for row in rows if _claimed(session, row, until)]

    def release(self, outbox_ids: Sequence[int], now: int) -> None:
        """Makes claimed events that are still pending due at `now` again (a stopping sender
        cut their tries short)."""
        if not outbox_ids:
            return
        with self._tx() as session:
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_(list(outbox_ids)), OUTBOX.c.state == PENDING)
                .values(next_try_at_ms=now)
            )

    def record_try(self, outbox_id: int, outcome: TryOutcome, next_try_at_ms: int | None) -> None:
        """Records a try of a pending event: delivered (2xx), tried again at `next_try_at_ms`,
        or given up (None). An event no longer pending (its target removed) is left alone."""
        if outcome.delivered:
            state = DeliveryState.DELIVERED
        else:
            state = DeliveryState.PENDING if next_try_at_ms is not None else DeliveryState.FAILED
        with self._tx() as session:
            changed = session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == outbox_id, OUTBOX.c.state == PENDING)
                .values(
                    state=state.value,
                    tries=OUTBOX.c.tries + 1,
                    next_try_at_ms=next_try_at_ms or outcome.at_ms,
                    last_status=outcome.status,
                    last_error=outcome.error,
                    finished_at_ms=None if state is DeliveryState.PENDING else outcome.at_ms,
                )
            ).rowcount  # type: ignore[attr-defined]
            if changed:
                session.add(
                    NotifyTryRow(
                        outbox_id=outbox_id,
                        at_ms=outcome.at_ms,
                        status=outcome.status,
                        error=outcome.error,
                    )
                )

    def prune(self, finished_before_ms: int, limit: int) -> int:
        """Deletes up to `limit` delivered or given-up events whose last try was before
        `finished_before_ms`, oldest first, with their tries; how many it deleted. Pending
        events stay, however old."""
        with self._tx() as session:
            ids = list(
                session.execute(
                    select(OUTBOX.c.id)
                    .where(OUTBOX.c.state != PENDING, OUTBOX.c.finished_at_ms < finished_before_ms)
                    .order_by(OUTBOX.c.id)
                    .limit(limit)
                ).scalars()
            )
            if ids:
                session.execute(delete(TRIES).where(TRIES.c.outbox_id.in_(ids)))
                session.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(ids)))
            return len(ids)

    def tries(self, outbox_id: int) -> list[TryOutcome]:
        """An event's tries, oldest first."""
        with self._tx() as session:
            rows = session.execute(
                select(TRIES.c.at_ms, TRIES.c.status, TRIES.c.error)
                .where(TRIES.c.outbox_id == outbox_id)
                .order_by(TRIES.c.id)
            ).all()
            return [TryOutcome(*row) for row in rows]


def _claimed(session: Session, row: Row[tuple[object, ...]], until: int) -> bool:
    """Claims the event read in `row`, unless someone moved it on since (compare and set)."""
    data = row._mapping
    won = session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.id == data["id"],
            OUTBOX.c.state == PENDING,
            OUTBOX.c.next_try_at_ms == data["next_try_at_ms"],
        )
        .values(next_try_at_ms=until)
    ).rowcount  # type: ignore[attr-defined]
    return bool(won)


def _what(row: NotifyTargetRow) -> str:
    where = f"{row.url} {row.repo}".strip()
    return f"{row.kind} {where} events {','.join(json.loads(row.events_json))}"


def _targets(session: Session, target_id: int | None) -> list[TargetRecord]:
    chosen = select(TARGETS).order_by(TARGETS.c.id)
    if target_id is not None:
        chosen = chosen.where(TARGETS.c.id == target_id)
    targets = session.execute(chosen).all()
    if not targets:
        return []
    ids = [t.id for t in targets]
    counts = _counts(session, ids)
    errors = _last_errors(session, ids)
    return [
        _target(row, counts.get(row.id, (0, 0, 0, None)), errors.get(row.id, "")) for row in targets
    ]


Counts = tuple[int, int, int, int | None]  # delivered, pending, failed, the next try (ms)


def _counts(session: Session, ids: list[int]) -> dict[int, Counts]:
    def count(state: DeliveryState) -> ColumnElement[int]:
        return func.sum(case((OUTBOX.c.state == state.value, 1), else_=0))

    rows = session.execute(
        select(
            OUTBOX.c.target_id,
            count(DeliveryState.DELIVERED),
            count(DeliveryState.PENDING),
            count(DeliveryState.FAILED),
            func.min(case((OUTBOX.c.state == PENDING, OUTBOX.c.next_try_at_ms))),
        )
        .where(OUTBOX.c.target_id.in_(ids))
        .group_by(OUTBOX.c.target_id)
    ).all()
    return {row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0), row[4]) for row in rows}


def _last_errors(session: Session, ids: list[int]) -> dict[int, str]:
    """Each target's latest failed try's error."""
    latest = (
        select(func.max(TRIES.c.id))
        .join(OUTBOX, OUTBOX.c.id == TRIES.c.outbox_id)
        .where(OUTBOX.c.target_id.in_(ids), TRIES.c.error != "")
        .group_by(OUTBOX.c.target_id)
    )
    rows = session.execute(
        select(OUTBOX.c.target_id, TRIES.c.error)
        .join(OUTBOX, OUTBOX.c.id == TRIES.c.outbox_id)
        .where(TRIES.c.id.in_(latest))
    ).all()
    return {row.target_id: row.error for row in rows}


def _target(row: Row[tuple[object, ...]], counts: Counts, last_error: str) -> TargetRecord:
    data = row._mapping
    delivered, pending, failed, next_try = counts
    return TargetRecord(
        id=data["id"],
        kind=TargetKind(data["kind"]),
        url=data["url"],
        repo=data["repo"],
        events=tuple(NotifyEvent(e) for e in json.loads(data["events_json"])),
        signed=data["sealed"] is not None,
        created_at_ms=data["created_at_ms"],
        created_by=data["created_by"],
        delivered=delivered,
        pending=pending,
        failed=failed,
        last_error=last_error,
        next_try_at_ms=next_try,
    )


def _delivery(row: Row[tuple[object, ...]]) -> Delivery:
    data = row._mapping
    sealed = data["sealed"]
    return Delivery(
        id=data["id"],
        delivery_id=data["delivery_id"],
        target_id=data["target_id"],
        kind=TargetKind(data["kind"]),
        event=NotifyEvent(data["event"]),
        url=data["url"],
        body=bytes(data["body"]),
        sealed=None if sealed is None else bytes(sealed),
        seal_scope=data["scope"],
        tries=data["tries"],
    )
