"""The HTTP listener: uvicorn driven inside the coordinator's own event loop (no thread, no
second loop), on a socket bound here so a port in use is a clear error and port 0 is resolved.
Everything about how it listens is built in this one place (TLS, when it comes, goes here)."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from prometheus_client import CollectorRegistry

from coordinator.config import HTTP_KEEPALIVE_S
from coordinator.domain.coordinator import Coordinator
from coordinator.edge.grpc_server import ListenError
from coordinator.edge.http.app import make_app
from coordinator.tls import ServerTls


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ListenError(f"cannot listen on {listen}: use HOST:PORT (or --http off)")
    host = host.strip("[]") or "127.0.0.1"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, int(port), type=socket.SOCK_STREAM
        )[0]
    except (OSError, OverflowError) as error:
        raise ListenError(f"cannot listen on {listen}: {error}") from None
    sock = socket.socket(family, kind, proto)
    # SO_REUSEADDR, not SO_REUSEPORT: a restart may take a port in TIME_WAIT, but a second
    # server never shares a port in use.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError as error:
        sock.close()
        raise ListenError(
            f"cannot listen on {listen} (--http): {error.strerror or error}; the address is in "
            "use (another coordinator or program) or not this machine's; pass another --http"
        ) from None
    sock.setblocking(False)
    return sock


class HttpEdge:
    def __init__(
        self,
        core: Coordinator,
        listen: str,
        registry: CollectorRegistry,
        tls: ServerTls | None = None,
    ) -> None:
        self._listen = listen
        # The gRPC listener's certificate: one TLS set-up for both (`coordinator.tls`).
        config = uvicorn.Config(
            make_app(core, registry),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=int(HTTP_KEEPALIVE_S),
            ssl_certfile=str(tls.cert_path) if tls else None,
            ssl_keyfile=str(tls.key_path) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Binds and serves; returns the address bound (`host:port`, port 0 resolved)."""
        self._socket = _bind(self._listen)
        config = self._server.config
        config.load()
        self._server.lifespan = config.lifespan_class(config)
        # Not `serve()`: it installs signal handlers of its own, and the coordinator's are the
        # ones that stop both listeners together.
        await self._server.startup(sockets=[self._socket])
        self._task = asyncio.create_task(self._server.main_loop(), name="http")
        port = self._socket.getsockname()[1]
        return f"{self._listen.rsplit(':', 1)[0]}:{port}"

    async def stop(self, grace_s: float) -> None:
        """Stops accepting, gives requests in flight `grace_s`, then cancels what still runs
        (live streams)."""
        if self._task is None:
            return
        self._server.config.timeout_graceful_shutdown = max(1, round(grace_s))
        self._server.should_exit = True
        await self._task
        await self._server.shutdown(sockets=[self._socket] if self._socket else None)
