"""A step container's output, read from the engine's attach socket exactly as written."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

log = logging.getLogger(__name__)

READ_BYTES = 256 * 1024
_FRAME_HEADER = 8


class FrameDecoder:
    """Strips the 8-byte header Docker puts before each chunk of a non-tty attach stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes:
        buffer, out = self._buffer, []
        buffer += data
        while len(buffer) >= _FRAME_HEADER:
            end = _FRAME_HEADER + int.from_bytes(buffer[4:_FRAME_HEADER], "big")
            if len(buffer) < end:
                break
            out.append(bytes(buffer[_FRAME_HEADER:end]))
            del buffer[:end]  # cheap: bytearray drops a prefix without moving the rest
        return b"".join(out)


def _open_reader(sock: object) -> Callable[[int], bytes]:
    """A blocking ``recv`` for what ``attach_socket`` returned, whatever the transport."""
    inner = getattr(sock, "_sock", None)  # a unix socket comes wrapped in a SocketIO
    # Depending on the transport the socket may carry the client's request timeout (60 s by
    # default), but a step may be silent for much longer; the SDK's own attach clears it too.
    for settimeout in (getattr(sock, "settimeout", None), getattr(inner, "settimeout", None)):
        if settimeout is not None:
            settimeout(None)
    # The inner socket's recv() skips RawIOBase.read's extra buffer copy.
    recv = (
        getattr(inner, "recv", None) or getattr(sock, "recv", None) or getattr(sock, "read", None)
    )
    return cast("Callable[[int], bytes]", recv)


def close_socket(sock: object) -> None:
    # Closing the response too drops the hijacked connection now rather than at GC time.
    for closable in (getattr(sock, "_response", None), sock):
        try:
            getattr(closable, "close", lambda: None)()
        except (OSError, ValueError):  # ValueError: already closed underneath
            log.debug("closing the attach stream failed", exc_info=True)


def pump(sock: object, on_output: Callable[[bytes], None]) -> str | None:
    """Delivers the attach stream to on_output until EOF; returns a read error, if any."""
    recv = _open_reader(sock)
    decoder = FrameDecoder()
    while True:
        try:
            data = recv(READ_BYTES)
        except OSError as exc:
            return f"reading the step's output failed: {exc}"
        if not data:
            return None
        payload = decoder.feed(data)
        if payload:
            on_output(payload)
