"""The audit trail as stored: `record` adds an event to the caller's transaction.

Call `record(session, by, action, target, detail)` inside the store method that makes the change
(the same session, so the event commits or rolls back with it). The action names are
`coordinator.domain.audit.AuditAction`; `by` is the principal's name.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from coordinator.config import MAX_AUDIT_DETAIL_CHARS
from coordinator.domain.audit import AuditAction, AuditEvent
from coordinator.store.access_tables import AuditRow
from coordinator.store.base import Component
from coordinator.store.engine import now_ms


def record(session: Session, by: str, action: AuditAction, target: str, detail: str = "") -> None:
    """Adds one audit event to `session`'s transaction: who (`by`), what, to what."""
    session.add(
        AuditRow(
            at_ms=now_ms(),
            actor=by,
            action=action.value,
            target=target,
            detail=detail[:MAX_AUDIT_DETAIL_CHARS],
        )
    )


class AuditStore(Component):
    def events(self, limit: int) -> list[AuditEvent]:
        with self._tx() as session:
            rows = session.exec(select(AuditRow).order_by(col(AuditRow.id).desc()).limit(limit))
            return [AuditEvent(r.at_ms, r.actor, r.action, r.target, r.detail) for r in rows]
