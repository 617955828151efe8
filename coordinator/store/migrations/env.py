"""Alembic's environment: runs the migrations on the connection coordinator.store.schema opened."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from coordinator.store.schema import include_object_for, target_metadata

if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")

connection: Connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    include_object=include_object_for(connection.dialect.name),
    compare_type=True,
    # SQLite cannot alter most of a table in place; batch mode copies it when a migration must.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
