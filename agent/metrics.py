"""The agent's own Prometheus metrics, served on `--metrics HOST:PORT` by prometheus_client's
HTTP server (a thread of its own; the agent has no event loop to share): steps run, log bytes
the coordinator acknowledged, and the bytes in the log spool right now."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LOGGER = logging.getLogger(__name__)

# One registry for the process: the counters below are the agent's, whoever runs them.
REGISTRY = CollectorRegistry()
STEPS = Counter("conveyor_agent_steps", "Steps run, by outcome", ["outcome"], registry=REGISTRY)
LOG_SHIPPED = Counter(
    "conveyor_agent_log_shipped_bytes",
    "Log bytes the coordinator acknowledged",
    registry=REGISTRY,
)


class SpoolCollector(Collector):
    """The spool's size, measured when scraped (a directory per running attempt, a few files)."""

    def __init__(self, spool_dir: Path) -> None:
        self._spool_dir = spool_dir

    def collect(self) -> Iterator[Metric]:
        total = 0
        for root, _dirs, files in os.walk(self._spool_dir):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:
                    continue  # shipped and removed while we looked
        yield GaugeMetricFamily(
            "conveyor_agent_spool_bytes", "Bytes of log waiting in the spool", value=total
        )


class ListenError(OSError):
    """`--metrics` cannot be bound."""


def serve(listen: str, spool_dir: Path) -> str:
    """Serves /metrics on `listen` (port 0 picks one); returns the `host:port` bound."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ListenError(f"--metrics {listen}: use HOST:PORT")
    REGISTRY.register(SpoolCollector(spool_dir))
    try:
        server, _thread = start_http_server(int(port), host or "127.0.0.1", registry=REGISTRY)
    except OSError as error:
        raise ListenError(f"cannot serve metrics on {listen}: {error.strerror or error}") from None
    bound = f"{host or '127.0.0.1'}:{server.server_port}"
    LOGGER.info("agent metrics on http://%s/metrics", bound)
    return bound
