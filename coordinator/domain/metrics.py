"""What the domain tells about itself as it works, for the operator's metrics: a port, so the
domain never knows which metrics library (if any) listens; and the farm's counts, read from the
store when someone looks (a scrape), not kept in memory."""

from __future__ import annotations

from typing import Protocol

from coordinator.config import METRICS_MAX_LABEL_SETS
from coordinator.domain.ports import StatsStore
from coordinator.domain.records import FarmCounts
from coordinator.domain.runtime import Runtime


class Metrics(Protocol):
    """Events worth counting; each call is cheap and never fails the work it describes."""

    def claimed(self, seconds: float, count: int) -> None:
        """A claim that handed out `count` attempts took `seconds` (store round trip)."""

    def queue_waited(self, seconds: float) -> None:
        """A job was handed to an agent `seconds` after it entered the queue."""

    def attempt_ended(self, outcome: str, seconds: float | None) -> None:
        """An attempt ended with `outcome` after running `seconds` (None: never started)."""

    def log_bytes(self, count: int) -> None:
        """Log bytes received from agents and stored."""

    def lease_expired(self) -> None:
        """A lease ran out without renewal; its attempt was ended `agent_lost`."""

    def agent_request(self, call: str, transport: str) -> None:
        """An agent's `call` (e.g. "StartStep") arrived as a unary call or on its session
        stream (`transport`: "unary" or "stream")."""


class NoMetrics:
    """Metrics nobody collects (unit tests, and coordinators built without an HTTP edge)."""

    def claimed(self, seconds: float, count: int) -> None:
        pass

    def queue_waited(self, seconds: float) -> None:
        pass

    def attempt_ended(self, outcome: str, seconds: float | None) -> None:
        pass

    def log_bytes(self, count: int) -> None:
        pass

    def lease_expired(self) -> None:
        pass

    def agent_request(self, call: str, transport: str) -> None:
        pass


class Stats:
    """The farm's counts and whether the store answers, for `/metrics` and `/readyz`."""

    def __init__(self, *, runtime: Runtime, store: StatsStore) -> None:
        self._runtime = runtime
        self._store = store

    async def counts(self) -> FarmCounts:
        return await self._runtime.db(self._store.counts, METRICS_MAX_LABEL_SETS)

    async def ready(self) -> None:
        """Raises (the store's own error) unless the store answers."""
        await self._runtime.db(self._store.ping)
