"""The database engine: a SQLite file (pragmas for durability and concurrency) or PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Plain postgresql:// (what operators write) means psycopg 3, the driver Conveyor ships with;
# SQLAlchemy's own default for that scheme is psycopg2, which is not installed.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
POSTGRES_DRIVER = "postgresql+psycopg://"


class DatabaseUrlError(ValueError):
    """The --db URL names a database Conveyor cannot use."""


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
