"""Watched repositories, and what started a build from one (its trigger) or kept it from running.

Revision ID: 0012_repositories
Revises: 0011_queue_wait

A new table and nullable columns: builds from before have no trigger (null) and no error.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_repositories"
down_revision = "0011_queue_wait"
branch_labels = None
depends_on = None

# Milliseconds: BIGINT on PostgreSQL, SQLite's INTEGER (already 64-bit) there, as the models say.
_MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "repos",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("pipeline_path", sa.String(), nullable=False),
        sa.Column("poll_s", sa.Float(), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
        sa.Column("heads_json", sa.String(), nullable=False),
        sa.Column("schedules_json", sa.String(), nullable=False),
        sa.Column("last_check_ms", _MS, nullable=True),
        sa.Column("last_error", sa.String(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_check_ms", _MS, nullable=False),
        sa.Column("created_at_ms", _MS, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
    )
    op.create_index("ix_repos_next_check_ms", "repos", ["next_check_ms"])
    # Plain ADD COLUMNs: a batch copy of `builds` would trip the jobs' foreign key on SQLite.
    for name, kind in (
        ("trigger_repo", sa.String()),
        ("trigger_commit", sa.String()),
        ("trigger_committed_at_ms", _MS),
        ("trigger_message", sa.String()),
        ("trigger_author", sa.String()),
        ("error", sa.String()),
    ):
        op.add_column("builds", sa.Column(name, kind, nullable=True))
    op.create_index("ix_builds_trigger_repo", "builds", ["trigger_repo", "branch"])


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
