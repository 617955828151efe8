"""logs: one step writing a lot of output; time until the coordinator holds every byte."""

from __future__ import annotations

import time
from pathlib import Path

from agent.config import LOG_CHUNK_BYTES
from benchkit import builds, raw
from benchkit.config import (
    DOCKER_LOG_SHARE_MIN,
    LINE_INTERVAL_S,
    LINE_STORED_P99_MAX_S,
    MB,
    SHELL_LOG_MB_PER_S_MIN,
    Sizes,
)
from benchkit.figures import Figure, at_least, at_most, median, percentile
from benchkit.procs import Farm
from conveyor.cli.client import Client
from conveyor.v1 import control_pb2


def writer(size: int) -> str:
    return f"head -c {size} /dev/zero | tr '\\0' x"


def conveyor_rate(
    root: Path, executor: str, size: int, runs: int, lines: int = 0
) -> tuple[float, list[float]]:
    """Median bytes/s from submission until the build is final, which is after every byte is held
    (an attempt's step only finishes once the coordinator has acknowledged its whole log); then,
    if `lines`, line_delays in the same farm (it has a second agent for that).
    """
    farm = Farm(root)
    rates: list[float] = []
    delays: list[float] = []
    try:
        farm.start_coordinator()
        farm.start_agents(2 if lines else 1, executor)
        client = farm.client()
        builds.run_timed(client, builds.one_step("true", "bench", executor))  # warm-up
        for _ in range(runs):
            build_id, elapsed = builds.run_build(
                client, builds.one_step(writer(size), "logs", executor)
            )
            request = control_pb2.ReadLogsRequest(build_id=build_id, job="one")
            held = sum(len(chunk.data) for chunk in client.read_logs(request))
            if held != size:
                raise RuntimeError(f"logs: the coordinator holds {held} of {size} bytes")
            rates.append(size / elapsed)
        if lines:
            delays = line_delays(client, executor, size, lines)
        client.close()
    finally:
        farm.stop()
    return median(rates), delays


def printer(lines: int) -> str:
    """Prints `lines` lines, each the wall-clock time it was printed at, LINE_INTERVAL_S apart."""
    return f"for i in $(seq {lines}); do date +%s.%N; sleep {LINE_INTERVAL_S}; done"


def line_delays(client: Client, executor: str, size: int, lines: int) -> list[float]:
    """Seconds from a step printing a line to a follower of its log receiving it (so after it
    was stored), while a step on another agent writes `size` bytes over and over."""
    loader = f"while :; do {writer(size)}; done"
    load_id = client.submit(builds.one_step(loader, "load", executor), "bench.yml", {})
    build_id = client.submit(builds.one_step(printer(lines), "lines", executor), "bench.yml", {})
    request = control_pb2.ReadLogsRequest(build_id=build_id, job="one", follow=True)
    delays: list[float] = []
    pending = b""
    for chunk in client.read_logs(request):
        received = time.time()
        *complete, pending = (pending + chunk.data).split(b"\n")
        delays.extend(received - float(line) for line in complete)
    client.cancel(load_id)
    builds.wait_final(client, load_id)
    if len(delays) != lines:
        raise RuntimeError(f"logs: {len(delays)} of {lines} printed lines were received")
    return delays


def raw_rate(command: list[str], size: int, runs: int) -> float:
    return median([raw.read_rate(command, size) for _ in range(runs)])


def run(root: Path, sizes: Sizes, docker: bool) -> list[Figure]:
    size = sizes.log_bytes
    runs = sizes.log_runs
    what = f"{size / MB:g} MB, median of {runs}"
    shell_rate, delays = conveyor_rate(root / "shell", "shell", size, runs, sizes.log_lines)
    shell = shell_rate / MB
    bare = raw_rate(["sh", "-c", writer(size)], size, runs) / MB
    # The other physical bound: every stored byte is made durable before it is acknowledged.
    disk = median([raw.durable_write_rate(root, size, LOG_CHUNK_BYTES) for _ in range(runs)]) / MB
    durable = f"disk: {size / MB:g} MB in {LOG_CHUNK_BYTES >> 20} MiB writes, fsync each"
    figures = [
        Figure("logs", f"shell: {what} stored", shell, "MB/s", f">= {SHELL_LOG_MB_PER_S_MIN:g}",
               at_least(shell, SHELL_LOG_MB_PER_S_MIN), bare, "sh read by pipe"),
        Figure("logs", durable, disk, "MB/s"),
    ]  # fmt: skip
    p99 = percentile(delays, 0.99)
    figures.append(
        Figure("logs", f"shell: a line printed to stored, p99 of {len(delays)} (under load)",
               p99, "s", f"<= {LINE_STORED_P99_MAX_S:g}", at_most(p99, LINE_STORED_P99_MAX_S)),
    )  # fmt: skip
    if docker:
        containers = conveyor_rate(root / "docker", "docker", size, runs)[0] / MB
        command = [*raw.DOCKER_RUN_NO_LOGS, "sh", "-c", writer(size)]
        limit = raw_rate(command, size, runs) / MB
        bound = DOCKER_LOG_SHARE_MIN * limit
        target = f">= {bound:.1f} ({DOCKER_LOG_SHARE_MIN:.0%} of raw)"
        figures.append(
            Figure("logs", f"docker: {what} stored", containers, "MB/s", target,
                   at_least(containers, bound), limit, "docker run, stdout read"),
        )  # fmt: skip
    return figures
