"""The log spool: bounded on disk, paced by acknowledgements, explicit about loss."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

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
