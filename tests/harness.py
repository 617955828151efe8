"""Real processes for integration and fault tests: a coordinator, agents, and CLI calls.

Everything binds to 127.0.0.1; timings are short so lease and reaper behaviour shows in seconds.
Agents use the fake executor unless a test asks for another (``executor="docker"`` for what
needs containers), so what needs Docker is visible and nothing else does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from tests.databases import DATABASES

CLI = [sys.executable, "-m", "conveyor.cli.main"]
AGENT_TOKEN = "test-agent-token"
CLIENT_TOKEN = "test-client-token"
START_TIMEOUT_S = 20.0


def wait_for(
    predicate: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout_s: float = 15.0) -> int | None:
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


@dataclass
class Cluster:
    root: Path
    server_args: Sequence[str] = ()
    # The executor of agents started without one: "fake", "shell" or "docker".
    executor: str = "fake"
    processes: list[Process] = field(default_factory=list)
    address: str = ""
    # The HTTP listener's `host:port` ("" when started with `--http off`).
    http_address: str = ""
    agent_names: set[str] = field(default_factory=set)
    agent_executors: dict[str, str] = field(default_factory=dict)
    # `--db` for the server: a fresh database of the session's backend, kept across restarts;
    # None means the SQLite file in the data dir.
    db_url: str | None = field(default_factory=DATABASES.fresh_server_url)
    # Tokens given as files (`--agent-token-file`, `--token-file`) rather than arguments.
    token_files: bool = False
    # `--tls auto` on the server; agents and CLI calls then verify it with `--ca`.
    tls: bool = False
    # Variables every process and CLI call of the cluster gets on top of the test's own.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "server"

    @property
    def ca_path(self) -> Path:
        """The CA `--tls auto` made (clusters started with `tls`)."""
        return self.data_dir / "tls" / "ca.pem"

    def _ca_option(self) -> tuple[str, ...]:
        return ("--ca", str(self.ca_path)) if self.tls else ()

    @property
    def uses_docker(self) -> bool:
        """Whether any agent ran steps in Docker (then closing removes what they left)."""
        return "docker" in self.agent_executors.values()

    def _spawn(self, name: str, args: Sequence[str], env: dict[str, str] | None = None) -> Process:
        log_path = self.root / f"{name}.log"
        handle = log_path.open("ab")
        popen = subprocess.Popen(
            [*CLI, *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, **(env or {})},
            start_new_session=True,
        )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def server_argv(self) -> list[str]:
        """The `conveyor server` arguments this cluster starts its coordinator with."""
        listen = self.address or "127.0.0.1:0"
        return [
            "server",
            "--listen",
            listen,
            # A free port each start: parallel tests never meet on the default one.
            "--http",
            "127.0.0.1:0",
            "--data-dir",
            str(self.data_dir),
            *self._token_option("--agent-token", AGENT_TOKEN),
            *self._token_option("--client-token", CLIENT_TOKEN),
            "--lease-ttl",
            "4",
            "--renew-interval",
            "1",
            "--reaper-period",
            "0.5",
            "--poll-timeout",
            "5",
            *(("--db", self.db_url) if self.db_url else ()),
            *(("--tls", "auto") if self.tls else ()),
            *self.server_args,
        ]

    def _token_option(self, flag: str, token: str) -> tuple[str, str]:
        """`flag token`, or with `token_files` `flag-file FILE` for the harness's own tokens."""
        if not self.token_files or token not in (AGENT_TOKEN, CLIENT_TOKEN):
            return flag, token
        path = self.root / ("agent-token.txt" if token == AGENT_TOKEN else "client-token.txt")
        path.write_text(token + "\n")
        return f"{flag}-file", str(path)

    def start_server(self) -> Process:
        addr_file = self.data_dir / "server.addr"
        addr_file.unlink(missing_ok=True)
        process = self._spawn("server", self.server_argv())
        wait_for(
            lambda: addr_file.exists() or process.popen.poll() is not None,
            START_TIMEOUT_S,
            "the coordinator to listen",
        )
        assert process.popen.poll() is None, process.log()
        self.address = addr_file.read_text().strip()
        http_file = self.data_dir / "http.addr"
        self.http_address = http_file.read_text().strip() if http_file.exists() else ""
        return process

    def start_agent(
        self,
        name: str,
        *,
        labels: str = "",
        concurrency: int = 1,
        token: str = AGENT_TOKEN,
        wait: bool = True,
        extra: Sequence[str] = (),
        via: str | None = None,
        executor: str | None = None,
        allow_local_git: bool = True,
    ) -> Process:
        """Starts an agent; `via` is another address to reach the coordinator (a proxy).

        `executor` defaults to the cluster's; a "docker" agent needs the `docker_ready` fixture.
        Tests build from git repositories in their temp dirs, so agents allow local git sources
        unless `allow_local_git` is False.
        """
        executor = executor or self.executor
        self.agent_names.add(name)
        self.agent_executors[name] = executor
        token_flag, token_value = self._token_option("--token", token)
        options = {
            "--coordinator": via or self.address,
            token_flag: token_value,
            "--name": name,
            "--labels": labels,
            "--concurrency": str(concurrency),
            "--work-dir": str(self.root / f"agent-{name}"),
            "--stop-grace": "1",
            "--executor": executor,
        }
        args = [arg for pair in options.items() for arg in pair]
        if allow_local_git:
            args.append("--allow-local-git")
        args.extend(self._ca_option())
        process = self._spawn(f"agent-{name}", ["agent", *args, *extra])
        if wait:
            self.wait_for_agent(name)
        return process

    def wait_for_agent(self, name: str) -> None:
        wait_for(
            lambda: any(a["name"] == name and a["state"] == "online" for a in self.json("agents")),
            START_TIMEOUT_S,
            f"agent {name} to register",
        )

    def cli(
        self, *args: str, token: str = CLIENT_TOKEN, timeout_s: float = 120.0
    ) -> subprocess.CompletedProcess[bytes]:
        command = [
            *CLI,
            *args,
            "--coordinator",
            self.address,
            *self._token_option("--token", token),
            *self._ca_option(),
        ]
        return subprocess.run(
            command,
            capture_output=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, **self.env},
        )

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr.decode()
        return json.loads(result.stdout)

    def show(self, build_id: int) -> dict[str, Any]:
        doc: dict[str, Any] = self.json("show", str(build_id))
        return doc

    def wait_build(
        self,
        build_id: int,
        predicate: Callable[[dict[str, Any]], bool],
        timeout_s: float,
        what: str,
    ) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            lambda: (doc := self.show(build_id)) and predicate(doc) and doc,
            timeout_s,
            what,
            every_s=0.2,
        )
        return result

    def close(self) -> None:
        # The agents stop together (each takes its own second or so to leave), then the server:
        # one at a time, a cluster's teardown cost the sum of its agents' exits.
        _stop_together([p for p in reversed(self.processes) if p.name != "server"])
        _stop_together([p for p in reversed(self.processes) if p.name == "server"])
        if self.uses_docker:
            remove_containers(lambda labels: labels.get("conveyor.agent") in self.agent_names)
            remove_volumes(self.agent_names)
            remove_networks(self.agent_names)

    def containers_of_build(self, build_id: int) -> list[Any]:
        assert self.uses_docker, "only Docker agents run containers"
        found = _containers({"label": f"conveyor.build={build_id}"})
        return [c for c in found if c.attrs["Labels"].get("conveyor.agent") in self.agent_names]


def _stop_together(processes: list[Process], timeout_s: float = 15.0) -> None:
    """What Process.stop does (one SIGTERM, then SIGKILL past the timeout), for all at once."""
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def job(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(j for j in doc["jobs"] if j["name"] == name)
    return found


def _containers(filters: dict[str, str | list[str] | bool]) -> list[Any]:
    # sparse: a full listing inspects each container and fails if one vanishes meanwhile.
    client = docker.from_env()
    return list(client.containers.list(all=True, sparse=True, filters=filters))


def remove_volumes(agent_names: set[str]) -> None:
    """Workspaces of agents a test killed: nobody restarts them to clean up after themselves."""
    client = docker.from_env()
    for volume in client.volumes.list(filters={"label": "conveyor.agent"}):
        if (volume.attrs.get("Labels") or {}).get("conveyor.agent") in agent_names:
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)


def remove_networks(agent_names: set[str]) -> None:
    """Per-attempt networks of agents a test killed."""
    client = docker.from_env()
    for network in client.networks.list(filters={"label": "conveyor.agent"}):
        if (network.attrs.get("Labels") or {}).get("conveyor.agent") in agent_names:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


def remove_containers(match: Callable[[dict[str, str]], bool]) -> None:
    for container in _containers({"label": "conveyor.agent"}):
        if match(container.attrs.get("Labels") or {}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


def write_pipeline(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path
