"""Fixtures the store's tests share: a store on the session's backend, and an agent in it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coordinator.store import Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


@pytest.fixture
def agent(store: Store) -> int:
    """An agent with no labels and room for eight attempts."""
    return store.agents.register(name="a", labels={}, capacity=8, session_hash="").id
