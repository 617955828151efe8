"""Ships one step's output to the coordinator through an on-disk spool, offset by offset.

The step's reader appends to a spool file; a shipper thread sends from the last acknowledged
offset. The coordinator answers with the length it holds, so a resend never duplicates and a gap
is filled from the length it reports (DESIGN §6.5). Each send costs both ends a round trip and
the coordinator an fsync, so while the step prints fast the shipper lets a chunk gather for a
moment after each acknowledgement (LOG_LINGER_S) instead of sending every read on its own, and
sends the next full chunk before the last is acknowledged (LOG_CHUNKS_IN_FLIGHT): it crosses
the wire while the coordinator makes the one before durable. A failed answer is not retried as
such: the shipper sends again from the last acknowledged byte, with the peer's retries.

The spool holds at most `limit` unacknowledged bytes, and acknowledged bytes are cut from the
file, so disk use stays under twice the limit however long the step runs. A full spool slows the
step down while the coordinator keeps acknowledging; only when nothing has been acknowledged for
SPOOL_STALL_S (an outage) is the rest of the step's output dropped and counted, so the stored log
is an exact prefix and the loss is reported, never silent.

A disk that fills up ends the spool the same way: the bytes on disk are shipped, the rest is
dropped and counted, and `on_disk_full` hears of it once (the attempt then stops the step).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent import metrics
from agent.config import LOG_CHUNK_BYTES, LOG_CHUNKS_IN_FLIGHT, LOG_LINGER_S
from agent.peer import Lease, LogAck, Peer, PeerError, PendingAck
from agent.workroom import is_disk_full

LOGGER = logging.getLogger(__name__)

# How often close() looks whether the attempt was lost while it waits for the drain.
DRAIN_CHECK_S = 0.1
# A full spool waits this long for an acknowledgement before it counts as an outage.
SPOOL_STALL_S = 1.0


class LogShipper:
    def __init__(
        self,
        peer: Peer,
        lease: Lease,
        step_index: int,
        spool_path: Path,
        *,
        limit: int,
        interrupt: threading.Event,
        on_disk_full: Callable[[int], None] = lambda spooled: None,
    ) -> None:
        """`on_disk_full` gets the bytes the spool held on disk when a write found no room."""
        self._peer = peer
        self._lease = lease
        self._step_index = step_index
        self._path = spool_path
        self._limit = limit
        self._interrupt = interrupt
        self._on_disk_full = on_disk_full
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: after a failed write no stale buffer may land in the file later.
        self._writer = self._path.open("wb", buffering=0)
        self._reader = self._path.open("rb")
        self._base = 0  # log offset of the spool file's first byte
        self._written = 0
        self._acked = 0
        # Bytes sent, acknowledged or not (>= _acked); the chunks in flight, by where each ends
        # and what waits for its answer (the shipper thread's own).
        self._sent = 0
        self._in_flight: collections.deque[tuple[int, PendingAck]] = collections.deque()
        self.lost_bytes = 0
        self._closed = False
        self._discarded = False
        self._writer_waiting = False  # the step's reader waits for room: nothing to linger for
        self._sent_at = float("-inf")  # when the last acknowledgement came
        # Pending bytes at which a write wakes the waiting shipper (None: it is not waiting):
        # waking it for every small write would cost more than shipping them.
        self._wake_at: int | None = None
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._ship, name=f"logs-{lease.attempt_id}-{step_index}", daemon=True
        )
        self._thread.start()

    @property
    def length(self) -> int:
        return self._written

    def write(self, data: bytes) -> None:
        """Called by the step's reader; appends to the spool and wakes the shipper."""
        with self._cond:
            if not self.lost_bytes and not self._room_for(len(data)):
                LOGGER.error(
                    "attempt %d step %d: log spool full (%d bytes unacknowledged) "
                    "and the coordinator unreachable; dropping the rest of this step's "
                    "output",
                    self._lease.attempt_id,
                    self._step_index,
                    self._written - self._acked,
                )
            if self.lost_bytes or not self._room_for(len(data)):
                self.lost_bytes += len(data)
                return
            self._append(data)
            if self._wake_at is not None and self._written - self._acked >= self._wake_at:
                self._cond.notify_all()

    def _append(self, data: bytes) -> None:
        """Writes `data` to the spool (lock held); on a full disk keeps the part written."""
        view = memoryview(data)
        while view:
            try:
                count = self._writer.write(view) or 0
            except OSError as error:
                if not is_disk_full(error):
                    raise
                self.lost_bytes += len(view)
                LOGGER.error(
                    "attempt %d step %d: no room left in %s; dropping the rest of this "
                    "step's output",
                    self._lease.attempt_id,
                    self._step_index,
                    self._path.parent,
                )
                self._on_disk_full(self._written - self._base)
                return
            self._written += count
            view = view[count:]

    def _room_for(self, size: int) -> bool:
        """Waits (lock held) while acknowledgements keep coming; False after a stall."""
        stalled_since = time.monotonic()
        acked = self._acked
        while self._written - self._acked + size > self._limit and self._written > self._acked:
            if self._acked != acked:
                acked, stalled_since = self._acked, time.monotonic()
            remaining = SPOOL_STALL_S - (time.monotonic() - stalled_since)
            if remaining <= 0 or self._interrupt.is_set():
                return False
            self._writer_waiting = True
            self._cond.notify_all()
            self._cond.wait(remaining)
            self._writer_waiting = False
        return True

    def close(self, timeout_s: float) -> bool:
        """No more output; waits until every byte is acknowledged. False if that failed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        waited = 0.0
        while self._thread.is_alive() and waited < timeout_s and not self._interrupt.is_set():
            self._thread.join(DRAIN_CHECK_S)
            waited += DRAIN_CHECK_S
        self._release()
        if self._error is not None and not self._interrupt.is_set():
            raise self._error
        return not self._thread.is_alive() and self._acked == self._written

    def discard(self) -> None:
        """Ends shipping at once and frees the spool's disk (the step failed unexpectedly)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._release()

    def _release(self) -> None:
        """Closes both descriptors and deletes the file: an open deleted file keeps its disk."""
        with self._cond:
            self._discarded = True  # a shipper still sending stops before it touches the file
            self._writer.close()
            self._reader.close()
            self._cond.notify_all()
        self._path.unlink(missing_ok=True)

    def _ship(self) -> None:
        try:
            while not self._interrupt.is_set():
                if self._should_collect():
                    self._collect()
                    continue
                chunk = self._next_chunk()
                if chunk is None:
                    return
                self._begin(*chunk)
        except BaseException as error:  # handed to close(), which re-raises it in the step thread
            self._error = error

    def _should_collect(self) -> bool:
        """Whether to wait for the oldest answer before sending more: when the window is full,
        or less than a chunk waits to go (sending it now would only make a small chunk; the
        answer's wait lets it gather), unless the step has ended and this is its last part."""
        if not self._in_flight:
            return False
        if len(self._in_flight) >= LOG_CHUNKS_IN_FLIGHT:
            return True
        with self._cond:
            waiting = self._written - self._sent
            return waiting < LOG_CHUNK_BYTES and not (self._closed and waiting)

    def _next_chunk(self) -> tuple[int, bytes] | None:
        """The next bytes to send, from the first unsent one; waits for them. None once the
        step's output is all sent and answered, or the spool was discarded."""
        with self._cond:
            while self._sent >= self._written and not self._closed:
                self._wake_at = 1
                self._cond.wait()
            self._wake_at = None
            if self._discarded or self._sent >= self._written:
                return None
            if not self._in_flight:
                self._linger()
            if self._discarded:
                return None
            start, end = self._sent, min(self._written, self._sent + LOG_CHUNK_BYTES)
            self._reader.seek(start - self._base)
            data = self._reader.read(end - start)
            self._sent = end
            return start, data

    def _begin(self, offset: int, data: bytes) -> None:
        pending = self._peer.begin_append_log(
            self._lease, self._step_index, offset, data, give_up=self._interrupt
        )
        self._in_flight.append((offset + len(data), pending))

    def _collect(self) -> None:
        end, pending = self._in_flight.popleft()
        try:
            reply = pending()
        except PeerError as error:  # FencedError is no PeerError: the step stops, as it must
            self._resend(error)
            return
        self._acknowledge(reply, end)

    def _resend(self, error: PeerError) -> None:
        """After a failed send or answer: forgets what is in flight (their answers, if any come,
        reach no one) and sends from the last acknowledged byte with the peer's own retries,
        which wait out an outage and raise what the lease cannot survive."""
        LOGGER.info(
            "attempt %d step %d: log chunk not acknowledged (%s); resending from byte %d",
            self._lease.attempt_id,
            self._step_index,
            error,
            self._acked,
        )
        self._in_flight.clear()
        with self._cond:
            self._sent = self._acked
        chunk = self._next_chunk()
        if chunk is None:
            return
        offset, data = chunk
        reply = self._peer.append_log(
            self._lease, self._step_index, offset, data, give_up=self._interrupt
        )
        self._acknowledge(reply, offset + len(data))

    def _linger(self) -> None:
        """Lets a chunk gather (lock held) while the step is printing fast: only just after an
        acknowledgement, while less than a chunk is pending and nobody waits for it."""
        until = self._sent_at + LOG_LINGER_S
        while (
            self._written - self._sent < LOG_CHUNK_BYTES
            and not (self._closed or self._writer_waiting or self._interrupt.is_set())
            and (remaining := until - time.monotonic()) > 0
        ):
            self._wake_at = LOG_CHUNK_BYTES
            self._cond.wait(remaining)
        self._wake_at = None

    def _acknowledge(self, reply: LogAck, end: int) -> None:
        """Takes the coordinator's answer to the chunk that ended at `end`."""
        if not reply.accepted:
            LOGGER.warning(
                "attempt %d step %d: coordinator holds %d bytes, resending from there",
                self._lease.attempt_id,
                self._step_index,
                reply.held_length,
            )
        if reply.held_length < self._base:
            raise RuntimeError(
                f"the coordinator holds {reply.held_length} bytes of a log it had "
                f"acknowledged up to {self._base}"
            )
        with self._cond:
            if self._discarded:
                return
            acked = min(reply.held_length, self._written)
            metrics.LOG_SHIPPED.inc(max(0, acked - self._acked))
            self._acked = acked
            if not reply.accepted or acked < end:
                self._sent = acked  # what was sent after it assumed bytes the coordinator lacks
            self._sent = max(self._sent, acked)
            self._sent_at = time.monotonic()
            if self._acked - self._base > self._limit or self._acked == self._written:
                self._compact()
            self._cond.notify_all()

    def _compact(self) -> None:
        """Drops the acknowledged prefix from the spool file (lock held), keeping the disk used
        under twice the limit; the copy is at most `limit` bytes, once per `limit` shipped."""
        self._reader.seek(self._acked - self._base)
        tail = self._reader.read(self._written - self._acked)
        self._writer.seek(0)
        self._writer.write(tail)
        self._writer.truncate()
        self._writer.flush()
        self._base = self._acked
