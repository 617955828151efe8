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

# Correlated rather than UPDATE ... FROM, so that one statement runs on SQLite and PostgreSQL.
RENUMBER = """
UPDATE jobs SET queued_seq = (
    SELECT ranked.position FROM (
        SELECT id, ROW_NUMBER() OVER (ORDER BY queued_seq, id) AS position
        FROM jobs WHERE queued_seq IS NOT NULL
    ) AS ranked
    WHERE ranked.id = jobs.id
)
WHERE queued_seq IS NOT NULL
"""


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(RENUMBER))
    last = bind.execute(sa.text("SELECT COALESCE(MAX(queued_seq), 0) FROM jobs")).scalar_one()
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
