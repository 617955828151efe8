"""What a build was started by and on (event, branch, tag), and approval gates' decisions.

Revision ID: 0006_build_context
Revises: 0005_collected_builds

Every build before this revision came from `conveyor run`, so it is kept with event `manual`
and neither branch nor tag, which is what it was. Jobs get the columns that make one an approval
gate, empty for every earlier job; `approvals` starts empty: no gate existed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coordinator.store.coltypes import BigInt

revision = "0006_build_context"
down_revision = "0005_collected_builds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch copy of `builds` would trip the jobs' foreign key on SQLite.
    op.add_column(
        "builds", sa.Column("event", sa.String(), nullable=False, server_default="manual")
    )
    op.add_column("builds", sa.Column("branch", sa.String(), nullable=True))
    op.add_column("builds", sa.Column("tag", sa.String(), nullable=True))
    op.add_column("jobs", sa.Column("approval_json", sa.String(), nullable=True))
    op.add_column("jobs", sa.Column("approval_deadline_ms", BigInt, nullable=True))
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True, nullable=False),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=False),
        sa.Column("decided_at_ms", BigInt, nullable=False),
        sa.Column("comment", sa.String(), nullable=False),
    )
    op.create_index("ix_approvals_job_id", "approvals", ["job_id"])


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
