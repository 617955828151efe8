"""Prometheus metrics: counters and histograms the domain feeds through its `Metrics` port, and
the farm's counts (builds, jobs, queue, agents, deployments, stored bytes) read at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.states import BuildStatus, JobStatus
from coordinator.config import METRICS_COUNTS_MAX_AGE_S
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.records import FarmCounts

# Seconds: claims take milliseconds; queue waits and jobs from moments to hours.
_CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0)
_RUN_BUCKETS = (0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PrometheusMetrics:
    """The domain's `Metrics` port over prometheus_client, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # No `_created` series beside each counter: the coordinator's start time says as much.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self._claim = Histogram(
            "conveyor_claim_seconds",
            "Time one claim of queued work for an agent took (store round trip included)",
            buckets=_CLAIM_BUCKETS,
            registry=registry,
        )
        self._queue_wait = Histogram(
            "conveyor_queue_wait_seconds",
            "How long jobs waited in the queue before an agent took them",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self._attempts = Counter(
            "conveyor_attempts", "Attempts ended, by outcome", ["outcome"], registry=registry
        )
        self._duration = Histogram(
            "conveyor_job_duration_seconds",
            "How long attempts ran, from being handed to an agent to their end",
            ["outcome"],
            buckets=_RUN_BUCKETS,
            registry=registry,
        )
        self._log_bytes = Counter(
            "conveyor_log_received_bytes", "Log bytes received from agents", registry=registry
        )
        self._expiries = Counter(
            "conveyor_lease_expiries", "Leases that expired without renewal", registry=registry
        )
        self._agent_requests = Counter(
            "conveyor_agent_requests",
            "Agents' per-event requests, by call and by how they came (unary call or stream)",
            ["call", "transport"],
            registry=registry,
        )

    def claimed(self, seconds: float, count: int) -> None:
        self._claim.observe(seconds)

    def queue_waited(self, seconds: float) -> None:
        self._queue_wait.observe(seconds)

    def attempt_ended(self, outcome: str, seconds: float | None) -> None:
        self._attempts.labels(outcome).inc()
        if seconds is not None:
            self._duration.labels(outcome).observe(seconds)

    def log_bytes(self, count: int) -> None:
        self._log_bytes.inc(count)

    def lease_expired(self) -> None:
        self._expiries.inc()

    def agent_request(self, call: str, transport: str) -> None:
        self._agent_requests.labels(call, transport).inc()


class FarmCollector(Collector):
    """The counts of the last `refresh`, as metric families (prometheus_client collects
    synchronously; the store is read before, on the event loop)."""

    def __init__(self) -> None:
        self.counts: FarmCounts | None = None
        self.agents: Sequence[str] = ()

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        if counts is None:
            return
        finals = {s.value for s in BuildStatus if s.final}
        yield _family(
            CounterMetricFamily,
            "conveyor_builds",
            "Builds ended, by status",
            "status",
            {k: v for k, v in counts.builds.items() if k in finals},
        )
        job_finals = {s.value for s in JobStatus if s.final}
        yield _family(
            CounterMetricFamily,
            "conveyor_jobs",
            "Jobs ended, by status",
            "status",
            {k: v for k, v in counts.jobs.items() if k in job_finals},
        )
        yield _family(
            GaugeMetricFamily,
            "conveyor_jobs_current",
            "Jobs not ended, by state",
            "state",
            {k: v for k, v in counts.jobs.items() if k not in job_finals},
        )
        yield _family(
            GaugeMetricFamily,
            "conveyor_jobs_queued",
            "Queued jobs by label set",
            "labels",
            dict(counts.queued_by_labels),
        )
        states: dict[str, int] = {}
        for state in self.agents:
            states[state] = states.get(state, 0) + 1
        yield _family(GaugeMetricFamily, "conveyor_agents", "Agents by state", "state", states)
        deployments = CounterMetricFamily(
            "conveyor_deployments",
            "Deployments by environment and status",
            labels=["environment", "status"],
        )
        for (environment, status), n in sorted(counts.deployments.items()):
            deployments.add_metric([environment, status], n)
        yield deployments
        yield GaugeMetricFamily(
            "conveyor_artifact_stored_bytes",
            "Bytes of artifacts and sources stored",
            value=counts.blob_bytes,
        )


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: dict[str, int],
) -> Metric:
    family = kind(name, documentation, labels=[label])
    for key, n in sorted(values.items()):
        family.add_metric([key], n)
    return family


class MetricsEndpoint:
    """`/metrics`: the farm's counts read at most every METRICS_COUNTS_MAX_AGE_S, then text."""

    def __init__(self, core: Coordinator, registry: CollectorRegistry) -> None:
        self._core = core
        self._registry = registry
        self._farm = FarmCollector()
        registry.register(self._farm)
        self._read_at = float("-inf")

    async def render(self) -> bytes:
        if time.monotonic() - self._read_at >= METRICS_COUNTS_MAX_AGE_S:
            self._farm.counts = await self._core.stats.counts()
            self._farm.agents = [agent.state for agent in await self._core.agents.list()]
            self._read_at = time.monotonic()
        return generate_latest(self._registry)
