"""Outgoing notifications: targets, the outbox of their events, and each try.

Revision ID: 0013_notifications
Revises: 0011_queue_wait

Only new tables: earlier rows stay as they were, and no event is made up for builds that ended
before it (there was no target to tell).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_notifications"
down_revision = "0012_repositories"
branch_labels = None
depends_on = None

# Milliseconds: BIGINT on PostgreSQL, SQLite's INTEGER (already 64-bit) there, as the models say.
_MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_targets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("repo", sa.String(), nullable=False),
        sa.Column("events_json", sa.String(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("link", sa.String(), nullable=False),
        sa.Column("created_at_ms", _MS, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("delivery_id", sa.String(), nullable=False, unique=True),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at_ms", _MS, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at_ms", _MS, nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("finished_at_ms", _MS, nullable=True),
    )
    op.create_index("ix_notify_outbox_target_id", "notify_outbox", ["target_id"])
    op.create_index("ix_notify_outbox_pending", "notify_outbox", ["state", "target_id", "id"])
    op.create_table(
        "notify_tries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", _MS, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(), nullable=False),
    )
    op.create_index("ix_notify_tries_outbox_id", "notify_tries", ["outbox_id"])


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
