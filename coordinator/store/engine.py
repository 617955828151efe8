"""The database engine: a SQLite file (pragmas for durability and concurrency) or PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Plain postgresql:// (what operators write) means psycopg 3, the driver Conveyor ships with;
# SQLAlchemy's own default for that scheme is psycopg2, which is not installed.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_DRIVER = "postgresql+psycopg://"


class DatabaseUrlError(ValueError):
    """The --db URL names a database Conveyor cannot use."""


class DatabaseFileError(ValueError):
    """The SQLite file is empty, not a database, or damaged: the operator's to restore."""


# What SQLite says of a file that is not a database, or one that is damaged.
_SQLITE_CORRUPT = ("file is not a database", "database disk image is malformed")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for any other database)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    return Path(parsed.database)


def check_sqlite_file(url: str) -> None:
    """Refuses an existing SQLite file of 0 bytes: a database once made is never empty, so
    something (a full disk, a bad copy, a truncation) lost it; starting on it would start an
    empty coordinator and hide that. For a coordinator's start, under its data dir lock: a
    Store opened beside another one making the file may see it empty for a moment."""
    path = sqlite_path(url)
    if path is not None and path.is_file() and path.stat().st_size == 0:
        raise DatabaseFileError(
            f"database {path} is empty (0 bytes): restore it from a backup, "
            "or delete it to start a coordinator with no builds"
        )


def corrupt_file_error(url: str, error: DBAPIError) -> DatabaseFileError | None:
    """A one-line DatabaseFileError if `error` says the SQLite file is garbage or damaged."""
    path = sqlite_path(url)
    message = str(error.orig)
    if path is None or not any(text in message.lower() for text in _SQLITE_CORRUPT):
        return None
    return DatabaseFileError(
        f"database {path} is not a usable SQLite database ({message}): restore it from a "
        "backup, or move it away to start a coordinator with no builds"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; NORMAL sync keeps committed data across a process
    # crash (kill -9), which is the failure the invariants are about.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") == "sqlite:":
            raise DatabaseUrlError("in-memory SQLite is not supported: give a file path")
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    for scheme in POSTGRES_SCHEMES:
        if url.startswith(scheme):
            url = POSTGRES_DRIVER + url.removeprefix(scheme)
    if not url.startswith("postgresql+"):
        raise DatabaseUrlError(
            f"unsupported database URL {url.split(':', 1)[0]}://...: "
            "use sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        )
    return create_engine(url, pool_pre_ping=True)
