"""Real coordinator and agent processes for one scenario, and what /proc says about them."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.config import START_TIMEOUT_S, STOP_TIMEOUT_S
from conveyor.cli.client import Client

LOGGER = logging.getLogger(__name__)
CLI = [sys.executable, "-m", "conveyor.cli.main"]
AGENT_TOKEN = "bench-agent-token"
CLIENT_TOKEN = "bench-client-token"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Set by `scripts/bench --profile DIR`: every coordinator is sampled by py-spy into DIR.
PROFILE_DIR: Path | None = None
# Set by `scripts/bench` for a PostgreSQL pass: every coordinator gets a fresh database on this
# server (its admin URL).
POSTGRES_URL: str | None = None


def fresh_database(admin_url: str) -> str:
    """Creates an empty database on the PostgreSQL server of `admin_url` (a user allowed to
    CREATE DATABASE) and returns its URL."""
    import psycopg  # only with --postgres
    from psycopg import sql

    name = f"conveyor_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{admin_url.rpartition('/')[0]}/{name}"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def peak_rss_mb(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1_000_000
    raise RuntimeError(f"no VmHWM for process {pid}")


def wait_until(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not (callable(predicate) and predicate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Farm:
    """A coordinator and its agents, all under `root`; stop() ends every process it started."""

    root: Path
    address: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    coordinator_pid: int = 0
    profiler: subprocess.Popen[bytes] | None = None

    def _spawn(self, name: str, args: Sequence[str]) -> subprocess.Popen[bytes]:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_coordinator(self) -> None:
        data = self.root / "server"
        database = [] if POSTGRES_URL is None else ["--db", fresh_database(POSTGRES_URL)]
        process = self._spawn(
            "coordinator",
            ["server", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data-dir", str(data),
             "--agent-token", AGENT_TOKEN, "--client-token", CLIENT_TOKEN, *database],
        )  # fmt: skip
        addr = data / "server.addr"
        wait_until(lambda: addr.exists() or process.poll() is not None, START_TIMEOUT_S, "server")
        if process.poll() is not None:
            raise RuntimeError(f"the coordinator did not start; see {self.root}/coordinator.log")
        self.address = addr.read_text().strip()
        self.coordinator_pid = process.pid
        if PROFILE_DIR is not None:
            name = "-".join(self.root.parts[-2:])
            if POSTGRES_URL is not None:  # the same scenario's SQLite profile is beside it
                name += "-postgresql"
            self._start_profiler(process.pid, PROFILE_DIR / f"coordinator-{name}.txt")

    def _start_profiler(self, pid: int, out: Path) -> None:
        """py-spy samples the coordinator until it exits; stop() stops the coordinator first."""
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        out.parent.mkdir(parents=True, exist_ok=True)
        log = (self.root / "py-spy.log").open("ab")
        command = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--threads",
                   "--rate", "200", "--output", str(out)]  # fmt: skip
        self.profiler = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        LOGGER.info("profiling the coordinator into %s", out)

    def client(self) -> Client:
        return Client(self.address, CLIENT_TOKEN)

    def start_agents(
        self,
        count: int,
        executor: str,
        concurrency: int = 1,
        stem: str = "",
        extra: Sequence[str] = (),
    ) -> None:
        """`stem` (default: the executor) starts the agents' names; `extra` are more flags."""
        names = [f"{stem or executor}-{index}" for index in range(count)]
        for name in names:
            self._spawn(
                f"agent-{name}",
                ["agent", "--coordinator", self.address, "--token", AGENT_TOKEN, "--name", name,
                 "--work-dir", str(self.root / name), "--executor", executor,
                 "--concurrency", str(concurrency), "--stop-grace", "1", *extra],
            )  # fmt: skip
        client = self.client()
        try:
            wanted = set(names)
            wait_until(
                lambda: wanted <= {a.name for a in client.agents() if a.state == "online"},
                START_TIMEOUT_S,
                f"{count} agents to register",
            )
        finally:
            client.close()

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                LOGGER.warning("process %d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
        if self.profiler is not None:  # it writes the profile once the coordinator has ended
            self.profiler.wait(STOP_TIMEOUT_S)
