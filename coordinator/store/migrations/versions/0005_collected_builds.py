"""Builds remember that gc dropped their source or artifacts.

Revision ID: 0005_collected_builds
Revises: 0004_agent_credentials

A retry of such a build used to be accepted and then fail its jobs for want of what gc removed,
turning a succeeded build into a failed one; with this mark it is refused up front. Builds whose
source was already collected before this revision are marked from `build_sources.collected`;
artifacts collected before it left no trace, so those builds stay unmarked, as they were.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_collected_builds"
down_revision = "0004_agent_credentials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch copy of `builds` would trip the jobs' foreign key on SQLite.
    op.add_column(
        "builds", sa.Column("collected", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(
        sa.text(
            "UPDATE builds SET collected = :yes"
            " WHERE id IN (SELECT build_id FROM build_sources WHERE collected = :yes)"
        ).bindparams(yes=True)
    )


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
