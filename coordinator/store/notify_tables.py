"""SQLModel tables for outgoing notifications: targets, their outbox, its tries (migration 0013).

Only the store touches these.
"""

from __future__ import annotations

from sqlalchemy import Index, LargeBinary
from sqlmodel import Field, SQLModel

from coordinator.store.coltypes import BigInt


class NotifyTargetRow(SQLModel, table=True):
    """Where events go (`conveyor notify add`)."""

    __tablename__ = "notify_targets"

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    # A webhook's URL, or a forge's API base for commit statuses.
    url: str
    # "OWNER/REPO" for commit statuses, "" for a webhook.
    repo: str = ""
    # The events it hears of: a JSON list of names.
    events_json: str
    # The webhook's secret or the forge's token, sealed for the target's URL; None: unsigned.
    sealed: bytes | None = Field(default=None, sa_type=LargeBinary)
    # Commit statuses link a build's page under this ("": none).
    link: str = ""
    created_at_ms: int = Field(sa_type=BigInt)
    created_by: str


class NotifyOutboxRow(SQLModel, table=True):
    """One event for one target, written in the transaction of the change it tells of; its
    body is frozen then, so every try sends the same bytes. Rows of a target go out in id
    order, one at a time."""

    __tablename__ = "notify_outbox"
    # The sender's question each pass: every target's oldest pending event.
    __table_args__ = (Index("ix_notify_outbox_pending", "state", "target_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(unique=True)
    target_id: int = Field(index=True)
    event: str
    build_id: int
    url: str
    body: bytes = Field(sa_type=LargeBinary)
    created_at_ms: int = Field(sa_type=BigInt)
    state: str
    tries: int = 0
    next_try_at_ms: int = Field(sa_type=BigInt)
    last_status: int | None = None
    last_error: str = ""
    finished_at_ms: int | None = Field(default=None, sa_type=BigInt)


class NotifyTryRow(SQLModel, table=True):
    """One try of an event: when, the HTTP status it got (None: no answer), and what failed."""

    __tablename__ = "notify_tries"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(index=True)
    at_ms: int = Field(sa_type=BigInt)
    status: int | None = None
    error: str = ""
