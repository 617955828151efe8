"""Database URLs: what `--db` accepts and which driver it gets."""

from __future__ import annotations

import pytest

from coordinator.store.engine import DatabaseUrlError, make_engine


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_use_psycopg_3(scheme: str) -> None:
    engine = make_engine(f"{scheme}://conveyor@127.0.0.1:5432/farm")  # connects only when used
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert (engine.url.host, engine.url.port, engine.url.database) == (
            "127.0.0.1",
            5432,
            "farm",
        )
    finally:
        engine.dispose()


def test_other_databases_are_refused_by_name() -> None:
    with pytest.raises(DatabaseUrlError, match=r"unsupported database URL mysql://\.\.\."):
        make_engine("mysql://root@127.0.0.1/farm")
