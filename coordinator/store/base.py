"""What every store component shares: the engine and the one way to open a transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlmodel import Session


class Component:
    """A part of the store for one domain. Each public method is exactly one transaction and
    returns plain records; every method blocks and runs on the coordinator's store thread."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session
            session.commit()
