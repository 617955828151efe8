"""peers: Buildbot beside Conveyor, the same trivial-step latency and throughput in one run.

Both sides run one builder / pipeline whose one step is `true`, on 4 workers / shell agents on
loopback, driven through one persistent client each (an HTTP connection to Buildbot's REST API
with its WebSocket event stream beside it, a gRPC channel to Conveyor's control API): submission
to finished build, median of sequential builds, and builds per second with the whole batch
submitted at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchkit import buildbot, latency, throughput
from benchkit.config import (
    BUILDBOT_VERSION,
    PEERS_LATENCY_RATIO_MIN,
    PEERS_THROUGHPUT_RATIO_MIN,
    Sizes,
)
from benchkit.figures import Figure, at_least, median
from benchkit.procs import cpu_seconds

WARM_UP_RUNS = 2


@dataclass(frozen=True)
class Side:
    latency_s: float  # median, submission to finished
    builds_per_s: float
    cpu_per_build_s: float  # the master's / coordinator's CPU seconds per build of the batch


def _buildbot_latency(client: buildbot.RestClient, events: buildbot.Completions) -> float:
    started = time.perf_counter()
    failed = events.wait([client.force()])
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError("peers: a Buildbot build of `true` did not succeed")
    return elapsed


def measure_buildbot(root: Path, runs: int, builds: int, workers: int) -> Side:
    master = buildbot.Master(root, buildbot.install())
    try:
        master.start(workers)
        client = buildbot.RestClient(master.http_port)
        events = buildbot.Completions(master.http_port)
        for _ in range(WARM_UP_RUNS):  # the workers' first builds set up their directories
            _buildbot_latency(client, events)
        samples = [_buildbot_latency(client, events) for _ in range(runs)]
        cpu_before = cpu_seconds(master.pid)
        started = time.perf_counter()
        failed = events.wait([client.force() for _ in range(builds)])
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(master.pid) - cpu_before
        client.close()
        events.close()
    finally:
        master.stop()
    if failed:
        raise RuntimeError(f"peers: {failed} of {builds} Buildbot builds did not succeed")
    return Side(median(samples), builds / elapsed, cpu / builds)


def measure_conveyor(root: Path, runs: int, builds: int, agents: int) -> Side:
    samples = latency.conveyor_latencies(root / "latency", "shell", runs, agents)
    batch = throughput.measure(root / "throughput", "shell", agents, builds)
    return Side(median(samples), batch.jobs_per_s, batch.cpu_per_job_s)


def run(root: Path, sizes: Sizes) -> list[Figure]:
    runs, builds, agents = sizes.peer_runs, sizes.peer_builds, sizes.peer_workers
    peer = measure_buildbot(root / "buildbot", runs, builds, agents)
    ours = measure_conveyor(root / "conveyor", runs, builds, agents)
    name = f"Buildbot {BUILDBOT_VERSION}"
    latency_ratio = peer.latency_s / ours.latency_s
    rate_ratio = ours.builds_per_s / peer.builds_per_s
    what = f"{builds} builds, {agents} agents"
    return [
        Figure("peers", f"Conveyor: submit to final, median of {runs}", ours.latency_s, "s",
               limit=peer.latency_s, limit_name=name),
        Figure("peers", "latency: Buildbot / Conveyor", latency_ratio, "x",
               f">= {PEERS_LATENCY_RATIO_MIN:g}", at_least(latency_ratio, PEERS_LATENCY_RATIO_MIN)),
        Figure("peers", f"Conveyor: builds/s ({what})", ours.builds_per_s, "builds/s",
               limit=peer.builds_per_s, limit_name=name),
        Figure("peers", "throughput: Conveyor / Buildbot", rate_ratio, "x",
               f">= {PEERS_THROUGHPUT_RATIO_MIN:g}",
               at_least(rate_ratio, PEERS_THROUGHPUT_RATIO_MIN)),
        Figure("peers", "Conveyor: coordinator CPU per build", ours.cpu_per_build_s * 1000, "ms",
               limit=peer.cpu_per_build_s * 1000, limit_name=f"{name} master"),
    ]  # fmt: skip
