"""cli: the `conveyor` command's own start-up, as a user runs it, beside a bare interpreter's
(and, for `conveyor run`, beside an interpreter that has only loaded grpcio, the floor of any
Python client speaking gRPC).

`conveyor --version`, and `conveyor run` of a one-step pipeline on a shell agent (start-up,
submission, following, exit), each a fresh process: wall time, and the CPU time the process
used (from its rusage), which other load on the machine disturbs far less than wall time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchkit import builds
from benchkit.config import CLI_RUN_MAX_S, CLI_VERSION_MAX_S, Sizes
from benchkit.figures import Figure, at_most, median
from benchkit.procs import CLI, CLIENT_TOKEN, Farm

WARM_UP_RUNS = 1  # page cache, .pyc files, the agent's first job


def user_env() -> dict[str, str]:
    """The environment as a user's shell has it: bytecode written once and then read, even when
    the bench itself runs with PYTHONDONTWRITEBYTECODE (else every run compiles every module)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def conveyor_command() -> list[str]:
    """The installed `conveyor` script beside this interpreter, as users run it."""
    script = Path(sys.executable).parent / "conveyor"
    return [str(script)] if script.exists() else CLI


def timed(command: Sequence[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process) of one run, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=user_env()
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def sample(command: Sequence[str], runs: int) -> tuple[float, float]:
    """Medians of (wall, CPU) over `runs`, after the warm-up runs."""
    for _ in range(WARM_UP_RUNS):
        timed(command)
    walls, cpus = zip(*(timed(command) for _ in range(runs)), strict=True)
    return median(walls), median(cpus)


def run(root: Path, sizes: Sizes) -> list[Figure]:
    n = sizes.cli_runs
    conveyor = conveyor_command()
    bare_wall, bare_cpu = sample([sys.executable, "-c", "pass"], n)
    # The floor of any client in Python that speaks gRPC: the interpreter and grpcio loaded.
    grpc_wall, grpc_cpu = sample([sys.executable, "-c", "import grpc"], n)
    version_wall, version_cpu = sample([*conveyor, "--version"], n)
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(1, "shell")
        pipeline = root / "cli.yml"
        pipeline.write_text(builds.one_step("true", "cli", "shell"))
        command = [*conveyor, "run", str(pipeline), "--coordinator", farm.address,
                   "--token", CLIENT_TOKEN]  # fmt: skip
        run_wall, run_cpu = sample(command, n)
    finally:
        farm.stop()
    bare = "python -c pass"
    with_grpc = "python -c 'import grpc'"
    return [
        Figure("cli", f"conveyor --version: wall, median of {n}", version_wall, "s",
               f"<= {CLI_VERSION_MAX_S:.3f}", at_most(version_wall, CLI_VERSION_MAX_S),
               bare_wall, bare),
        Figure("cli", f"conveyor --version: CPU, median of {n}", version_cpu, "s",
               limit=bare_cpu, limit_name=bare),
        Figure("cli", f"conveyor run (one shell step): wall, median of {n}", run_wall, "s",
               f"<= {CLI_RUN_MAX_S:.3f}", at_most(run_wall, CLI_RUN_MAX_S), grpc_wall, with_grpc),
        Figure("cli", f"conveyor run (one shell step): CLI CPU, median of {n}", run_cpu, "s",
               limit=grpc_cpu, limit_name=with_grpc),
    ]  # fmt: skip
