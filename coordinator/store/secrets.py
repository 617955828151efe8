"""Secrets as stored: encrypted values by name and scope (migration 0010). One public method, one
transaction; the values come in sealed and go out sealed, the store never sees them in clear."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import LargeBinary, Table, delete, select
from sqlmodel import Field, Session, SQLModel, col

from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import SealedSecret
from coordinator.domain.secret_records import SecretRecord
from coordinator.store import audit
from coordinator.store.base import Component
from coordinator.store.coltypes import BigInt
from coordinator.store.delivery_tables import DeliveryJobRow
from coordinator.store.engine import now_ms

EVERY_JOB = ""
"""The scope of a secret given to any job that names it (no `--env`)."""


class SecretRow(SQLModel, table=True):
    """One secret value for one scope: "" (any job naming it) or an environment's name (only
    that environment's deployment jobs, which then get it rather than the unscoped one)."""

    __tablename__ = "secrets"

    name: str = Field(primary_key=True)
    scope: str = Field(primary_key=True)
    # Nonce and ciphertext (the coordinator's key seals it bound to name and scope).
    sealed: bytes = Field(sa_type=LargeBinary)
    updated_at_ms: int = Field(sa_type=BigInt)
    # The name of the token that last set it.
    updated_by: str


SECRETS: Table = SecretRow.__table__  # type: ignore[attr-defined]
DELIVERY: Table = DeliveryJobRow.__table__  # type: ignore[attr-defined]


class SecretStore(Component):
    def put(self, name: str, scope: str, sealed: bytes, *, by: str) -> SecretRecord:
        """Sets the secret `name` for `scope`, replacing the value it had there."""
        with self._tx() as session:
            row = session.get(SecretRow, (name, scope))
            if row is None:
                row = SecretRow(
                    name=name, scope=scope, sealed=sealed, updated_at_ms=0, updated_by=by
                )
            row.sealed, row.updated_at_ms, row.updated_by = sealed, now_ms(), by
            session.add(row)
            _audit(session, AuditAction.SECRET_SET, name, scope, by)
            return _record(row)

    def remove(self, name: str, scope: str, *, by: str) -> SecretRecord:
        """Deletes the secret `name` of `scope`; NotFoundError if there is none."""
        with self._tx() as session:
            row = session.get(SecretRow, (name, scope))
            if row is None:
                where = f" for environment {scope}" if scope else " (unscoped)"
                raise NotFoundError(f"no secret {name!r}{where}")
            record = _record(row)
            session.execute(
                delete(SecretRow).where(col(SecretRow.name) == name, col(SecretRow.scope) == scope)
            )
            _audit(session, AuditAction.SECRET_REMOVE, name, scope, by)
            return record

    def list(self) -> list[SecretRecord]:
        """Every secret's name, scope and last change, by name then scope; never a value."""
        with self._tx() as session:
            rows = session.execute(
                select(
                    SECRETS.c.name, SECRETS.c.scope, SECRETS.c.updated_at_ms, SECRETS.c.updated_by
                ).order_by(SECRETS.c.name, SECRETS.c.scope)
            ).all()
            return [SecretRecord(*row) for row in rows]

    def scopes(self, names: Collection[str]) -> dict[str, tuple[str, ...]]:
        """The scopes each of `names` is set for (names set for none are left out)."""
        if not names:
            return {}
        with self._tx() as session:
            rows = session.execute(
                select(SECRETS.c.name, SECRETS.c.scope).where(SECRETS.c.name.in_(set(names)))
            ).all()
        found: dict[str, list[str]] = {}
        for name, scope in rows:
            found.setdefault(name, []).append(scope)
        return {name: tuple(sorted(scopes)) for name, scopes in found.items()}


def sealed_for(session: Session, job_id: int, names: Sequence[str]) -> tuple[SealedSecret, ...]:
    """The values a claimed job gets, sealed: for each name, its environment's own if the job
    is a deployment job and one is set, else the unscoped one, else none (sealed None)."""
    if not names:
        return ()
    environment = session.execute(
        select(DELIVERY.c.environment).where(DELIVERY.c.job_id == job_id)
    ).scalar_one_or_none()
    scopes = {EVERY_JOB, environment} if environment else {EVERY_JOB}
    rows = session.execute(
        select(SECRETS.c.name, SECRETS.c.scope, SECRETS.c.sealed).where(
            SECRETS.c.name.in_(set(names)), SECRETS.c.scope.in_(scopes)
        )
    ).all()
    best: dict[str, tuple[str, bytes]] = {}
    for name, scope, sealed in rows:
        if name not in best or scope != EVERY_JOB:
            best[name] = (scope, bytes(sealed))
    return tuple(
        SealedSecret(name, *best[name]) if name in best else SealedSecret(name, EVERY_JOB, None)
        for name in names
    )


def _audit(session: Session, action: AuditAction, name: str, scope: str, by: str) -> None:
    """A secret change joins the audit trail inside its own transaction (DESIGN §7.12); the
    event names the secret and its scope, never a value."""
    audit.record(session, by, action, name, f"environment {scope}" if scope else "every job")


def _record(row: SecretRow) -> SecretRecord:
    return SecretRecord(row.name, row.scope, row.updated_at_ms, row.updated_by)
