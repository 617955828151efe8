"""Continuous delivery: environments, deployments, deploy locks and the jobs that take part.

Revision ID: 0007_deployments
Revises: 0006_build_context

Only new tables: every earlier row stays as it was, and builds submitted before this revision
simply have no deployment jobs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_deployments"
down_revision = "0006_build_context"
branch_labels = None
depends_on = None

# Milliseconds: BIGINT on PostgreSQL, SQLite's INTEGER (already 64-bit) there, as the models say.
_MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_jobs",
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), primary_key=True),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("lock_group", sa.String(), nullable=False),
        sa.Column("lock_order", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_delivery_jobs_active", "delivery_jobs", ["active"])
    op.create_index("ix_delivery_jobs_build_id", "delivery_jobs", ["build_id"])
    op.create_index("ix_delivery_jobs_lock_group", "delivery_jobs", ["lock_group"])
    op.create_table(
        "environments",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("url", sa.String(), nullable=False),
    )
    op.create_table(
        "deploy_locks",
        sa.Column("group_name", sa.String(), primary_key=True),
        sa.Column("job_id", sa.Integer(), nullable=False, unique=True),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("acquired_at_ms", _MS, nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("job_name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("commit", sa.String(), nullable=False),
        sa.Column("artifacts_json", sa.String(), nullable=False),
        sa.Column("approvals_json", sa.String(), nullable=False),
        sa.Column("redeploys", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("started_at_ms", _MS, nullable=False),
        sa.Column("finished_at_ms", _MS, nullable=False),
    )
    op.create_index("ix_deployments_environment", "deployments", ["environment"])
    op.create_index("ix_deployments_build_id", "deployments", ["build_id"])
    op.create_index("ix_deployments_current", "deployments", ["environment", "status", "id"])


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
