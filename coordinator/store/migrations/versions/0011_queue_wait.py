"""When each job entered the queue, so its wait until an agent took it can be measured.

Revision ID: 0011_queue_wait
Revises: 0010_secrets

Jobs queued before this revision have no time (NULL): a claim of one of them measures no wait
rather than a made-up one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coordinator.store.coltypes import BigInt

revision = "0011_queue_wait"
down_revision = "0010_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of `jobs` would trip the attempts' foreign key on SQLite.
    op.add_column("jobs", sa.Column("queued_at_ms", BigInt, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
