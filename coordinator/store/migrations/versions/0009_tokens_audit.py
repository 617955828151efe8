"""Named client tokens with roles, the audit trail, and who started each build.

Revision ID: 0009_tokens_audit
Revises: 0008_rollback

Only new tables and one column: every build before this revision was started with the server's
own client token (the only token there was), so it is kept as started by `admin`. `tokens` and
`audit_events` start empty; the server's token is not stored (it is compared in memory).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_tokens_audit"
down_revision = "0008_rollback"
branch_labels = None
depends_on = None

# Milliseconds: BIGINT on PostgreSQL, SQLite's INTEGER (already 64-bit) there, as the models say.
_MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "builds", sa.Column("started_by", sa.String(), nullable=False, server_default="admin")
    )
    op.create_table(
        "tokens",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at_ms", _MS, nullable=False),
        sa.Column("last_used_ms", _MS, nullable=True),
    )
    op.create_index("ix_tokens_token_hash", "tokens", ["token_hash"], unique=True)
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at_ms", _MS, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
