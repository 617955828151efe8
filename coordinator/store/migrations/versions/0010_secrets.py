"""Secrets: encrypted values by name and scope (`conveyor secret set NAME [--env ENV]`).

Revision ID: 0010_secrets
Revises: 0009_tokens_audit

Only a new table: earlier rows stay as they were, and jobs stored before it name no secrets.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_secrets"
down_revision = "0009_tokens_audit"
branch_labels = None
depends_on = None

# Milliseconds: BIGINT on PostgreSQL, SQLite's INTEGER (already 64-bit) there, as the models say.
_MS = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at_ms", _MS, nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
