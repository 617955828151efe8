"""The outbox's old events leave: delivered and given-up ones past their retention are deleted
with their tries (on the session's backend), pending ones never; the pruner deletes a backlog
in batches, and the coordinator runs it among its background loops."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.config import NOTIFY_RETENTION_S, CoordinatorConfig
from coordinator.domain import notify_prune
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.notify_prune import OutboxPruner
from coordinator.domain.notify_records import Delivery, TryOutcome
from coordinator.domain.runtime import Runtime
from coordinator.edge.outbound import event_body
from coordinator.storage.blobs import BlobStore
from coordinator.storage.logs import LogStore
from coordinator.store import Store
from tests.unit.coordinator.fakes import sealer
from tests.unit.coordinator.test_notify_store import PARKED, webhook
from tests.unit.coordinator.test_store import submit

DAY_MS = 86_400_000
NOW_MS = 1_800_000_000_000
OLD_MS = NOW_MS - int(NOTIFY_RETENTION_S * 1000) - DAY_MS
RECENT_MS = NOW_MS - DAY_MS


@pytest.fixture
def outbox_store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url, events=event_body)
    yield opened
    opened.close()


def events(store: Store, count: int) -> list[Delivery]:
    """`count` pending events, each of a target of its own (so all are due at once)."""
    for index in range(count):
        webhook(store, f"http://receiver.example/{index}")
    store.builds.cancel(submit(store, PARKED))
    due = store.notifications.claim(2**62, count, until=2**62)
    assert len(due) == count
    return sorted(due, key=lambda d: d.id)


def finish(store: Store, delivery: Delivery, at_ms: int, *, delivered: bool = True) -> None:
    """Finishes `delivery` at `at_ms`: delivered, or given up after a failed last try."""
    store.notifications.record_try(delivery.id, TryOutcome(at_ms - 1, 500, "down"), at_ms)
    status = 200 if delivered else 503
    store.notifications.record_try(delivery.id, TryOutcome(at_ms, status, ""), None)


def counts(store: Store) -> tuple[int, int, int]:
    """Delivered, pending and failed events over every target."""
    targets = store.notifications.targets()
    return (
        sum(t.delivered for t in targets),
        sum(t.pending for t in targets),
        sum(t.failed for t in targets),
    )


def test_finished_events_past_retention_are_deleted_with_their_tries(outbox_store: Store) -> None:
    store = outbox_store
    old_sent, old_failed, recent, waiting = events(store, 4)
    finish(store, old_sent, OLD_MS)
    finish(store, old_failed, OLD_MS, delivered=False)
    finish(store, recent, RECENT_MS)
    store.notifications.record_try(waiting.id, TryOutcome(OLD_MS, 500, "down"), NOW_MS)
    assert counts(store) == (2, 1, 1)
    cutoff = NOW_MS - int(NOTIFY_RETENTION_S * 1000)
    assert store.notifications.prune(cutoff, 100) == 2
    assert counts(store) == (1, 1, 0)
    assert store.notifications.tries(old_sent.id) == []
    assert store.notifications.tries(old_failed.id) == []
    assert len(store.notifications.tries(recent.id)) == 2
    # An event still owed to its target stays, however old its last try.
    assert store.notifications.tries(waiting.id) == [TryOutcome(OLD_MS, 500, "down")]
    assert store.notifications.prune(cutoff, 100) == 0


def test_a_prune_deletes_at_most_its_limit_oldest_first(outbox_store: Store) -> None:
    store = outbox_store
    deliveries = events(store, 3)
    for delivery in deliveries:
        finish(store, delivery, OLD_MS)
    assert store.notifications.prune(NOW_MS, 2) == 2
    assert [len(store.notifications.tries(d.id)) for d in deliveries] == [0, 0, 2]


def test_the_pruner_deletes_a_backlog_batch_after_batch(
    outbox_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = outbox_store
    monkeypatch.setattr(notify_prune, "NOTIFY_PRUNE_BATCH", 2)
    deliveries = events(store, 6)
    for delivery in deliveries[:5]:
        finish(store, delivery, OLD_MS)
    finish(store, deliveries[5], RECENT_MS)
    runtime = Runtime()
    try:
        pruner = OutboxPruner(
            runtime=runtime,
            store=store.notifications,
            retention_s=NOTIFY_RETENTION_S,
            clock=lambda: NOW_MS / 1000,
        )
        assert asyncio.run(pruner.prune_once()) == 5
        assert asyncio.run(pruner.prune_once()) == 0
    finally:
        runtime.close()
    assert counts(store) == (1, 0, 0)


def test_the_coordinator_prunes_the_outbox_in_the_background(
    database_url: str, tmp_path: Path
) -> None:
    """A real coordinator's upkeep: the first pass runs as the loops start."""
    store = Store(database_url, events=event_body)
    old, recent = events(store, 2)
    finish(store, old, 1_000)  # long past any retention
    finish(store, recent, 2**52)  # in the far future: inside it
    config = CoordinatorConfig(data_dir=tmp_path, agent_token="a", client_token="c")
    coordinator = Coordinator(
        config,
        store=store,
        logs=LogStore(tmp_path / "logs"),
        blobs=BlobStore(tmp_path / "blobs"),
        sealer=sealer(),
    )

    async def upkeep_until_pruned() -> None:
        stop = asyncio.Event()
        loops = asyncio.ensure_future(coordinator.reap_forever(stop))
        try:
            async with asyncio.timeout(60):
                while store.notifications.tries(old.id):
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await loops

    try:
        asyncio.run(upkeep_until_pruned())
        assert len(store.notifications.tries(recent.id)) == 2
    finally:
        asyncio.run(coordinator.close())
