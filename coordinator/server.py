"""Runs the coordinator: its edges (gRPC, HTTP), the lease reaper; stops on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import signal
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry

from coordinator.app import build_coordinator
from coordinator.config import CoordinatorConfig
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.loops import LoopDied
from coordinator.edge.grpc_server import GrpcEdge, ListenError
from coordinator.edge.http.metrics import PrometheusMetrics
from coordinator.edge.http.server import HttpEdge
from coordinator.edge.outbound import HttpxPoster, event_body
from coordinator.tls import ServerTls, for_config

LOGGER = logging.getLogger(__name__)

# In-flight RPCs get this long to finish when the server stops.
SHUTDOWN_GRACE_S = 2.0
ADDRESS_FILE = "server.addr"
HTTP_ADDRESS_FILE = "http.addr"
LOCK_FILE = "server.lock"


class DataDirInUse(RuntimeError):
    """Another coordinator holds the data dir."""


# Everything the server writes is its own: the database holds env values and lease tokens, the
# logs what steps printed. Files it (or SQLite) creates get 0600, directories 0700.
PRIVATE_UMASK = 0o077
PRIVATE_DIR_MODE = 0o700


def make_private(data_dir: Path) -> None:
    """Makes the server's files private from here on: the data dir 0700 (tightened if an
    earlier version left it open), and a umask so every file made later is the user's only."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    mode = data_dir.stat().st_mode & 0o777
    if mode & ~PRIVATE_DIR_MODE:
        data_dir.chmod(PRIVATE_DIR_MODE)
        LOGGER.warning("data dir %s was mode %o: now %o", data_dir, mode, PRIVATE_DIR_MODE)


def lock_data_dir(data_dir: Path) -> IO[str]:
    """An exclusive lock on the data dir, held while the returned file stays open (the process
    lives): a second coordinator on the same data dir is refused before it touches anything."""
    data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the server
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUse(
            f"data dir {data_dir} is in use by another coordinator (pid {holder}, lock {path}): "
            "stop it first, or pass another --data-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def ensure_token(data_dir: Path, name: str, given: str | None) -> tuple[str, Path | None]:
    """The given token, or the one kept in the data dir (made on first start, mode 0600)."""
    if given:
        return given, None
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text().strip(), path


def _write_address(data_dir: Path, name: str, address: str) -> None:
    # Written then renamed, so a reader never sees a half-written address.
    partial = data_dir / (name + ".tmp")
    partial.write_text(address + "\n")
    partial.replace(data_dir / name)


async def _start_edges(
    core: Coordinator,
    config: CoordinatorConfig,
    registry: CollectorRegistry,
    tls: ServerTls | None,
) -> tuple[GrpcEdge, HttpEdge | None]:
    """Both listeners bound, or neither (a port in use stops the start: ListenError)."""
    edge = GrpcEdge(core, config.listen, tls)
    http = HttpEdge(core, config.http_listen, registry, tls) if config.http_listen else None
    address = await edge.start()
    if http is not None:
        try:
            http_address = await http.start()
        except BaseException:
            await edge.stop(0)
            raise
        _write_address(config.data_dir, HTTP_ADDRESS_FILE, http_address)
        scheme = "https" if tls else "http"
        LOGGER.info("HTTP API, metrics and health on %s://%s", scheme, http_address)
    _write_address(config.data_dir, ADDRESS_FILE, address)
    LOGGER.info(
        "coordinator listening on %s%s (data in %s)",
        address,
        " with TLS" if tls else "",
        config.data_dir,
    )
    if tls is not None and tls.ca_path is not None:
        LOGGER.info("agents and clients elsewhere need its CA: --ca %s", tls.ca_path)
    return edge, http


async def serve(config: CoordinatorConfig, ready: asyncio.Event | None = None) -> None:
    tls = for_config(config)  # before anything starts: a bad certificate stops here
    registry = CollectorRegistry()
    core = build_coordinator(
        config, PrometheusMetrics(registry), events=event_body, poster=HttpxPoster()
    )
    await core.start()
    (config.data_dir / HTTP_ADDRESS_FILE).unlink(missing_ok=True)
    try:
        edge, http = await _start_edges(core, config, registry, tls)
    except ListenError:
        await core.close()
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    upkeep = asyncio.create_task(core.reap_forever(stop), name="upkeep")
    if ready is not None:
        ready.set()
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    await asyncio.wait({stopping, upkeep}, return_when=asyncio.FIRST_COMPLETED)
    # The upkeep loops end only when told to, or when one kept dying (its supervisor gave up):
    # then the server stops rather than run on without its reaper.
    died = not stop.is_set()
    stop.set()
    LOGGER.info("coordinator stopping")
    core.dispatcher.close()  # so that the grace below waits for no long poll
    await asyncio.gather(
        edge.stop(SHUTDOWN_GRACE_S), *([http.stop(SHUTDOWN_GRACE_S)] if http else [])
    )
    await stopping
    failure: BaseException | None = None
    try:
        await upkeep
    except Exception as error:
        failure = error
        while isinstance(failure, BaseExceptionGroup) and failure.exceptions:
            failure = failure.exceptions[0]
    await core.close()
    if died or failure is not None:
        raise LoopDied(str(failure) if failure else "a coordinator loop ended unexpectedly")
