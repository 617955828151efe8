"""Milliseconds, byte counts and queue positions as BIGINT on PostgreSQL.

Revision ID: 0003_bigint_on_postgresql
Revises: 0002_queue_sequence

The baseline declared them INTEGER, which is 64-bit on SQLite but 32-bit on PostgreSQL: a
millisecond timestamp or a 3 GiB artifact does not fit. Nothing changes on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_bigint_on_postgresql"
down_revision = "0002_queue_sequence"
branch_labels = None
depends_on = None

WIDENED = {
    "builds": ("created_at_ms", "finished_at_ms"),
    "jobs": ("queued_seq",),
    "attempts": ("started_at_ms", "finished_at_ms"),
    "steps": ("started_at_ms", "finished_at_ms", "log_length", "log_lost_bytes"),
    "agents": ("registered_at_ms", "last_seen_ms"),
    "blobs": ("size", "created_at_ms"),
    "artifacts": ("size", "created_at_ms"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in WIDENED.items():
        for column in columns:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
