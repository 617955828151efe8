"""scale: many simulated agents draining a deep queue from one coordinator."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchkit import builds, idle
from benchkit.config import (
    SCALE_CLAIM_P99_MAX_S,
    SCALE_CPU_PER_DISPATCH_MAX_S,
    SCALE_DISPATCHES_PER_S_MIN,
    SCALE_PACED_PER_S,
    SCALE_RSS_MAX_MB,
    Sizes,
)
from benchkit.figures import Figure, at_least, at_most, percentile
from benchkit.idle import Idle
from benchkit.loadgen import LoadGenerator
from benchkit.procs import Farm, cpu_seconds, peak_rss_mb

NOOP = builds.one_step("true", "scale")


@dataclass(frozen=True)
class Phase:
    dispatches_per_s: float
    claim_p50_s: float
    claim_p99_s: float
    cpu_s: float  # coordinator CPU during the phase
    dispatched: int
    errors: int

    @property
    def cpu_per_dispatch_ms(self) -> float:
        return 1000 * self.cpu_s / max(1, self.dispatched)


@dataclass(frozen=True)
class Scale:
    agents: int
    queued: int
    submits_per_s: float
    saturated: Phase  # agents poll again at once: the most the coordinator dispatches
    paced: Phase  # jobs held so that the agents offer the target rate: claim latency under load
    hold_s: float
    peak_rss_mb: float
    idle: Idle | None = None


async def _phase(
    generator: LoadGenerator, pid: int, jobs: int, limit_s: float, hold_s: float
) -> Phase:
    cpu_before = cpu_seconds(pid)
    elapsed = await generator.drain(jobs, limit_s, hold_s)
    cpu = cpu_seconds(pid) - cpu_before
    stats = generator.stats
    return Phase(
        stats.dispatches / elapsed,
        percentile(stats.claim_latencies_s, 0.50),
        percentile(stats.claim_latencies_s, 0.99),
        cpu,
        stats.dispatches,
        stats.errors,
    )


async def _drive(
    address: str, agents: int, jobs: int, limit_s: float, pid: int, hold_s: float
) -> tuple[Phase, Phase]:
    generator = LoadGenerator(address, agents)
    await generator.register()
    try:
        # Half the queue at most, so the paced phase has jobs left to claim.
        saturated = await _phase(generator, pid, jobs // 2, limit_s, 0.0)
        paced = await _phase(generator, pid, jobs - saturated.dispatched, limit_s, hold_s)
    finally:
        await generator.close()
    return saturated, paced


def measure(root: Path, agents: int, queued: int, limit_s: float) -> Scale:
    """Queues `queued` one-job builds, then `agents` simulated agents drain them in two phases."""
    # Each agent holds its job this long, so the agents together offer the paced rate.
    hold_s = agents / SCALE_PACED_PER_S
    farm = Farm(root)
    try:
        farm.start_coordinator()
        client = farm.client()
        started = time.perf_counter()
        builds.submit_many(client, NOOP, queued)
        submits_per_s = queued / (time.perf_counter() - started)
        client.close()
        pid = farm.coordinator_pid
        saturated, paced = asyncio.run(_drive(farm.address, agents, queued, limit_s, pid, hold_s))
        rss = peak_rss_mb(pid)
    finally:
        farm.stop()
    return Scale(agents, queued, submits_per_s, saturated, paced, hold_s, rss)


def figures(result: Scale, scenario: str = "scale") -> list[Figure]:
    sat, paced = result.saturated, result.paced
    rate = sat.dispatches_per_s
    p99 = paced.claim_p99_s
    offered = f"{result.agents / result.hold_s:g}/s offered, jobs held {result.hold_s:g} s"
    cpu_ms = sat.cpu_per_dispatch_ms
    cpu_max_ms = SCALE_CPU_PER_DISPATCH_MAX_S * 1000
    return [
        Figure(scenario, f"saturated: dispatches/s ({result.agents} agents, "
               f"{result.queued} queued)", rate, "/s",
               f">= {SCALE_DISPATCHES_PER_S_MIN:g}", at_least(rate, SCALE_DISPATCHES_PER_S_MIN)),
        Figure(scenario, "saturated: claim p50 (queueing)", sat.claim_p50_s * 1000, "ms"),
        Figure(scenario, "saturated: coordinator CPU per dispatch", cpu_ms, "ms",
               f"<= {cpu_max_ms:g}", at_most(cpu_ms, cpu_max_ms)),
        Figure(scenario, f"paced ({offered}): dispatches/s", paced.dispatches_per_s, "/s"),
        Figure(scenario, "paced: claim latency p50", paced.claim_p50_s * 1000, "ms"),
        Figure(scenario, "paced: claim latency p99", p99 * 1000, "ms",
               f"< {SCALE_CLAIM_P99_MAX_S * 1000:g}", at_most(p99, SCALE_CLAIM_P99_MAX_S)),
        Figure(scenario, "coordinator peak RSS", result.peak_rss_mb, "MB",
               f"< {SCALE_RSS_MAX_MB:g}", at_most(result.peak_rss_mb, SCALE_RSS_MAX_MB)),
        Figure(scenario, "submissions/s while queueing", result.submits_per_s, "/s"),
        *_idle_figures(result.idle, scenario),
    ]  # fmt: skip


def _idle_figures(measured: Idle | None, scenario: str) -> list[Figure]:
    if measured is None:
        return []
    what = f"idle farm ({measured.agents} parked agents, {measured.jobs} jobs one by one)"
    return [
        Figure(scenario, f"{what}: submit to final, median", measured.submit_to_final_s * 1000,
               "ms"),
        Figure(scenario, "idle farm: coordinator CPU per job", measured.cpu_per_job_ms, "ms"),
    ]  # fmt: skip


def measure_all(root: Path, agents: int, sizes: Sizes) -> Scale:
    """The deep-queue drain, then the idle farm, each with a fresh coordinator."""
    drained = measure(root / "drain", agents, sizes.scale_queued, sizes.scale_drain_s)
    idled = idle.measure(root / "idle", agents, sizes.idle_jobs, sizes.idle_settle_s)
    return replace(drained, idle=idled)


def run(root: Path, sizes: Sizes) -> tuple[list[Figure], Scale]:
    result = measure_all(root, sizes.scale_agents, sizes)
    return figures(result), result
