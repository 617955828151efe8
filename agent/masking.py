"""Secret values out of a step's output, before a byte of it is spooled or shipped (DESIGN §7.7).

A step writes its output in chunks of any size, so a value may arrive in pieces: the end of a
chunk that could be the start of a value is held back until the next chunk shows whether it is,
a line ends, or it has been held for `hold_s` (then it goes out as it is: a step that pauses that
long halfway through printing a value is not writing it by accident). Output that cannot be the
start of a value is never held.

Each line of a multi-line value is masked on its own (a tool may print a key line by line, or
indent it), so no value masked contains a newline: an end of line always lets everything before
it out. Overlapping values are masked as one span.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from agent.config import MIN_MASKED_BYTES

MASK = b"[masked]"
# Up to this many values, one byte search each beats one pass of a regex alternation (measured
# on 240 KiB of output: ~4 GB/s for one value, ~0.5 for three, ~0.13 for ten searches, ~0.23
# for the alternation whatever its size).
_SEARCHES_MAX = 5


def masked_values(values: Iterable[str]) -> tuple[bytes, ...]:
    """What to mask for these secret values: each line of each, longest first. A line shorter
    than MIN_MASKED_BYTES is left out (masking it would mask ordinary words)."""
    found: set[bytes] = set()
    for value in values:
        for raw_line in value.encode().split(b"\n"):
            line = raw_line.removesuffix(b"\r")
            if len(line) >= MIN_MASKED_BYTES:
                found.add(line)
    return tuple(sorted(found, key=lambda needle: (-len(needle), needle)))


class Masker:
    """Streaming masking of `needles` (no newline in any); not thread-safe on its own."""

    def __init__(self, needles: tuple[bytes, ...]) -> None:
        if any(b"\n" in needle or not needle for needle in needles):
            raise ValueError("a masked value must be non-empty and hold no newline")
        self._needles = needles
        # Most output holds no value: first only whether any occurs (a byte search per value is
        # fastest for a few, one pass of an alternation for many); only then each one's spans.
        self._any = None
        if len(needles) > _SEARCHES_MAX:
            self._any = re.compile(b"|".join(re.escape(needle) for needle in needles))
        self._held = b""

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def feed(self, data: bytes) -> bytes:
        """The output that is safe to pass on now, masked; the rest is held."""
        buffer = self._held + data
        spans = self._spans(buffer)
        cut = self._safe_end(buffer, spans)
        self._held = buffer[cut:]
        return _masked(buffer[:cut], [span for span in spans if span[1] <= cut])

    def flush(self) -> bytes:
        """Everything held, masked as far as it goes (the output ended, or waited too long)."""
        out = _masked(self._held, self._spans(self._held))
        self._held = b""
        return out

    def _safe_end(self, buffer: bytes, spans: list[tuple[int, int]]) -> int:
        """Where the part that cannot change any more ends: before the longest tail that may be
        the start of a value, and before any value found that reaches into that tail."""
        end = len(buffer) - self._open_tail(buffer)
        moved = True
        while moved:
            moved = False
            for start, stop in spans:
                if start < end < stop:
                    end, moved = start, True
        return end

    def _open_tail(self, buffer: bytes) -> int:
        """Length of the longest tail of `buffer` that a needle starts with (but is not)."""
        longest = 0
        for needle in self._needles:
            # Tails from the longest one that could still be shorter than the needle; the first
            # that fits is this needle's longest.
            position = buffer.find(needle[:1], max(0, len(buffer) - len(needle) + 1))
            while position != -1 and len(buffer) - position > longest:
                if needle.startswith(buffer[position:]):
                    longest = len(buffer) - position
                    break
                position = buffer.find(needle[:1], position + 1)
        return longest

    def _spans(self, buffer: bytes) -> list[tuple[int, int]]:
        if self._any is not None and self._any.search(buffer) is None:
            return []
        if self._any is None and not any(needle in buffer for needle in self._needles):
            return []
        spans = []
        for needle in self._needles:
            position = buffer.find(needle)
            while position != -1:
                spans.append((position, position + len(needle)))
                position = buffer.find(needle, position + 1)
        return spans


def _masked(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    """`data` with each span, overlapping or touching ones as one, replaced by MASK."""
    if not spans:
        return data
    spans = sorted(spans)
    out, done = bytearray(), 0
    start, stop = spans[0]
    for next_start, next_stop in spans[1:]:
        if next_start <= stop:
            stop = max(stop, next_stop)
            continue
        out += data[done:start] + MASK
        done, start, stop = stop, next_start, next_stop
    out += data[done:start] + MASK + data[stop:]
    return bytes(out)


class MaskingWriter:
    """A step's output sink that masks before `sink` sees anything; a thread lets held output
    out after `hold_s`. `close()` lets the rest out and stops the thread; call it once the step
    has ended, before anything else is written to `sink`."""

    def __init__(self, needles: tuple[bytes, ...], sink: Callable[[bytes], None], hold_s: float):
        self._masker = Masker(needles)
        self._sink = sink
        self._hold_s = hold_s
        self._cond = threading.Condition()
        self._held_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._release_held, args=(self._stop,), name="mask-hold", daemon=True
        )
        self._thread.start()

    def write(self, data: bytes) -> None:
        # The lock is held while `sink` runs, so the two threads' output keeps its order.
        with self._cond:
            out = self._masker.feed(data)
            if out:
                self._sink(out)
            self._held_since = time.monotonic() if self._masker.holding else None
            self._cond.notify_all()

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            out = self._masker.flush()
            if out:
                self._sink(out)

    def _release_held(self, stop: threading.Event) -> None:
        with self._cond:
            while not stop.is_set():
                if self._held_since is None:
                    self._cond.wait()
                    continue
                remaining = self._held_since + self._hold_s - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                out = self._masker.flush()
                self._held_since = None
                if out:
                    self._sink(out)


@contextmanager
def masked_sink(
    needles: tuple[bytes, ...], sink: Callable[[bytes], None], hold_s: float
) -> Iterator[Callable[[bytes], None]]:
    """The sink a step writes to: `sink` itself without needles, else a MaskingWriter in front
    of it, closed (what it holds let out) when the block ends, however it ends."""
    if not needles:
        yield sink
        return
    writer = MaskingWriter(needles, sink, hold_s)
    try:
        yield writer.write
    finally:
        writer.close()
