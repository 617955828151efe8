"""growth: throughput at 1..8 agents and scale at 100..1,000 agents, to show how cost grows."""

from __future__ import annotations

from pathlib import Path

from benchkit import scale, throughput
from benchkit.config import Sizes
from benchkit.figures import Figure
from benchkit.scale import Scale


def run(root: Path, sizes: Sizes, done: dict[int, Scale]) -> list[Figure]:
    """`done` holds scale results this run already has (keyed by agents), to avoid repeats."""
    figures: list[Figure] = []
    for agents in sizes.growth_agents:
        result = throughput.measure(
            root / f"shell-{agents}", "shell", agents, sizes.throughput_jobs
        )
        figures += [
            Figure("growth", f"shell throughput, {agents} agents", result.jobs_per_s, "jobs/s"),
            Figure("growth", f"  coordinator CPU/job, {agents} agents",
                   result.cpu_per_job_s * 1000, "ms"),
        ]  # fmt: skip
    for agents in sizes.growth_scale_agents:
        measured = done.get(agents) or scale.measure_all(root / f"scale-{agents}", agents, sizes)
        figures += [
            Figure("growth", f"scale {agents} agents: saturated dispatches/s",
                   measured.saturated.dispatches_per_s, "/s"),
            Figure("growth", f"  CPU per dispatch, {agents} agents",
                   measured.saturated.cpu_per_dispatch_ms, "ms"),
            Figure("growth", f"  paced claim p99, {agents} agents",
                   measured.paced.claim_p99_s * 1000, "ms"),
            Figure("growth", f"  peak RSS, {agents} agents", measured.peak_rss_mb, "MB"),
        ]  # fmt: skip
        if measured.idle is not None:
            figures.append(
                Figure("growth", f"  idle farm CPU per job, {agents} agents",
                       measured.idle.cpu_per_job_ms, "ms"),
            )  # fmt: skip
    return figures
