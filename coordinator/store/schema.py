"""Brings a database to the schema this code needs, by Alembic migrations only, or refuses it.

`migrate(engine)` is called once per Store before anything else touches the database:

- an empty database gets every migration;
- a database made before migrations existed (no alembic_version, but the baseline's tables and
  columns) is stamped as the baseline and upgraded in place, keeping its rows;
- an unversioned database that is not the baseline, or one stamped with a revision this code
  does not know (a newer Conveyor's), is refused with a SchemaError that says what to do.

The whole check and upgrade is one transaction under a lock (an advisory lock on PostgreSQL, the
write lock on SQLite), so coordinators starting together on one database migrate it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import SchemaItem
from sqlmodel import SQLModel

# Alembic logs each of its plugins, and every step it takes, at INFO: set before it is first
# imported, since the plugins log then. The lines migrate() logs say what an operator needs.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

LOGGER = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001_baseline"
# Any constant works: it only has to be the same in every coordinator process.
MIGRATION_LOCK_KEY = 0x436F6E7665796F72  # "Conveyor"

# What create_all made before migrations existed (the code up to commit ca625a3). Frozen here:
# the models move on, but this is how an unversioned database is recognised, forever.
BASELINE_COLUMNS: dict[str, frozenset[str]] = {
    "builds": frozenset(
        [
            "id",
            "name",
            "status",
            "pipeline_yaml",
            "source_name",
            "env_json",
            "cancel_requested",
            "created_at_ms",
            "finished_at_ms",
        ]
    ),
    "jobs": frozenset(
        [
            "id",
            "build_id",
            "position",
            "name",
            "status",
            "needs_json",
            "labels_json",
            "spec_json",
            "queued_seq",
            "reason",
            "message",
            "exit_code",
            "attempt_count",
            "retry_base",
            "unstarted_requeues",
        ]
    ),
    "attempts": frozenset(
        [
            "id",
            "job_id",
            "build_id",
            "number",
            "agent_id",
            "lease_token",
            "outcome",
            "reason",
            "message",
            "exit_code",
            "cancel_requested",
            "started_at_ms",
            "finished_at_ms",
        ]
    ),
    "steps": frozenset(
        [
            "id",
            "attempt_id",
            "idx",
            "name",
            "status",
            "exit_code",
            "started_at_ms",
            "finished_at_ms",
            "log_length",
            "log_lost_bytes",
        ]
    ),
    "agents": frozenset(
        [
            "id",
            "name",
            "labels_json",
            "capacity",
            "session_hash",
            "mode",
            "registered_at_ms",
            "last_seen_ms",
        ]
    ),
    "blobs": frozenset(["sha256", "size", "created_at_ms"]),
    "artifacts": frozenset(
        [
            "id",
            "build_id",
            "job_name",
            "attempt_id",
            "attempt_number",
            "name",
            "sha256",
            "size",
            "mode",
            "created_at_ms",
        ]
    ),
    "build_sources": frozenset(
        ["build_id", "snapshot_sha256", "git_url", "git_ref", "git_commit", "collected"]
    ),
}


class SchemaError(RuntimeError):
    """The database cannot be brought to this code's schema; the message says why and what to do."""


def target_metadata() -> MetaData:
    """Every table the models declare (imported here so that none is missed)."""
    from coordinator.store import (  # noqa: F401
        access_tables,
        artifact_tables,
        delivery_tables,
        notify_tables,
        queue_order,
        repos,
        secrets,
        tables,
    )

    return SQLModel.metadata


def include_object_for(dialect: str) -> Callable[..., bool]:
    """Alembic's filter for one dialect: a table whose info names dialects exists only on those."""

    def include(item: SchemaItem, name: str | None, kind: str, *_: object) -> bool:
        del name
        dialects = item.info.get("dialects") if kind == "table" else None
        return dialects is None or dialect in dialects

    return include


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, built in code: the migrations ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def migrate(engine: Engine, target: str = "head") -> None:
    """Upgrades the database to `target` (tests name earlier revisions) or raises SchemaError."""
    try:
        connection = engine.connect()
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise SchemaError(f"cannot open database {_where(engine)}: {reason}") from None
    with connection:
        _lock(connection)
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        current = MigrationContext.configure(connection).get_current_heads()
        known = {revision.revision for revision in script.walk_revisions()}
        unknown = sorted(set(current) - known)
        if unknown:
            raise SchemaError(
                f"database {_where(engine)} was made by a newer Conveyor (revision "
                f"{', '.join(unknown)}); upgrade Conveyor or use another data dir or database"
            )
        if not current and _has_tables(connection):
            _check_baseline(connection, engine)
            command.stamp(config, BASELINE)
            current = (BASELINE,)
            LOGGER.info(
                "database %s predates schema versions: taken as %s", _where(engine), BASELINE
            )
        if set(current) != {script.get_current_head()} or target != "head":
            command.upgrade(config, target)
            LOGGER.info(
                "database %s upgraded from %s to %s",
                _where(engine),
                ", ".join(current) or "nothing",
                ", ".join(MigrationContext.configure(connection).get_current_heads()),
            )
        connection.commit()


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # The driver would open the transaction only at the first write; take the lock now.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _has_tables(connection: Connection) -> bool:
    return bool(inspect(connection).get_table_names())


def _check_baseline(connection: Connection, engine: Engine) -> None:
    """An unversioned database must be exactly what the pre-migration code made."""
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    missing_tables = sorted(set(BASELINE_COLUMNS) - present)
    if len(missing_tables) == len(BASELINE_COLUMNS):
        found = ", ".join(sorted(present)[:5])
        raise SchemaError(
            f"database {_where(engine)} holds tables ({found}) but no Conveyor schema: "
            "it is not a Conveyor database; give an empty database or another data dir"
        )
    problems = [f"table {name} is missing" for name in missing_tables]
    for table in sorted(set(BASELINE_COLUMNS) & present):
        columns = {column["name"] for column in inspector.get_columns(table)}
        problems += [
            f"{table}.{column} is missing" for column in sorted(BASELINE_COLUMNS[table] - columns)
        ]
    if problems:
        raise SchemaError(
            f"database {_where(engine)} has no schema version and is not the first versioned "
            f"schema ({'; '.join(problems)}): it was made by an early development build that "
            "cannot be upgraded; start with another data dir or an empty database"
        )


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
