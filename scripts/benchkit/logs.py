"""logs: one step writing a lot of output; time until the coordinator holds every byte."""

from __future__ import annotations

from pathlib import Path

from benchkit import builds, raw
from benchkit.config import DOCKER_LOG_SHARE_MIN, MB, SHELL_LOG_MB_PER_S_MIN, Sizes
from benchkit.figures import Figure, at_least, median
from benchkit.procs import Farm
from conveyor.v1 import control_pb2


def writer(size: int) -> str:
    return f"head -c {size} /dev/zero | tr '\\0' x"


def conveyor_rate(root: Path, executor: str, size: int, runs: int) -> float:
    """Median bytes/s from submission until the build is final, which is after every byte is held.

    An attempt's step only finishes once the coordinator has acknowledged its whole log.
    """
    farm = Farm(root)
    rates: list[float] = []
    try:
        farm.start_coordinator()
        farm.start_agents(1, executor)
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
        client.close()
    finally:
        farm.stop()
    return median(rates)


def raw_rate(command: list[str], size: int, runs: int) -> float:
    return median([raw.read_rate(command, size) for _ in range(runs)])


def run(root: Path, sizes: Sizes, docker: bool) -> list[Figure]:
    size = sizes.log_bytes
    runs = sizes.log_runs
    what = f"{size / MB:g} MB, median of {runs}"
    shell = conveyor_rate(root / "shell", "shell", size, runs) / MB
    bare = raw_rate(["sh", "-c", writer(size)], size, runs) / MB
    figures = [
        Figure("logs", f"shell: {what} stored", shell, "MB/s", f">= {SHELL_LOG_MB_PER_S_MIN:g}",
               at_least(shell, SHELL_LOG_MB_PER_S_MIN), bare, "sh read by pipe"),
    ]  # fmt: skip
    if docker:
        containers = conveyor_rate(root / "docker", "docker", size, runs) / MB
        command = [*raw.DOCKER_RUN_NO_LOGS, "sh", "-c", writer(size)]
        limit = raw_rate(command, size, runs) / MB
        bound = DOCKER_LOG_SHARE_MIN * limit
        figures.append(
            Figure("logs", f"docker: {what} stored", containers, "MB/s",
                   f">= {bound:.1f} (75% of raw)", at_least(containers, bound),
                   limit, "docker run, stdout read"),
        )  # fmt: skip
    return figures
