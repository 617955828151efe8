"""followers: how `conveyor builds` answers while many clients follow a build that prints.

A real coordinator and shell agent run one build whose step prints a line a second. The
latency of `ListBuilds` (what `conveyor builds` calls) and of the `conveyor builds` command
itself is measured first with no follower, then with N followers (WatchBuild and ReadLogs
streams, from a second process) open on that build. Then N followers follow a build whose step
prints 1 MB/s: what the coordinator spends on them (CPU, as a share of a core), and how many
bytes a second reach them, beside what N perfect readers would get.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import queue
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchkit import builds, raw
from benchkit.config import (
    FOLLOWED_PRINT_BYTES_PER_S,
    FOLLOWED_WINDOW_S,
    FOLLOWERS_CPU_SHARE_MAX,
    FOLLOWERS_READY_TIMEOUT_S,
    FOLLOWERS_STEP_S,
    Sizes,
)
from benchkit.figures import Figure, at_most, median, percentile
from benchkit.procs import CLI, CLIENT_TOKEN, Farm, cpu_seconds
from benchkit.watchers import StreamStats, follow_main
from conveyor.cli.client import Client
from coordinator.config import LOG_READ_CHUNK_BYTES

LOGGER = logging.getLogger(__name__)
JOB = "talk"
# Between two ListBuilds samples, so they sample the load rather than queue behind each other.
SAMPLE_GAP_S = 0.05


def _pipeline(seconds: int) -> str:
    script = f"i=0; while [ $i -lt {seconds} ]; do i=$((i+1)); echo line $i; sleep 1; done"
    text = builds.one_step(script, "followers", "shell")
    return text.replace("  one:\n", f"  {JOB}:\n")


def _printing_pipeline(seconds: int) -> str:
    """A step printing FOLLOWED_PRINT_BYTES_PER_S in lines of 100 bytes, a tenth each 0.1 s."""
    lines = FOLLOWED_PRINT_BYTES_PER_S // 1000
    line = "x" * 99
    script = (
        f"i=0; while [ $i -lt {seconds * 10} ]; do i=$((i+1)); "
        f"yes {line} | head -n {lines}; sleep 0.1; done"
    )
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


def _following(farm: Farm, build_id: int, count: int, measure: Callable[[], None]) -> StreamStats:
    """Runs `measure` while `count` followers (in a child process) follow the build."""
    context = multiprocessing.get_context("spawn")  # no gRPC state crosses a fork
    results: multiprocessing.Queue[object] = context.Queue()
    stop = context.Event()
    child = context.Process(
        target=follow_main, args=(farm.address, build_id, JOB, count, results, stop), daemon=True
    )
    child.start()
    try:
        opened = results.get(timeout=FOLLOWERS_READY_TIMEOUT_S)
        LOGGER.info("%s followers streaming", opened)
        measure()
    finally:
        stop.set()
    try:
        stats = results.get(timeout=FOLLOWERS_READY_TIMEOUT_S)
    except queue.Empty:
        stats = StreamStats(errors=["the follower process did not report"])
    child.join(FOLLOWERS_READY_TIMEOUT_S)
    assert isinstance(stats, StreamStats)
    return stats


def _with_followers(farm: Farm, build_id: int, sizes: Sizes) -> tuple[list[Figure], StreamStats]:
    lists: list[float] = []
    clis: list[float] = []

    def measure() -> None:
        client = farm.client()
        lists.extend(_list_latencies(client, sizes.follower_samples))
        client.close()
        clis.extend(_cli_latencies(farm.address, sizes.follower_cli_samples))

    stats = _following(farm, build_id, sizes.followers, measure)
    return _figures(f"with {sizes.followers} followers", lists, clis), stats


def _printing_followed(farm: Farm, sizes: Sizes) -> list[Figure]:
    """The coordinator's CPU share while every follower follows a step printing 1 MB/s."""
    client = farm.client()
    build_id = client.submit(_printing_pipeline(FOLLOWERS_STEP_S), "bench.yml", {})
    share: list[float] = []

    def measure() -> None:
        cpu, started = cpu_seconds(farm.coordinator_pid), time.perf_counter()
        time.sleep(FOLLOWED_WINDOW_S)
        spent = cpu_seconds(farm.coordinator_pid) - cpu
        share.append(spent / (time.perf_counter() - started))

    n = sizes.followers
    stats = _following(farm, build_id, n, measure)
    client.cancel(build_id)
    builds.wait_final(client, build_id)
    client.close()
    for error in sorted(set(stats.errors))[:5]:
        LOGGER.warning("a follower stream of the printing build failed: %s", error)
    delivered = stats.received / stats.seconds / 1e6 if stats.seconds else math.nan
    perfect = n * FOLLOWED_PRINT_BYTES_PER_S / 1e6
    # The floor: the kernel's CPU for sending the bytes the followers got, with no Conveyor.
    per_byte = raw.loopback_send_cpu_per_byte(n * FOLLOWED_PRINT_BYTES_PER_S, LOG_READ_CHUNK_BYTES)
    floor = per_byte * delivered * 1e6
    what = f"{n} followers of a {FOLLOWED_PRINT_BYTES_PER_S / 1e6:g} MB/s step"
    return [
        Figure("followers", f"coordinator CPU with {what}", share[0] * 100, "% of a core",
               f"< {FOLLOWERS_CPU_SHARE_MAX * 100:g}", at_most(share[0], FOLLOWERS_CPU_SHARE_MAX),
               floor * 100, "sending those bytes over loopback TCP alone"),
        Figure("followers", f"log bytes reaching {what}", delivered, "MB/s", limit=perfect,
               limit_name="every follower at the step's rate"),
        # The share depends on how fast the followers read; this is the coordinator's cost.
        Figure("followers", "coordinator CPU per MB reaching them", share[0] / delivered * 1000,
               "ms", limit=per_byte * 1e9, limit_name="loopback TCP send, per MB"),
        Figure("followers", f"follower streams that failed ({what})", float(len(stats.errors)),
               "streams"),
    ]  # fmt: skip


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
        printing = _printing_followed(farm, sizes)
    finally:
        farm.stop()
    figures += loaded
    figures += [
        Figure("followers", "followers streaming", float(stats.opened), "streams"),
        Figure("followers", "follower streams that failed", float(len(stats.errors)), "streams"),
    ]
    for error in sorted(set(stats.errors))[:5]:
        LOGGER.warning("a follower stream failed: %s", error)
    return figures + printing
