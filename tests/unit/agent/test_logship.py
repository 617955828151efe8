"""The log spool: bounded on disk, paced by acknowledgements, explicit about loss."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

from agent.config import LOG_CHUNK_BYTES, LOG_CHUNKS_IN_FLIGHT, LOG_LINGER_S
from agent.logship import LogShipper
from agent.peer import Lease, LogAck, Peer, PeerError, PendingAck


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

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        ack = self.append_log(lease, index, offset, data, give_up=give_up)
        return lambda: ack


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


class WindowCoordinator(FakeCoordinator):
    """Stores each chunk when its answer is waited for, in the order sent, as the coordinator
    does; records how many were sent and not yet answered. `fail_answers` chunks answer with an
    outage; `refuse_next` makes the next answer a refusal (as a gap would be)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int, int]] = []
        self.unanswered = 0
        self.most_unanswered = 0
        self.resends = 0
        self.fail_answers = 0
        self.refuse_next = False
        self.answering = threading.Event()  # cleared: answers wait (the step prints meanwhile)
        self.answering.set()
        self._lock = threading.Lock()

    def begin_append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> PendingAck:
        with self._lock:
            self.sent.append((offset, len(data)))
            self.unanswered += 1
            self.most_unanswered = max(self.most_unanswered, self.unanswered)

        def answer() -> LogAck:
            self.answering.wait()
            time.sleep(0.002)  # the coordinator's fsync: the next chunk is sent meanwhile
            with self._lock:
                self.unanswered -= 1
                if self.fail_answers:
                    self.fail_answers -= 1
                    raise PeerError("the stream broke", code="UNAVAILABLE", transient=True)
                if self.refuse_next:
                    self.refuse_next = False
                    return LogAck(held_length=len(self.held), accepted=False)
            return self.append_log(lease, index, offset, data, give_up=give_up)

        return answer

    def append_log(
        self, lease: Lease, index: int, offset: int, data: bytes, *, give_up: threading.Event
    ) -> LogAck:
        if offset > len(self.held):
            return LogAck(held_length=len(self.held), accepted=False)  # a gap, as the store says
        return super().append_log(lease, index, offset, data, give_up=give_up)


def _print_chunks(fake: WindowCoordinator, shipper: LogShipper, chunks: int) -> bytes:
    """Writes `chunks` chunks' worth while the coordinator holds its answers back, so however
    slow the machine, full chunks wait to go once answers come."""
    fake.answering.clear()
    expected = bytearray()
    for i in range(chunks * 4):
        piece = bytes([65 + i % 26]) * (LOG_CHUNK_BYTES // 4)
        expected += piece
        shipper.write(piece)
    fake.answering.set()
    return bytes(expected)


def test_the_next_chunk_is_sent_before_the_last_is_acknowledged(tmp_path: Path) -> None:
    fake = WindowCoordinator()
    shipper = _shipper(fake, tmp_path, limit=64 * LOG_CHUNK_BYTES)
    expected = _print_chunks(fake, shipper, 6)
    assert shipper.close(30)
    assert bytes(fake.held) == expected
    # Overlapped, and within the window: never more than LOG_CHUNKS_IN_FLIGHT unanswered.
    assert fake.most_unanswered == LOG_CHUNKS_IN_FLIGHT >= 2
    offsets = [offset for offset, _ in fake.sent]
    assert offsets == sorted(offsets), "chunks go in order, each after the one before"


def test_a_failed_answer_resends_from_the_last_acknowledged_byte(tmp_path: Path) -> None:
    fake = WindowCoordinator()
    fake.fail_answers = 1
    shipper = _shipper(fake, tmp_path, limit=64 * LOG_CHUNK_BYTES)
    expected = _print_chunks(fake, shipper, 4)
    assert shipper.close(30)
    assert bytes(fake.held) == expected  # nothing lost, nothing twice
    first_offsets = [offset for offset, _ in fake.sent]
    assert first_offsets.count(0) == 1  # the failed first chunk went again by append_log


def test_a_refused_chunk_is_sent_again_from_what_the_coordinator_holds(tmp_path: Path) -> None:
    fake = WindowCoordinator()
    fake.refuse_next = True
    shipper = _shipper(fake, tmp_path, limit=64 * LOG_CHUNK_BYTES)
    expected = _print_chunks(fake, shipper, 4)
    assert shipper.close(30)
    assert bytes(fake.held) == expected
    # The refused first chunk made the one sent after it a gap: the log went again from byte 0
    # (once, or again if the gap's answer came before the resent chunk's, as timing decides).
    assert 2 <= [offset for offset, _ in fake.sent].count(0) <= 3
