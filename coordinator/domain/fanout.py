"""What many streams of the same thing share: one read for all who ask at once, a bound on
how many streams one client may hold, and turns taken in arrival order per key."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from typing import Generic, TypeVar

from coordinator.domain.errors import ExhaustedError

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """Runs one call per key at a time; whoever asks for a key already in flight shares its
    result (or its error). Nothing is kept once the call is done: this joins calls, it does not
    cache them. A call begun before something changed may not see the change, so a caller who
    knows of a change puts what it knows (a version) in the key."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Future[T]] = {}

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        future = self._calls.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._calls[key] = future
            future.add_done_callback(lambda done: self._done(key, done))
        # Shielded: one asker going away must not cancel the call the others wait for.
        return await asyncio.shield(future)

    def _done(self, key: Hashable, future: asyncio.Future[T]) -> None:
        if self._calls.get(key) is future:
            del self._calls[key]
        if not future.cancelled():
            future.exception()  # seen: every asker has it, or none is left

    def __len__(self) -> int:
        return len(self._calls)


class ClientStreams:
    """Counts each client's open watch and follow streams; one more than `limit` is refused."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    @contextlib.contextmanager
    def open(self, client: str) -> Iterator[None]:
        """Holds one stream of `client` for the block; ExhaustedError if it holds `limit`."""
        held = self._open.get(client, 0)
        if held >= self._limit:
            raise ExhaustedError(
                f"client {client} has {held} watch/follow streams open, the most one client may "
                f"hold (MAX_STREAMS_PER_CLIENT = {self._limit} streams); close some and retry"
            )
        self._open[client] = held + 1
        try:
            yield
        finally:
            left = self._open[client] - 1
            if left:
                self._open[client] = left
            else:
                del self._open[client]

    def held(self, client: str) -> int:
        return self._open.get(client, 0)


class InTurn:
    """Per key, one holder at a time, in the order they asked (asyncio's lock queues its
    waiters first come, first served). A key's lock is dropped with its last holder."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, left = self._locks[key]
            if left == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, left - 1)

    def __len__(self) -> int:
        return len(self._locks)
