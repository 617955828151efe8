"""Fault injection for tests: a TCP proxy between an agent and the coordinator that the test
controls (pass, black-hole, drop, reset), and a sampler of live containers."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import docker

PUMP_CHUNK = 64 * 1024
POLL_S = 0.05


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target.

    Modes: `pass` forwards; `blackhole` stops moving bytes both ways but keeps the connections
    (like a partition TCP rides out once healed); `drop` closes every connection and refuses new
    ones; `reset` does the same with RST. `rate` (bytes per second and connection, None: as fast
    as it goes) makes a slow link, so that a large transfer is still under way when a test acts.
    """

    def __init__(self, target: str, *, rate: float | None = None) -> None:
        self.rate = rate
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_S)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._mode = "pass"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str) -> None:
        assert mode in ("pass", "blackhole", "drop", "reset")
        self._mode = mode
        if mode in ("drop", "reset"):
            with self._lock:
                pairs, self._pairs = self._pairs, []
            for pair in pairs:
                for sock in pair:
                    _close(sock, reset=mode == "reset")

    def close(self) -> None:
        self._stop.set()
        self.set_mode("drop")
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._mode in ("drop", "reset"):
                _close(client, reset=self._mode == "reset")
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client, reset=True)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                if self._mode == "blackhole":
                    time.sleep(POLL_S)
                    continue
                readable, _, _ = select.select([client, upstream], [], [], POLL_S)
                for sock in readable:
                    data = sock.recv(PUMP_CHUNK)
                    if not data:
                        return
                    peer[sock].sendall(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)
        except OSError:
            return
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket, reset: bool = False) -> None:
    with contextlib.suppress(OSError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class ContainerSampler:
    """Samples the running containers matching a filter, to catch two live ones at once."""

    def __init__(self, match: Callable[[dict[str, str]], bool], every_s: float = 0.1) -> None:
        self._match = match
        self._every_s = every_s
        self.max_running = 0
        self.samples = 0
        self._stop = threading.Event()
        self._client: Any = docker.from_env()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ContainerSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            running = self._client.containers.list(sparse=True, filters={"status": "running"})
            count = sum(1 for c in running if self._match(c.attrs.get("Labels") or {}))
            self.max_running = max(self.max_running, count)
            self.samples += 1
