"""What every store component shares: the engine and the one way to open a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from coordinator.domain.errors import DataLossError, StorageExhaustedError
from coordinator.domain.notify_records import EventRenderer

RENDERER = "conveyor.notify.renderer"
"""The key of a session's `info` that holds the webhook body renderer (`outbox.emit` reads it)."""

# What the drivers say when the database's disk is full or failing. SQLite: SQLITE_FULL and
# SQLITE_IOERR; PostgreSQL: SQLSTATE class 53 (insufficient resources: disk full, out of memory).
_SQLITE_EXHAUSTED = ("database or disk is full", "disk i/o error")
_PG_EXHAUSTED_CLASS = "53"
# A damaged database. SQLite: SQLITE_CORRUPT and SQLITE_NOTADB; PostgreSQL: SQLSTATE XX001
# (data_corrupted) and XX002 (index_corrupted).
_SQLITE_DAMAGED = ("database disk image is malformed", "file is not a database")
_PG_DAMAGED = ("XX001", "XX002")


def exhausted(error: DBAPIError) -> bool:
    """Whether a driver error means the storage is full or failing (not a bug, not bad data)."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(_PG_EXHAUSTED_CLASS)
    message = str(error.orig).lower()
    return any(text in message for text in _SQLITE_EXHAUSTED)


def damaged(error: DBAPIError) -> bool:
    """Whether a driver error means the stored database itself is damaged."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _PG_DAMAGED
    message = str(error.orig).lower()
    return any(text in message for text in _SQLITE_DAMAGED)


@contextmanager
def transaction(engine: Engine, info: dict[str, object] | None = None) -> Iterator[Session]:
    """One transaction, committed at the end; a full or failing disk rolls it back (nothing is
    half-recorded) and raises StorageExhaustedError, which callers retry. A damaged database is
    DataLossError naming it: no retry brings the rows back, an operator must restore them."""
    try:
        with Session(engine, expire_on_commit=False, info=info) as session:
            yield session
            session.commit()
    except DBAPIError as error:
        if exhausted(error):
            raise StorageExhaustedError(
                f"the database cannot store this now ({error.orig}); nothing was recorded, "
                "retry once space returns"
            ) from error
        if damaged(error):
            where = engine.url.render_as_string(hide_password=True)
            raise DataLossError(
                f"the coordinator's database {where} is damaged ({error.orig}): stop the "
                "coordinator and restore the database from a backup"
            ) from error
        raise


class Component:
    """A part of the store for one domain. Each public method is exactly one transaction and
    returns plain records; every method blocks and runs on the coordinator's store thread."""

    def __init__(self, engine: Engine, events: EventRenderer | None = None) -> None:
        self._engine = engine
        # What renders the bodies of the notification events its transactions write (outbox).
        self._info: dict[str, object] = {} if events is None else {RENDERER: events}

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with transaction(self._engine, self._info) as session:
            yield session
