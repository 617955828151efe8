"""Each agent's own credential: a hash of it, kept with the agent.

Revision ID: 0004_agent_credentials
Revises: 0003_bigint_on_postgresql

An agent gets a credential at its first registration and presents it when it registers again
(after a crash, or a restart of the coordinator), so a live agent's name cannot be taken over by
another process. Agents stored before this revision have none (an empty hash): the next
registration under their name, once they are offline, issues one. Existing rows are kept as they
are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_agent_credentials"
down_revision = "0003_bigint_on_postgresql"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("credential_hash", sa.String(), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("Conveyor does not downgrade its schema: restore a backup instead")
