"""Wakes watchers of a build when its state or its logs change, and shares what they read.

All of it runs on the one event loop. A build's watchers share one snapshot of it
(`SharedSnapshots`): a change costs one store read however many watch, and a log append costs
none (followers read the new bytes from the log files).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from coordinator.config import (
    FOLLOWER_WAKE_SPACING_S,
    FOLLOWERS_WAKE_SPACING_MAX_S,
    FOLLOWERS_WAKE_SPACING_MIN_S,
)
from coordinator.domain.records import BuildRecord


class BuildNotifier:
    """Two counters per build: its state (rows in the store) and its logs (bytes in files)."""

    def __init__(
        self,
        *,
        spacing_per_follower_s: float = FOLLOWER_WAKE_SPACING_S,
        spacing_max_s: float = FOLLOWERS_WAKE_SPACING_MAX_S,
    ) -> None:
        self._states: dict[int, int] = {}
        self._logs: dict[int, int] = {}
        self._events: dict[int, asyncio.Event] = {}  # waiters for either kind of change
        # Waiters for state changes only (watchers without logs): a log append, which comes
        # once per chunk a step prints, does not wake them.
        self._state_events: dict[int, asyncio.Event] = {}
        self._per_follower_s = spacing_per_follower_s
        self._spacing_max_s = spacing_max_s
        self._log_waiters: dict[int, int] = {}  # followers of each build's logs waiting now
        # Builds whose followers were woken for new bytes less than their spacing ago, and
        # those of them with bytes appended since (woken when the spacing is over).
        self._spacing: dict[int, asyncio.TimerHandle] = {}
        self._held_back: set[int] = set()

    def version(self, build_id: int) -> int:
        """Moves on every change of either kind."""
        return self._states.get(build_id, 0) + self._logs.get(build_id, 0)

    def state_version(self, build_id: int) -> int:
        """Moves only when the build's stored state changed (a snapshot read then is stale)."""
        return self._states.get(build_id, 0)

    def changed(self, build_id: int) -> None:
        """The build's stored state changed (called after the commit). Followers hear of it at
        once, and of any bytes held back with it (they read all that is stored)."""
        self._states[build_id] = self.state_version(build_id) + 1
        self._held_back.discard(build_id)
        self._wake(self._state_events, build_id)
        self._wake(self._events, build_id)

    def appended(self, build_id: int) -> None:
        """Log bytes of the build were stored; its state did not change.

        The first bytes after a quiet spell wake the build's followers at once. With many
        followers, the next wake waits a spacing that grows with their number (each wake costs
        a message to each of them), so a step printing without pause costs the same however
        many follow it: they get its bytes in fewer, larger messages, a little later.
        """
        if build_id in self._spacing:
            self._held_back.add(build_id)
            return
        self._wake_followers(build_id)

    def _wake_followers(self, build_id: int) -> None:
        self._logs[build_id] = self._logs.get(build_id, 0) + 1
        self._wake(self._events, build_id)
        followers = self._log_waiters.get(build_id, 0)
        spacing = min(self._spacing_max_s, followers * self._per_follower_s)
        if spacing >= FOLLOWERS_WAKE_SPACING_MIN_S:
            loop = asyncio.get_running_loop()
            self._spacing[build_id] = loop.call_later(spacing, self._spaced, build_id)

    def _spaced(self, build_id: int) -> None:
        del self._spacing[build_id]
        if build_id in self._held_back:
            self._held_back.discard(build_id)
            self._wake_followers(build_id)

    @staticmethod
    def _wake(events: dict[int, asyncio.Event], build_id: int) -> None:
        event = events.pop(build_id, None)
        if event is not None:
            event.set()

    async def wait(
        self, build_id: int, seen_version: int, timeout_s: float, *, logs: bool = True
    ) -> None:
        """Returns once the build's version differs from `seen_version`, or after the timeout.

        Without `logs`, `seen_version` is a state_version and only a state change counts.
        """
        current = self.version(build_id) if logs else self.state_version(build_id)
        if current != seen_version:
            return
        events = self._events if logs else self._state_events
        event = events.setdefault(build_id, asyncio.Event())
        if logs:
            self._log_waiters[build_id] = self._log_waiters.get(build_id, 0) + 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        finally:
            if logs:
                self._log_waiters[build_id] -= 1
                if not self._log_waiters[build_id]:
                    del self._log_waiters[build_id]


@dataclass
class _Entry:
    watchers: int = 0
    record: BuildRecord | None = None
    version: int = -1  # the state version the record was read at
    read_at: float = 0.0
    reading: asyncio.Future[BuildRecord] | None = None


class SharedSnapshots:
    """The latest snapshot of each watched build, read once per change and shared.

    A watcher asking for the build gets a snapshot read after its question, as if it had read
    the store itself; the askers of one moment share one read, and a burst of changes during a
    read costs one more read, not one per change. Reads take turns (one in the store thread's
    queue at a time), so however many builds are watched, a request from anyone else waits for
    at most one of them. A snapshot older than `max_age_s` is read again even without a change:
    another coordinator sharing the database, or an agent going offline, does not notify here.
    """

    def __init__(
        self,
        read: Callable[[int], Awaitable[BuildRecord]],
        notifier: BuildNotifier,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._notifier = notifier
        self._max_age_s = max_age_s
        self._clock = clock
        self._entries: dict[int, _Entry] = {}
        self._turn = asyncio.Semaphore(1)

    @contextlib.contextmanager
    def watching(self, build_id: int) -> Iterator[None]:
        """Keeps the build's snapshot while the caller watches it (dropped after the last)."""
        entry = self._entries.setdefault(build_id, _Entry())
        entry.watchers += 1
        try:
            yield
        finally:
            entry.watchers -= 1
            if entry.watchers == 0 and self._entries.get(build_id) is entry:
                del self._entries[build_id]

    async def get(self, build_id: int) -> BuildRecord:
        """A snapshot at least as new as the build's state when called (NotFoundError, etc.
        as the read raises them)."""
        wanted = self._notifier.state_version(build_id)
        entry = self._entries.get(build_id) or _Entry()  # unwatched: read, keep nothing
        while True:
            record = entry.record
            fresh = self._clock() - entry.read_at < self._max_age_s
            if record is not None and entry.version >= wanted and fresh:
                return record
            if entry.reading is None:
                entry.reading = asyncio.ensure_future(self._read_into(build_id, entry))
                entry.reading.add_done_callback(_retrieve)
            # Shielded: one watcher going away must not cancel the read the others wait for.
            record = await asyncio.shield(entry.reading)
            if entry.version >= wanted:
                return record

    async def _read_into(self, build_id: int, entry: _Entry) -> BuildRecord:
        try:
            async with self._turn:
                version = self._notifier.state_version(build_id)
                record = await self._read(build_id)
            entry.record, entry.version, entry.read_at = record, version, self._clock()
            return record
        finally:
            entry.reading = None


def _retrieve(future: asyncio.Future[BuildRecord]) -> None:
    """Marks a failed shared read's error as seen: every waiter has it, or none is left."""
    if not future.cancelled():
        future.exception()
