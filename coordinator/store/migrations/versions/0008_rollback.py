"""Rollbacks and commit times: what a build redeploys, when a deployed commit was made.

Revision ID: 0008_rollback
Revises: 0007_deployments

Every build before this revision was built, not redeployed, so `builds.redeploys` is NULL for
all of them. No agent reported a commit's time before, so earlier sources and deployments have
none (NULL): their lead time stays unknown rather than made up.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coordinator.store.coltypes import BigInt

revision = "0008_rollback"
down_revision = "0007_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: a batch copy of `builds` would trip the jobs' foreign key on SQLite.
    op.add_column("builds", sa.Column("redeploys", sa.Integer(), nullable=True))
    op.add_column("build_sources", sa.Column("git_committed_at_ms", BigInt, nullable=True))
    op.add_column("deployments", sa.Column("committed_at_ms", BigInt, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
