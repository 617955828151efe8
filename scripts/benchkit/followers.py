"""followers: how `conveyor builds` answers while many clients follow a build that prints.

A real coordinator and shell agent run one build whose step prints a line a second. The
latency of `ListBuilds` (what `conveyor builds` calls) and of the `conveyor builds` command
itself is measured first with no follower, then with N followers (WatchBuild and ReadLogs
streams, from a second process) open on that build.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import subprocess
import time
from pathlib import Path

from benchkit import builds
from benchkit.config import (
    FOLLOWERS_READY_TIMEOUT_S,
    FOLLOWERS_STEP_S,
    Sizes,
)
from benchkit.figures import Figure, median, percentile
from benchkit.procs import CLI, CLIENT_TOKEN, Farm
from benchkit.watchers import StreamStats, follow_main
from conveyor.cli.client import Client

LOGGER = logging.getLogger(__name__)
JOB = "talk"
# Between two ListBuilds samples, so they sample the load rather than queue behind each other.
SAMPLE_GAP_S = 0.05


def _pipeline(seconds: int) -> str:
    script = f"i=0; while [ $i -lt {seconds} ]; do i=$((i+1)); echo line $i; sleep 1; done"
    text = builds.one_step(script, "followers", "shell")
    return text.replace("  one:\n", f"  {JOB}:\n")


def _list_latencies(client: Client, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        client.list_builds(20)
        times.append(time.perf_counter() - started)
        time.sleep(SAMPLE_GAP_S)
    return times


def _cli_latencies(address: str, samples: int) -> list[float]:
    times = []
    command = [*CLI, "builds", "--coordinator", address, "--token", CLIENT_TOKEN]
    for _ in range(samples):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return times


def _figures(label: str, lists: list[float], clis: list[float]) -> list[Figure]:
    return [
        Figure("followers", f"ListBuilds {label}, median of {len(lists)}", median(lists), "s"),
        Figure("followers", f"ListBuilds {label}, p95", percentile(lists, 0.95), "s"),
        Figure("followers", f"conveyor builds {label}, median of {len(clis)}", median(clis), "s"),
        Figure("followers", f"conveyor builds {label}, p95", percentile(clis, 0.95), "s"),
    ]


def _with_followers(farm: Farm, build_id: int, sizes: Sizes) -> tuple[list[Figure], StreamStats]:
    context = multiprocessing.get_context("spawn")  # no gRPC state crosses a fork
    results: multiprocessing.Queue[object] = context.Queue()
    stop = context.Event()
    n = sizes.followers
    child = context.Process(
        target=follow_main, args=(farm.address, build_id, JOB, n, results, stop), daemon=True
    )
    child.start()
    try:
        opened = results.get(timeout=FOLLOWERS_READY_TIMEOUT_S)
        LOGGER.info("%s followers streaming", opened)
        client = farm.client()
        lists = _list_latencies(client, sizes.follower_samples)
        client.close()
        clis = _cli_latencies(farm.address, sizes.follower_cli_samples)
    finally:
        stop.set()
    try:
        stats = results.get(timeout=FOLLOWERS_READY_TIMEOUT_S)
    except queue.Empty:
        stats = StreamStats(errors=["the follower process did not report"])
    child.join(FOLLOWERS_READY_TIMEOUT_S)
    assert isinstance(stats, StreamStats)
    return _figures(f"with {n} followers", lists, clis), stats


def run(root: Path, sizes: Sizes) -> list[Figure]:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(1, "shell")
        client = farm.client()
        build_id = client.submit(_pipeline(FOLLOWERS_STEP_S), "bench.yml", {})
        # Baseline: the same farm, the build printing, nobody following it.
        lists = _list_latencies(client, sizes.follower_samples)
        clis = _cli_latencies(farm.address, sizes.follower_cli_samples)
        figures = _figures("without followers", lists, clis)
        loaded, stats = _with_followers(farm, build_id, sizes)
        client.cancel(build_id)
        builds.wait_final(client, build_id)  # so the agent has nothing left to stop
        client.close()
    finally:
        farm.stop()
    figures += loaded
    figures += [
        Figure("followers", "followers streaming", float(stats.opened), "streams"),
        Figure("followers", "follower streams that failed", float(len(stats.errors)), "streams"),
    ]
    for error in sorted(set(stats.errors))[:5]:
        LOGGER.warning("a follower stream failed: %s", error)
    return figures
