"""Prepared statements: what the driver returns straight is what SQLAlchemy would have returned,
on SQLite and on PostgreSQL alike, and a driver's error is still SQLAlchemy's error."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from coordinator.store import Store
from coordinator.store.prepared import Prepared
from coordinator.store.tables import AgentRow

AGENTS = AgentRow.__table__  # type: ignore[attr-defined]

_BY_NAME = select(AGENTS.c.id, AGENTS.c.name, AGENTS.c.capacity, AGENTS.c.labels_json).where(
    AGENTS.c.name == bindparam("p_name")
)
_RENAME = (
    update(AGENTS)
    .where(AGENTS.c.id == bindparam("p_id"))
    .values(name=bindparam("p_new"))
    .returning(AGENTS.c.id, AGENTS.c.name.label("renamed"))
)


def _both(store: Store, statement: Any, params: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    with Session(store.engine) as session:
        prepared = [tuple(row) for row in Prepared(statement).run(session, params)]
        ordinary = [tuple(row) for row in session.execute(statement, params)]
        session.rollback()
    return prepared, ordinary


def test_rows_are_what_sqlalchemy_reads(store: Store) -> None:
    agent = store.agents.register(name="a", labels={"os": "linux"}, capacity=3, session_hash="")
    prepared, ordinary = _both(store, _BY_NAME, {"p_name": "a"})
    assert prepared == ordinary == [(agent.id, "a", 3, '{"os": "linux"}')]
    with Session(store.engine) as session:
        row = Prepared(_BY_NAME).run(session, {"p_name": "a"}).one()
        assert (row.id, row.name, row.capacity) == (agent.id, "a", 3)  # by column name too
        assert Prepared(_BY_NAME).run(session, {"p_name": "nobody"}).one_or_none() is None


def test_literals_in_the_statement_are_bound_with_the_callers_values(store: Store) -> None:
    store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    store.agents.register(name="b", labels={}, capacity=2, session_hash="")
    statement = select(AGENTS.c.name).where(
        AGENTS.c.capacity == 2, AGENTS.c.name != bindparam("p_not")
    )
    prepared, ordinary = _both(store, statement, {"p_not": "a"})
    assert prepared == ordinary == [("b",)]


def test_booleans_come_back_as_booleans(store: Store) -> None:
    store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    statement = select(AGENTS.c.name, (AGENTS.c.capacity == bindparam("p_cap")).label("full"))
    with Session(store.engine) as session:
        [row] = Prepared(statement).run(session, {"p_cap": 1}).all()
    assert row.full is True


def test_a_change_counts_its_rows_and_returns_what_it_was_asked_for(store: Store) -> None:
    agent = store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    with Session(store.engine) as session:
        changed = Prepared(_RENAME).run(session, {"p_id": agent.id, "p_new": "b"})
        assert changed.rowcount == 1
        assert [(row.id, row.renamed) for row in changed] == [(agent.id, "b")]
        missing = Prepared(_RENAME).run(session, {"p_id": agent.id + 99, "p_new": "c"})
        assert (missing.rowcount, missing.all()) == (0, [])
        session.commit()
    assert store.agents.find("b") is not None  # in the session's transaction, committed with it


def test_a_driver_error_is_sqlalchemys_error_and_the_transaction_rolls_back(store: Store) -> None:
    store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    duplicate = insert(AGENTS).values(
        name=bindparam("p_name"), labels_json="{}", capacity=1, mode="active",
        session_hash="", registered_at_ms=0, last_seen_ms=0,
    )  # fmt: skip
    with Session(store.engine) as session, pytest.raises(IntegrityError):
        Prepared(duplicate).run(session, {"p_name": "a"})
    assert [agent.name for agent in store.agents.list()] == ["a"]


def test_with_a_cursor_listener_statements_go_the_ordinary_way(store: Store) -> None:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    store.agents.register(name="a", labels={}, capacity=1, session_hash="")
    event.listen(store.engine, "before_cursor_execute", before)
    try:
        with Session(store.engine) as session:
            rows = Prepared(_BY_NAME).run(session, {"p_name": "a"}).all()
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
    assert [row.name for row in rows] == ["a"]
    assert any("FROM agents" in statement for statement in seen)


def test_statements_with_expanding_parameters_are_refused(store: Store) -> None:
    statement = select(AGENTS.c.id).where(AGENTS.c.mode.in_(bindparam("p_modes", expanding=True)))
    with Session(store.engine) as session, pytest.raises(TypeError, match="expanding"):
        Prepared(statement).run(session, {"p_modes": ["active"]})
