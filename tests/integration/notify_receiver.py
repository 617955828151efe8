"""A webhook receiver for the notification tests: a real HTTP server on 127.0.0.1 that records
every request it gets and fails the first ones of a path on demand; it can be stopped (its port
then refuses connections) and started again on the same port."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int

    @property
    def delivered(self) -> bool:
        return 200 <= self.answered < 300


@dataclass
class Receiver:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # path: requests still to answer 503
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str) -> int:
        with self._lock:
            if self.failing.get(path, 0) > 0:
                self.failing[path] -= 1
                return 503
            return 200

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[Received]:
        return [r for r in self.on(path) if r.delivered]

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer(self.path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver.record(Received(self.path, headers, body, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # quiet: the test reads `requests`

    return Handler
