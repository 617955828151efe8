"""A minimal WebSocket client (RFC 6455): text frames in and out over one blocking socket.

Enough for Buildbot's event stream (`/ws`): a handshake, masked text frames to the server,
unmasked frames from it, pongs for its pings. Nothing the bench does not use.
"""

from __future__ import annotations

import base64
import os
import socket
import struct

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
FINAL = 0x80
MASKED = 0x80
SHORT_MAX, MEDIUM_MAX = 125, 0xFFFF  # payload lengths carried in 7 bits, then in 16 bits


class WebSocket:
    def __init__(self, host: str, port: int, path: str, timeout_s: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"WebSocket handshake refused: {status!r}")

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("WebSocket closed by the server")
        self._buffer += chunk

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        taken, self._buffer = self._buffer[:size], self._buffer[size:]
        return taken

    def _send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size <= SHORT_MAX:
            header = struct.pack("!BB", FINAL | opcode, MASKED | size)
        elif size <= MEDIUM_MAX:
            header = struct.pack("!BBH", FINAL | opcode, MASKED | 126, size)
        else:
            header = struct.pack("!BBQ", FINAL | opcode, MASKED | 127, size)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(TEXT, text.encode())

    def receive_text(self) -> str:
        """The next text message (fragments joined); answers pings on the way."""
        parts: list[bytes] = []
        while True:
            first, second = self._take(2)
            size = second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._take(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._take(8))
            mask = self._take(4) if second & MASKED else b""
            payload = self._take(size)
            if mask:
                payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
            opcode = first & 0x0F
            if opcode == PING:
                self._send(PONG, payload)
            elif opcode == CLOSE:
                raise ConnectionError("WebSocket closed by the server")
            elif opcode != PONG:
                parts.append(payload)
                if first & FINAL:
                    return b"".join(parts).decode()

    def close(self) -> None:
        self._sock.close()
