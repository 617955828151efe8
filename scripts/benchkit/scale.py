"""scale: many simulated agents draining a deep queue from one coordinator."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import builds
from benchkit.config import (
    SCALE_CLAIM_P99_MAX_S,
    SCALE_DISPATCHES_PER_S_MIN,
    SCALE_RSS_MAX_MB,
    Sizes,
)
from benchkit.figures import Figure, at_least, at_most, percentile
from benchkit.loadgen import LoadGenerator
from benchkit.procs import Farm, cpu_seconds, peak_rss_mb

NOOP = builds.one_step("true", "scale")


@dataclass(frozen=True)
class Scale:
    agents: int
    queued: int
    submits_per_s: float
    dispatches_per_s: float
    claim_p50_s: float
    claim_p99_s: float
    peak_rss_mb: float
    cpu_s: float  # coordinator CPU during the drain
    dispatched: int
    errors: int

    @property
    def cpu_per_dispatch_ms(self) -> float:
        return 1000 * self.cpu_s / max(1, self.dispatched)


async def _drive(
    address: str, agents: int, jobs: int, limit_s: float, pid: int
) -> tuple[LoadGenerator, float, float]:
    generator = LoadGenerator(address, agents)
    await generator.register()
    cpu_before = cpu_seconds(pid)
    elapsed = await generator.drain(jobs, limit_s)
    cpu = cpu_seconds(pid) - cpu_before
    await generator.close()
    return generator, elapsed, cpu


def measure(root: Path, agents: int, queued: int, limit_s: float) -> Scale:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        client = farm.client()
        started = time.perf_counter()
        builds.submit_many(client, NOOP, queued)
        submits_per_s = queued / (time.perf_counter() - started)
        client.close()
        pid = farm.coordinator_pid
        generator, elapsed, cpu = asyncio.run(_drive(farm.address, agents, queued, limit_s, pid))
        rss = peak_rss_mb(pid)
    finally:
        farm.stop()
    stats = generator.stats
    return Scale(
        agents,
        queued,
        submits_per_s,
        stats.dispatches / elapsed,
        percentile(stats.claim_latencies_s, 0.50),
        percentile(stats.claim_latencies_s, 0.99),
        rss,
        cpu,
        stats.dispatches,
        stats.errors,
    )


def figures(result: Scale, scenario: str = "scale") -> list[Figure]:
    what = f"{result.agents} agents, {result.queued} queued"
    rate, p99 = result.dispatches_per_s, result.claim_p99_s
    return [
        Figure(scenario, f"dispatches/s ({what})", rate, "/s",
               f">= {SCALE_DISPATCHES_PER_S_MIN:g}", at_least(rate, SCALE_DISPATCHES_PER_S_MIN)),
        Figure(scenario, "claim latency p50", result.claim_p50_s * 1000, "ms"),
        Figure(scenario, "claim latency p99", p99 * 1000, "ms",
               f"< {SCALE_CLAIM_P99_MAX_S * 1000:g}", at_most(p99, SCALE_CLAIM_P99_MAX_S)),
        Figure(scenario, "coordinator peak RSS", result.peak_rss_mb, "MB",
               f"< {SCALE_RSS_MAX_MB:g}", at_most(result.peak_rss_mb, SCALE_RSS_MAX_MB)),
        Figure(scenario, "coordinator CPU during the drain", result.cpu_s, "s"),
        Figure(scenario, "coordinator CPU per dispatch", result.cpu_per_dispatch_ms, "ms"),
        Figure(scenario, "submissions/s while queueing", result.submits_per_s, "/s"),
    ]  # fmt: skip


def run(root: Path, sizes: Sizes) -> tuple[list[Figure], Scale]:
    result = measure(root, sizes.scale_agents, sizes.scale_queued, sizes.scale_drain_s)
    return figures(result), result
