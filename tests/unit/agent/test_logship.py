"""The log spool: bounded on disk, paced by acknowledgements, explicit about loss."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

from agent.config import LOG_CHUNK_BYTES, LOG_LINGER_S
from agent.logship import LogShipper
from agent.peer import Lease, LogAck, Peer


class FakeCoordinator:
    """Holds appended bytes like the real log store; `reachable` cut the link."""

    def __init__(self) -> None:
        self.held = bytearray()
        self.reachable = threading.Event()
        self.reachable.set()
        self.max_spool_seen = 0
        self.spool: Path | None = None

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        self.reachable.wait()
        if self.spool is not None and self.spool.exists():
            self.max_spool_seen = max(self.max_spool_seen, self.spool.stat().st_size)
        if offset <= len(self.held):
            self.held += data[len(self.held) - offset :]
        return LogAck(held_length=len(self.held), accepted=True)


def _shipper(fake: FakeCoordinator, tmp_path: Path, limit: int) -> LogShipper:
    fake.spool = tmp_path / "0.log"
    return LogShipper(
        cast("Peer", fake),  # the shipper only appends logs
        Lease(attempt_id=1, token="t"),
        0,
        fake.spool,
        limit=limit,
        interrupt=threading.Event(),
    )


def test_fast_writer_on_a_healthy_link_loses_nothing_and_disk_stays_bounded(
    tmp_path: Path,
) -> None:
    fake = FakeCoordinator()
    shipper = _shipper(fake, tmp_path, limit=4096)
    expected = bytearray()
    for i in range(2000):
        chunk = bytes([i % 256]) * 1000
        expected += chunk
        shipper.write(chunk)
    assert shipper.close(10)
    assert shipper.lost_bytes == 0
    assert bytes(fake.held) == bytes(expected)
    assert fake.max_spool_seen <= 2 * 4096 + 1000  # twice the limit plus one write, not 2 MB


def test_outage_with_a_full_spool_keeps_an_exact_prefix_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    fake = FakeCoordinator()
    shipper = _shipper(fake, tmp_path, limit=4096)
    shipper.write(b"a" * 1000)
    deadline = time.monotonic() + 5
    while len(fake.held) < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    fake.reachable.clear()
    started = time.monotonic()
    for _ in range(10):
        shipper.write(b"b" * 1000)
    assert time.monotonic() - started < 5  # stalls about a second, then drops, never hangs
    fake.reachable.set()
    shipper.close(10)
    assert shipper.lost_bytes > 0
    assert len(fake.held) + shipper.lost_bytes == 11_000
    assert bytes(fake.held) == (b"a" * 1000 + b"b" * 10_000)[: len(fake.held)]


class CountingCoordinator(FakeCoordinator):
    """Counts the appends, each taking a moment like a real round trip with its fsync."""

    def __init__(self) -> None:
        super().__init__()
        self.appends = 0

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        self.appends += 1
        time.sleep(0.001)
        return super().append_log(lease, index, offset, data, give_up=give_up)


def test_a_step_printing_fast_is_shipped_in_few_large_appends_not_one_per_read(
    tmp_path: Path,
) -> None:
    fake = CountingCoordinator()
    shipper = _shipper(fake, tmp_path, limit=1024 * 1024 * 1024)
    writes, size = 1000, 64 * 1024  # what a pipe hands over per read
    started = time.monotonic()
    for _ in range(writes):
        shipper.write(b"x" * size)
        time.sleep(0.0005)  # the step's reader waits for the pipe: the shipper gets a turn
    assert shipper.close(10)
    elapsed = time.monotonic() - started
    assert len(fake.held) == writes * size
    # Each append costs both ends a round trip and the coordinator an fsync: while the step
    # prints, an append goes at most once per linger (or per full chunk), not per read.
    bound = elapsed / LOG_LINGER_S + writes * size / LOG_CHUNK_BYTES + 2
    assert fake.appends <= bound, (fake.appends, bound)
