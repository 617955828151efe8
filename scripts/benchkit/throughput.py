"""throughput: many one-step `true` builds over a few agents; jobs/s and coordinator CPU per job."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import bare_grpc, builds, raw
from benchkit.config import (
    COORDINATOR_CPU_PER_JOB_MAX_S,
    DOCKER_THROUGHPUT_SHARE_MIN,
    JOB_STREAM_ROUND_TRIPS,
    JOB_UNARY_CALLS,
    SHELL_JOBS_PER_S_MIN,
    Sizes,
)
from benchkit.figures import Figure, at_least, at_most
from benchkit.procs import Farm, cpu_seconds


@dataclass(frozen=True)
class Throughput:
    jobs_per_s: float
    cpu_per_job_s: float  # coordinator CPU seconds per job


def measure(root: Path, executor: str, agents: int, jobs: int) -> Throughput:
    """Submits `jobs` builds at once to `agents` agents of capacity 1 and times the whole batch."""
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(agents, executor)
        client = farm.client()
        builds.run_timed(client, builds.one_step("true", "throughput", executor))  # warm-up
        cpu_before = cpu_seconds(farm.coordinator_pid)
        started = time.perf_counter()
        ids = builds.submit_many(client, builds.one_step("true", "throughput", executor), jobs)
        failed = builds.wait_all(client, ids)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(farm.coordinator_pid) - cpu_before
        client.close()
    finally:
        farm.stop()
    if failed:
        raise RuntimeError(f"throughput: {failed} of {jobs} builds did not succeed")
    return Throughput(jobs / elapsed, cpu / jobs)


def run(root: Path, sizes: Sizes, docker: bool) -> list[Figure]:
    jobs, agents = sizes.throughput_jobs, sizes.throughput_agents
    shell = measure(root / "shell", "shell", agents, jobs)
    bare = raw.rate(["sh", "-c", "true"], jobs, agents)
    price = bare_grpc.measure(sizes.grpc_calls)
    floor = JOB_UNARY_CALLS * price.unary_s + JOB_STREAM_ROUND_TRIPS * price.stream_pair_s
    what = f"{jobs} jobs, {agents} agents"
    figures = [
        Figure("throughput", f"shell: jobs/s ({what})", shell.jobs_per_s, "jobs/s",
               f">= {SHELL_JOBS_PER_S_MIN:g}", at_least(shell.jobs_per_s, SHELL_JOBS_PER_S_MIN),
               bare, f"sh -c true x{agents}"),
        _cpu_figure("shell", shell, floor),
        Figure("throughput", "bare grpc.aio server: CPU per unary call", price.unary_s * 1000,
               "ms"),
        Figure("throughput", "bare grpc.aio server: CPU per stream request and reply",
               price.stream_pair_s * 1000, "ms"),
    ]  # fmt: skip
    if docker:
        containers = measure(root / "docker", "docker", agents, jobs)
        limit = raw.rate([*raw.DOCKER_RUN, "true"], jobs, agents)
        bound = DOCKER_THROUGHPUT_SHARE_MIN * limit
        figures += [
            Figure("throughput", f"docker: jobs/s ({what})", containers.jobs_per_s, "jobs/s",
                   f">= {bound:.2f} ({DOCKER_THROUGHPUT_SHARE_MIN:.0%} of raw)",
                   at_least(containers.jobs_per_s, bound),
                   limit, f"docker run x{agents}"),
            _cpu_figure("docker", containers, floor),
        ]  # fmt: skip
    return figures


def _cpu_figure(executor: str, result: Throughput, grpc_floor_s: float) -> Figure:
    """Beside it: a bare gRPC server's CPU for the same job's calls and messages."""
    value = result.cpu_per_job_s * 1000
    bound = COORDINATOR_CPU_PER_JOB_MAX_S * 1000
    return Figure(
        "throughput",
        f"{executor}: coordinator CPU per job",
        value,
        "ms",
        f"<= {bound:g}",
        at_most(value, bound),
        grpc_floor_s * 1000,
        f"bare gRPC: {JOB_UNARY_CALLS} calls, {JOB_STREAM_ROUND_TRIPS:g} stream round trips",
    )
