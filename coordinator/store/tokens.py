"""Named client tokens as stored: their hashes, roles and last use. One method, one transaction."""

from __future__ import annotations

from sqlmodel import col, select

from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import AlreadyExistsError, NotFoundError
from coordinator.domain.records import TokenRecord
from coordinator.store import audit
from coordinator.store.access_tables import TokenRow
from coordinator.store.base import Component
from coordinator.store.engine import now_ms


def _record(row: TokenRow) -> TokenRecord:
    return TokenRecord(row.name, row.role, row.created_at_ms, row.last_used_ms)


class TokenStore(Component):
    def create(self, name: str, role: str, token_hash: str, by: str) -> TokenRecord:
        with self._tx() as session:
            if session.get(TokenRow, name) is not None:
                raise AlreadyExistsError(
                    f"a token named {name!r} exists; revoke it first or choose another name"
                )
            row = TokenRow(name=name, role=role, token_hash=token_hash, created_at_ms=now_ms())
            session.add(row)
            audit.record(session, by, AuditAction.TOKEN_CREATE, name, f"role {role}")
            session.flush()
            return _record(row)

    def list(self) -> list[TokenRecord]:
        with self._tx() as session:
            return [_record(r) for r in session.exec(select(TokenRow).order_by(col(TokenRow.name)))]

    def revoke(self, name: str, by: str) -> TokenRecord:
        with self._tx() as session:
            row = session.get(TokenRow, name)
            if row is None:
                raise NotFoundError(f"no token named {name!r}")
            found = _record(row)
            session.delete(row)
            audit.record(session, by, AuditAction.TOKEN_REVOKE, name, f"role {found.role}")
            return found

    def authenticate(
        self, token_hash: str, now_ms: int, touch_before_ms: int
    ) -> TokenRecord | None:
        with self._tx() as session:
            row = session.exec(select(TokenRow).where(TokenRow.token_hash == token_hash)).first()
            if row is None:
                return None
            if row.last_used_ms is None or row.last_used_ms < touch_before_ms:
                row.last_used_ms = now_ms
                session.flush()
            return _record(row)
