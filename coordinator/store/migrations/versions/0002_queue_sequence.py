"""Queue order from the database: a sequence (PostgreSQL) or a counter row (SQLite).

Revision ID: 0002_queue_sequence
Revises: 0001_baseline

Until now a job's queued_seq was the wall clock in nanoseconds when it was queued. Existing
positions are renumbered 1..N in their current order (ties broken by job id, as claims do), so
the queue keeps its order, and the sequence or counter continues at N + 1: every job queued from
now on comes after every job queued before the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_queue_sequence"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    # Read first, then write: an UPDATE ranking rows by the column it rewrites would see its own
    # earlier writes on SQLite.
    ordered = bind.execute(
        sa.text("SELECT id FROM jobs WHERE queued_seq IS NOT NULL ORDER BY queued_seq, id")
    ).scalars()
    positions = [{"id": job_id, "seq": seq} for seq, job_id in enumerate(ordered, start=1)]
    if positions:
        bind.execute(sa.text("UPDATE jobs SET queued_seq = :seq WHERE id = :id"), positions)
    last = len(positions)
    if bind.dialect.name == "postgresql":
        op.execute(sa.text(f"CREATE SEQUENCE job_queue_seq START WITH {int(last) + 1}"))
        return
    counter = op.create_table(
        "queue_counter",
        sa.Column("name", sa.String(), primary_key=True, nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
    )
    op.bulk_insert(counter, [{"name": "jobs", "value": int(last)}])


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
