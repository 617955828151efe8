"""latency: a one-step `true` pipeline from submission to final state, beside the bare command."""

from __future__ import annotations

from pathlib import Path

from benchkit import builds, raw
from benchkit.config import DOCKER_LATENCY_OVERHEAD_MAX_S, SHELL_LATENCY_MAX_S, Sizes
from benchkit.figures import Figure, at_most, median, percentile
from benchkit.procs import Farm


def conveyor_latencies(
    root: Path, executor: str, runs: int, agents: int = 1, warm_ups: int = 2
) -> list[float]:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(agents, executor)
        client = farm.client()
        for _ in range(warm_ups):  # first connections, first image use
            builds.run_timed(client, builds.one_step("true", "latency", executor))
        samples = [
            builds.run_timed(client, builds.one_step("true", "latency", executor))
            for _ in range(runs)
        ]
        client.close()
        return samples
    finally:
        farm.stop()


def run(root: Path, sizes: Sizes, docker: bool) -> list[Figure]:
    n = sizes.latency_runs
    shell = conveyor_latencies(root / "shell", "shell", n, warm_ups=sizes.latency_warm_ups)
    bare = [raw.timed(["sh", "-c", "true"]) for _ in range(n)]
    shell_median = median(shell)
    figures = [
        Figure("latency", f"shell: submit to final, median of {n}", shell_median, "s",
               f"<= {SHELL_LATENCY_MAX_S:.3f}", at_most(shell_median, SHELL_LATENCY_MAX_S),
               median(bare), "sh -c true"),
        Figure("latency", f"shell: submit to final, p95 of {n}", percentile(shell, 0.95), "s",
               limit=percentile(bare, 0.95), limit_name="sh -c true"),
    ]  # fmt: skip
    if docker:
        containers = conveyor_latencies(
            root / "docker", "docker", n, warm_ups=sizes.latency_warm_ups
        )
        docker_run = [raw.timed([*raw.DOCKER_RUN, "true"]) for _ in range(n)]
        limit = median(docker_run)
        bound = limit + DOCKER_LATENCY_OVERHEAD_MAX_S
        value = median(containers)
        figures += [
            Figure("latency", f"docker: submit to final, median of {n}", value, "s",
                   f"<= {bound:.3f} (raw + 0.100)", at_most(value, bound),
                   limit, "docker run --rm"),
            Figure("latency", f"docker: submit to final, p95 of {n}",
                   percentile(containers, 0.95), "s",
                   limit=percentile(docker_run, 0.95), limit_name="docker run --rm"),
        ]  # fmt: skip
    return figures
