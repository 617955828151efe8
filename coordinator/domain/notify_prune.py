"""Keeps the notification outbox from growing for ever: finished events leave after a retention.

A delivered or given-up event is only history once its last try is past (`notify list` counts
it); after `retention_s` it is deleted with its tries, in batches of NOTIFY_PRUNE_BATCH (one
transaction each), every NOTIFY_PRUNE_PERIOD_S. A pending event is never deleted, however old:
it is still owed to its target.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from coordinator.config import NOTIFY_PRUNE_BATCH, NOTIFY_PRUNE_PERIOD_S
from coordinator.domain.loops import every
from coordinator.domain.ports import NotificationStore
from coordinator.domain.runtime import Runtime

LOGGER = logging.getLogger(__name__)
# Batches one pass deletes at most; a larger backlog goes on at the next pass.
MAX_BATCHES_PER_PASS = 100


class OutboxPruner:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: NotificationStore,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._retention_ms = int(retention_s * 1000)
        self._clock = clock

    async def prune_forever(self, stop: asyncio.Event) -> None:
        """Prunes at once, then every NOTIFY_PRUNE_PERIOD_S until `stop` is set."""
        await every("notification outbox pruner", NOTIFY_PRUNE_PERIOD_S, self.prune_once, stop)

    async def prune_once(self) -> int:
        """Deletes the finished events past their retention now; how many."""
        cutoff_ms = int(self._clock() * 1000) - self._retention_ms
        deleted = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            batch = await self._runtime.db(self._store.prune, cutoff_ms, NOTIFY_PRUNE_BATCH)
            deleted += batch
            if batch < NOTIFY_PRUNE_BATCH:
                break
        if deleted:
            LOGGER.info("notification outbox: deleted %d finished events past retention", deleted)
        return deleted
