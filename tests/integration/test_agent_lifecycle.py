"""The agent starts, stops on SIGTERM promptly, and leaves nothing running behind."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline

pytestmark = pytest.mark.docker


def test_idle_agent_exits_cleanly_on_sigterm(cluster: Cluster, unique: str) -> None:
    agent = cluster.start_agent(f"idle-{unique}")
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(10) == 0
    assert time.monotonic() - started < 5


def test_agent_stops_on_sigterm_while_coordinator_is_down(cluster: Cluster, unique: str) -> None:
    agent = cluster.start_agent(f"orphan-{unique}")
    cluster.processes[0].kill()  # the coordinator
    time.sleep(1)
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(10) == 0
    assert time.monotonic() - started < 5


def test_stopped_agent_ends_its_attempt_and_removes_containers(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    agent = cluster.start_agent(f"busy-{unique}")
    text = (
        "name: s\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n"
        "      - run: echo up; sleep 300\n"
    )
    path = write_pipeline(tmp_path, "nap.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "nap").stdout == b"up\n", 30, "the step to start"
    )
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(15) == 0
    doc = cluster.show(build_id)
    nap = job(doc, "nap")
    assert (nap["status"], nap["reason"]) == ("failed", "agent_stopped")
    assert doc["status"] == "failed"
    assert cluster.containers_of_build(build_id) == []
