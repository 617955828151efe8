"""SQLModel tables for client tokens and the audit trail (migration 0009). Only the store
touches these."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from coordinator.store.coltypes import BigInt


class TokenRow(SQLModel, table=True):
    """A named client token: only the SHA-256 of its secret is kept, never the secret."""

    __tablename__ = "tokens"

    name: str = Field(primary_key=True)
    role: str
    token_hash: str = Field(unique=True, index=True)
    created_at_ms: int = Field(sa_type=BigInt)
    # Written at most once per TOKEN_TOUCH_INTERVAL_S, not on every call.
    last_used_ms: int | None = Field(default=None, sa_type=BigInt)


class AuditRow(SQLModel, table=True):
    """One change made by someone (DESIGN §7.12), written in the change's own transaction."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at_ms: int = Field(sa_type=BigInt)
    # The name of the token the change came with ("by" is a reserved word in SQL).
    actor: str
    action: str
    target: str
    detail: str = ""
