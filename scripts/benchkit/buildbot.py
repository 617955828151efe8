"""Buildbot on loopback, for the `peers` scenario: its install, a master with workers, a client.

Buildbot is installed from the package index into a virtualenv of its own, kept between runs
under the user's cache directory (keyed by version; installing it takes minutes, reusing it
nothing). The master has one builder whose one step runs `true` on any of its workers, and a
`ForceScheduler`; builds are forced through the REST API's JSON-RPC control call over one
persistent HTTP connection, and their completion is pushed back over Buildbot's WebSocket
event stream (polling the REST API would cost the master CPU on every poll).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.config import (
    BUILD_TIMEOUT_S,
    BUILDBOT_INSTALL_TIMEOUT_S,
    BUILDBOT_REQUEST_TIMEOUT_S,
    BUILDBOT_VERSION,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
)
from benchkit.procs import wait_until
from benchkit.wsclient import WebSocket

LOGGER = logging.getLogger(__name__)
PACKAGES = ("buildbot", "buildbot-worker", "buildbot-www")  # www serves the REST API
BUILDER = "true"
SCHEDULER = "force"
WORKER_PASSWORD = "bench-worker-password"
SUCCESS = 0  # Buildbot's result code of a build that succeeded

MASTER_CFG = """\
# Written by scripts/bench (peers): one builder running `true`, forced through the REST API.
from buildbot.plugins import schedulers, steps, util, worker

names = {names!r}
c = BuildmasterConfig = {{}}
c["workers"] = [worker.Worker(name, {password!r}) for name in names]
c["protocols"] = {{"pb": {{"port": "tcp:{pb_port}:interface=127.0.0.1"}}}}
c["schedulers"] = [schedulers.ForceScheduler(name={scheduler!r}, builderNames=[{builder!r}])]
c["builders"] = [
    util.BuilderConfig(
        name={builder!r},
        workernames=names,
        factory=util.BuildFactory([steps.ShellCommand(command=["true"])]),
    )
]
# Every forced build is built: requests for the same sources are not merged into one build.
c["collapseRequests"] = False
c["title"] = "bench"
c["buildbotURL"] = "http://127.0.0.1:{http_port}/"
c["www"] = {{"port": "tcp:{http_port}:interface=127.0.0.1", "plugins": {{}}}}
c["db"] = {{"db_url": "sqlite:///state.sqlite"}}
c["buildbotNetUsageData"] = None
"""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "conveyor-bench"


def install(version: str = BUILDBOT_VERSION) -> Path:
    """The bin directory of a virtualenv holding Buildbot `version`, installed if not cached."""
    venv = cache_root() / f"buildbot-{version}"
    done = venv / ".installed"
    if done.exists():
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)  # a half-done install from an interrupted run
    LOGGER.info("installing Buildbot %s into %s (once; minutes) ...", version, venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{package}=={version}" for package in PACKAGES]
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins],
        check=True,
        timeout=BUILDBOT_INSTALL_TIMEOUT_S,
    )
    done.write_text(version + "\n")
    return venv / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Master:
    """A Buildbot master and its workers under `root`; stop() ends every process it started."""

    root: Path
    bin: Path
    http_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pid: int = 0

    def _run(self, *args: str) -> None:
        log = self.root / "setup.log"
        with log.open("ab") as out:
            subprocess.run(args, check=True, stdout=out, stderr=subprocess.STDOUT, cwd=self.root)

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        self.processes.append(process)
        return process

    def start(self, workers: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        names = [f"worker-{index}" for index in range(workers)]
        self.http_port, pb_port = free_port(), free_port()
        master = self.root / "master"
        self._run(str(self.bin / "buildbot"), "create-master", "--quiet", str(master))
        (master / "master.cfg").write_text(
            MASTER_CFG.format(
                names=names, password=WORKER_PASSWORD, pb_port=pb_port, http_port=self.http_port,
                scheduler=SCHEDULER, builder=BUILDER,
            )
        )  # fmt: skip
        for name in names:
            self._run(
                str(self.bin / "buildbot-worker"), "create-worker", "--quiet",
                str(self.root / name), f"127.0.0.1:{pb_port}", name, WORKER_PASSWORD,
            )  # fmt: skip
        self.pid = self._spawn("master", str(self.bin / "buildbot"), "start", "--nodaemon",
                               str(master)).pid  # fmt: skip
        for name in names:
            self._spawn(name, str(self.bin / "buildbot-worker"), "start", "--nodaemon",
                        str(self.root / name))  # fmt: skip
        client = RestClient(self.http_port)
        try:
            wait_until(
                lambda: self._connected(client) >= workers, START_TIMEOUT_S, "Buildbot workers"
            )
        finally:
            client.close()

    def _connected(self, client: RestClient) -> int:
        if any(process.poll() is not None for process in self.processes):
            raise RuntimeError(f"a Buildbot process ended; see the logs in {self.root}")
        try:
            found = client.get("workers?field=name&field=connected_to")["workers"]
        except OSError:  # the master is not listening yet
            client.reset()
            return 0
        return sum(1 for worker in found if worker["connected_to"])

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                LOGGER.warning("Buildbot process %d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()


class RestClient:
    """Buildbot's REST API over one persistent HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._connection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=BUILDBOT_REQUEST_TIMEOUT_S
        )

    def reset(self) -> None:
        self._connection.close()
        self._connection = http.client.HTTPConnection(
            "127.0.0.1", self._port, timeout=BUILDBOT_REQUEST_TIMEOUT_S
        )

    def close(self) -> None:
        self._connection.close()

    def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self._connection.request(method, f"/api/v2/{path}", body=body, headers=headers)
        response = self._connection.getresponse()
        data = response.read()  # read whole, so the connection can carry the next request
        if response.status != 200:
            raise RuntimeError(f"Buildbot {method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def force(self) -> int:
        """Forces one build of the builder; returns its buildset's id."""
        call = {"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderid": "1"}}
        reply = self._request("POST", f"forceschedulers/{SCHEDULER}", json.dumps(call).encode())
        if "error" in reply:
            raise RuntimeError(f"Buildbot refused to force a build: {reply['error']}")
        bsid: int = reply["result"][0]
        return bsid


class Completions:
    """Buildbot's event stream (its `/ws` WebSocket), subscribed to buildsets completing."""

    def __init__(self, port: int) -> None:
        self._socket = WebSocket("127.0.0.1", port, "/ws", BUILD_TIMEOUT_S)
        self._results: dict[int, int] = {}  # bsid -> result code, as completions arrive
        call = {"cmd": "startConsuming", "path": "buildsets/*/complete", "_id": 1}
        self._socket.send_text(json.dumps(call))
        while (reply := json.loads(self._socket.receive_text())).get("_id") != 1:
            pass
        if reply.get("code") != 200:
            raise RuntimeError(f"Buildbot refused the subscription: {reply}")

    def wait(self, bsids: list[int]) -> int:
        """Reads completions until every buildset of `bsids` is complete; returns how many
        did not succeed (completions may arrive before their force call has answered)."""
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while not set(bsids) <= self._results.keys():
            if time.monotonic() > deadline:
                raise RuntimeError(f"Buildbot builds not finished after {BUILD_TIMEOUT_S:g} s")
            event = json.loads(self._socket.receive_text())
            if "m" in event and event.get("k", "").endswith("/complete"):
                self._results[int(event["m"]["bsid"])] = int(event["m"]["results"])
        return sum(1 for bsid in bsids if self._results[bsid] != SUCCESS)

    def close(self) -> None:
        self._socket.close()
