"""Agents as the store keeps them: registration, modes, last-seen times."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from coordinator.domain.access import SERVER_TOKEN_NAME
from coordinator.domain.audit import AGENT_MODE_ACTIONS, AuditAction
from coordinator.domain.errors import ConflictError, NotFoundError
from coordinator.domain.records import AgentRecord
from coordinator.domain.registry import REVOKED
from coordinator.store import audit, rowmap
from coordinator.store.base import Component
from coordinator.store.engine import now_ms
from coordinator.store.tables import AgentRow, AttemptRow


class AgentStore(Component):
    def find(self, name: str) -> AgentRecord | None:
        with self._tx() as session:
            row = session.exec(select(AgentRow).where(AgentRow.name == name)).first()
            return None if row is None else rowmap.agent_record(row, {})

    def register(
        self,
        *,
        name: str,
        labels: Mapping[str, str],
        capacity: int,
        session_hash: str,
        credential_hash: str | None = None,
        mode: str | None = None,
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
            if credential_hash is not None:
                row.credential_hash = credential_hash
            if mode is not None:
                row.mode = mode
            row.last_seen_ms = stamp
            session.flush()
            return rowmap.agent_record(row, {})

    def list(self) -> list[AgentRecord]:
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

    def set_mode(self, name: str, mode: str, by: str = SERVER_TOKEN_NAME) -> AgentRecord:
        with self._tx() as session:
            row = _named(session, name)
            if row.mode == REVOKED:
                raise ConflictError(f"agent '{name}' was revoked: it can no longer be {mode}")
            row.mode = mode
            audit.record(session, by, AGENT_MODE_ACTIONS[mode], name)
            session.flush()
            return rowmap.agent_record(row, {})

    def revoke(self, name: str, by: str) -> AgentRecord:
        with self._tx() as session:
            row = _named(session, name)
            if row.mode != REVOKED:
                # No session or credential hash matches "": nothing the agent holds works again.
                row.mode, row.session_hash, row.credential_hash = REVOKED, "", ""
                audit.record(session, by, AuditAction.AGENT_REVOKE, name)
                session.flush()
            return rowmap.agent_record(row, {})

    def touch(self, last_seen_ms: Mapping[int, int]) -> None:
        # One executemany by primary key: a thousand agents every reaper period must stay cheap.
        rows = [{"id": agent_id, "last_seen_ms": stamp} for agent_id, stamp in last_seen_ms.items()]
        with self._tx() as session:
            session.execute(update(AgentRow), rows)


def _named(session: Session, name: str) -> AgentRow:
    row = session.exec(select(AgentRow).where(AgentRow.name == name)).first()
    if row is None:
        raise NotFoundError(f"no agent named '{name}'")
    return row
