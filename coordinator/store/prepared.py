"""Hot statements run straight on the driver: compiled once per dialect, then executed on the
transaction's own DBAPI cursor.

SQLAlchemy spends about 30-50 µs of Python on each execution of even a cached statement
(parameter construction, execution context, result metadata); SQLite runs the statements of a
job's transitions in a fraction of that. The statements every job runs are built once at import
already; `Prepared` also compiles them once per dialect and then only binds values and reads
rows. PostgreSQL's driver prepares a statement on the server once it has run a few times.

What stays SQLAlchemy's: the transaction (the session's connection is used, so a prepared
statement and an ORM one see the same uncommitted rows), the types' bind and result conversions
(looked up once), and its errors (a driver error is raised as the DBAPIError SQLAlchemy would
raise, so a full disk is still StorageExhaustedError). With a cursor listener attached to the
engine (tracing, the statement budget tests), statements go the ordinary way, so that it sees
every one of them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Convert = Callable[[Any], Any]


class Rows:
    """What a prepared statement returned: its rows (named tuples) and how many rows it changed;
    read as SQLAlchemy's Result is."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self._rows)}")
        return self._rows[0]

    def one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise LookupError(f"expected at most one row, got {len(self._rows)}")
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


@dataclass(frozen=True)
class _Form:
    """A statement as one dialect's driver runs it."""

    sql: str
    positions: tuple[str, ...] | None  # parameter names in order; None: the driver takes names
    defaults: Mapping[str, Any]  # values the statement itself holds (literals in its clauses)
    binders: Mapping[str, Convert]
    row: Callable[..., tuple[Any, ...]] | None  # None: the statement returns no rows
    readers: tuple[Convert | None, ...]


class Prepared:
    """A Core statement built once, run on a session's connection without SQLAlchemy's
    per-execution work. Statements with expanding (IN-list) parameters are not for this."""

    def __init__(self, statement: Executable) -> None:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"not a Core statement: {statement!r}")
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def run(self, session: Session, params: Mapping[str, Any] | None = None) -> Rows:
        connection = session.connection()
        engine = connection.engine
        if engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute:
            result = session.execute(self.statement, dict(params or {}))
            rows = list(result.all()) if result.returns_rows else []  # type: ignore[attr-defined]
            return Rows(rows, getattr(result, "rowcount", -1))
        form = self._forms.get(engine.dialect.name)
        if form is None:
            form = self._forms[engine.dialect.name] = _compile(self.statement, engine.dialect)
        values = _bind(form, params or {})
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(form.sql, values)
            rows = [] if form.row is None else _read(form, cursor.fetchall())
            return Rows(rows, cursor.rowcount)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DBAPIError.instance(
                form.sql, values, error, engine.dialect.loaded_dbapi.Error, dialect=engine.dialect
            ) from error
        finally:
            cursor.close()


def _compile(statement: ClauseElement, dialect: Dialect) -> _Form:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        raise TypeError("a statement with expanding parameters cannot be prepared")
    binds = compiled.binds
    defaults = {
        name: bind.effective_value
        for name, bind in binds.items()
        if not bind.required and bind.callable is None
    }
    binders = {}
    for name, bind in binds.items():
        binder = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if binder is not None:
            binders[name] = binder
    row: Callable[..., tuple[Any, ...]] | None = None
    readers: tuple[Convert | None, ...] = ()
    columns = list(getattr(statement, "exported_columns", ()))
    if columns:
        names = [str(column.key) for column in columns]
        row = namedtuple("Row", names, rename=True)._make  # type: ignore[attr-defined]
        readers = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
    positions = None if compiled.positiontup is None else tuple(compiled.positiontup)
    escaped = compiled.escaped_bind_names
    if escaped:
        raise TypeError(f"bind names the driver cannot take as they are: {sorted(escaped)}")
    return _Form(compiled.string, positions, defaults, binders, row, readers)


def _bind(form: _Form, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
    values = {**form.defaults, **params} if form.defaults else dict(params)
    for name, binder in form.binders.items():
        if name in values:
            values[name] = binder(values[name])
    if form.positions is None:
        return values
    return tuple(values[name] for name in form.positions)


def _read(form: _Form, fetched: list[Any]) -> list[Any]:
    make = form.row
    assert make is not None
    if not any(form.readers):
        return [make(raw) for raw in fetched]
    readers = form.readers
    return [
        make(
            [
                value if read is None else read(value)
                for read, value in zip(readers, raw, strict=True)
            ]
        )
        for raw in fetched
    ]


class PreparedInsert:
    """A prepared INSERT of one row of `table` that returns its `id`: every other column is
    bound, and one the caller leaves out gets the column's own default, as an ORM row would."""

    def __init__(self, table: Table) -> None:
        columns = [column for column in table.c if column.name != "id"]
        self._defaults: dict[str, Any] = {}
        for column in columns:
            default = column.default
            if default is not None and not default.is_scalar:
                raise TypeError(f"{table.name}.{column.name}: a default computed per row")
            value = None if default is None else default.arg  # type: ignore[attr-defined]
            self._defaults[f"p_{column.name}"] = value
        values: dict[str, Any] = {column.name: bindparam(f"p_{column.name}") for column in columns}
        self._statement = Prepared(insert(table).values(values).returning(table.c.id))

    def add(self, session: Session, values: Mapping[str, Any]) -> int:
        """Inserts the row of `values` (by column name); its new id."""
        bound = dict(self._defaults)
        for name, value in values.items():
            key = f"p_{name}"
            if key not in bound:
                raise KeyError(f"no column {name!r}")
            bound[key] = value
        return int(self._statement.run(session, bound).scalar_one())
