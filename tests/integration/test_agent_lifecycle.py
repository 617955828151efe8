"""The agent starts, stops on SIGTERM promptly, and leaves nothing running behind.

Fake-executor agents, except where containers are the point."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline


def _state(cluster: Cluster, name: str) -> str:
    state: str = next(a["state"] for a in cluster.json("agents") if a["name"] == name)
    return state


@pytest.mark.any_store  # the agent's own shutdown; it holds no attempt
def test_idle_agent_exits_cleanly_on_sigterm(cluster: Cluster, unique: str) -> None:
    agent = cluster.start_agent(f"idle-{unique}")
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(10) == 0
    assert time.monotonic() - started < 5


@pytest.mark.any_store  # the agent's own shutdown; it holds no attempt
def test_agent_stops_on_sigterm_while_coordinator_is_down(cluster: Cluster, unique: str) -> None:
    agent = cluster.start_agent(f"orphan-{unique}")
    cluster.processes[0].kill()  # the coordinator
    time.sleep(1)
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(10) == 0
    assert time.monotonic() - started < 5


@pytest.mark.docker
def test_stopped_agent_ends_its_attempt_and_removes_containers(
    docker_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = docker_cluster
    agent_name = f"busy-{unique}"
    agent = cluster.start_agent(agent_name)
    text = (
        "name: s\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n"
        "      - run: echo up; sleep 300\n"
    )
    path = write_pipeline(tmp_path, "nap.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "nap").stdout == b"up\n", 30, "the step to start"
    )
    agent.signal(signal.SIGTERM)  # drain: the step goes on
    wait_for(lambda: _state(cluster, agent_name) == "draining", 10, "the agent to show draining")
    assert job(cluster.show(build_id), "nap")["status"] == "running"
    agent.signal(signal.SIGTERM)  # stop: the step is ended
    assert agent.popen.wait(15) == 0
    doc = cluster.show(build_id)
    nap = job(doc, "nap")
    assert (nap["status"], nap["reason"]) == ("failed", "agent_stopped")
    assert doc["status"] == "failed"
    assert cluster.containers_of_build(build_id) == []


def test_drained_agent_finishes_running_job_then_exits(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    name = f"drainee-{unique}"
    agent = cluster.start_agent(name)
    text = (
        "name: d\nimage: conveyor/busybox\njobs:\n  first:\n    steps:\n"
        "      - run: echo up; sleep 2; echo done\n  second:\n    needs: [first]\n"
        "    steps: [{run: 'true'}]\n"
    )
    path = write_pipeline(tmp_path, "d.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "first").stdout == b"up\n",
        30,
        "the step to start",
    )
    agent.signal(signal.SIGTERM)
    assert agent.popen.wait(30) == 0
    doc = cluster.show(build_id)
    assert job(doc, "first")["status"] == "succeeded"
    assert cluster.cli("logs", str(build_id), "first").stdout == b"up\ndone\n"
    # The drained agent took no new work: the dependent job still waits for an agent.
    second = job(doc, "second")
    assert (second["status"], second["attempts"]) == ("queued", 0)
    cluster.cli("cancel", str(build_id))


def test_operator_pause_resume_and_drain(cluster: Cluster, unique: str, tmp_path: Path) -> None:
    name = f"managed-{unique}"
    agent = cluster.start_agent(name)
    paused = cluster.cli("pause", name)
    assert paused.returncode == 0, paused.stderr.decode()
    assert _state(cluster, name) == "paused"
    text = "name: p\nimage: conveyor/busybox\njobs:\n  j:\n    steps: [{run: echo ran}]\n"
    path = write_pipeline(tmp_path, "p.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    time.sleep(1.5)
    waiting = job(cluster.show(build_id), "j")
    assert (waiting["status"], waiting["reason"]) == ("queued", "waiting_for_capacity")
    assert waiting["message"] == f"agent {name} is paused"  # not "all matching agents are busy"
    assert cluster.cli("resume", name).returncode == 0
    cluster.wait_build(build_id, lambda d: d["status"] == "succeeded", 30, "the build after resume")
    assert cluster.cli("drain", name).returncode == 0
    assert agent.popen.wait(15) == 0  # idle, so it exits at once
    missing = cluster.cli("pause", "no-such-agent")
    assert missing.returncode == 2
    assert b"no agent named 'no-such-agent'" in missing.stderr
