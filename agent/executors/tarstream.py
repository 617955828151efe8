"""Tar streams as iterators of byte chunks, for tarfile's streaming mode (``r|``)."""

from __future__ import annotations

from collections.abc import Iterable


class ChunkReader:
    """A read()-able view of an iterator of byte chunks; never holds more than one chunk."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            self._buffer = memoryview(next(self._chunks, b""))
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = bytes(self._buffer), memoryview(b"")
            return data
        data, self._buffer = bytes(self._buffer[:size]), self._buffer[size:]
        return data

    def drain(self) -> None:
        """Reads the stream to its end: tarfile stops at the end-of-archive block, and the
        producer (a download) must see its stream consumed, not abandoned."""
        for _ in self._chunks:
            pass
