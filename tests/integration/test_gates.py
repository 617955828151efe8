"""Approval gates end to end: real coordinator and agents (fake executor) and the CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.harness import CLI, CLIENT_TOKEN, Cluster, job, wait_for, write_pipeline

GATED = """
name: gated
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "echo pumpkin > shop.tar"}]
    artifacts: [shop.tar]
  ship-it:
    needs: [build]
    approval: {prompt: "Ship to production?", timeout: TIMEOUT}
  production:
    needs: [ship-it]
    steps: [{run: "cat shop.tar"}]
"""

WAIT_S = 60.0


def submit(cluster: Cluster, tmp_path: Path, timeout: str = "1h") -> int:
    path = write_pipeline(tmp_path, "gated.yml", GATED.replace("TIMEOUT", timeout))
    result = cluster.cli("run", str(path), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


def wait_gate(cluster: Cluster, build_id: int) -> dict[str, Any]:
    return cluster.wait_build(
        build_id,
        lambda doc: job(doc, "ship-it")["status"] == "waiting_for_approval",
        WAIT_S,
        "the gate to wait for approval",
    )


def wait_end(cluster: Cluster, build_id: int) -> dict[str, Any]:
    return cluster.wait_build(
        build_id,
        lambda doc: doc["status"] != "running" and doc["status"] != "queued",
        WAIT_S,
        "the build to end",
    )


def test_approve_lets_the_build_go_on_once_with_the_gates_artifacts(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    build_id = submit(shared_cluster, tmp_path)
    doc = wait_gate(shared_cluster, build_id)
    gate = job(doc, "ship-it")
    assert (gate["reason"], gate["message"], gate["attempts"]) == (
        "waiting_for_approval",
        "Ship to production?",
        0,
    )
    assert gate["approval"]["decision"] is None
    assert job(doc, "production")["status"] == "waiting"
    shown = shared_cluster.cli("show", str(build_id))
    assert b"waiting_for_approval" in shown.stdout and b"Ship to production?" in shown.stdout
    approved = shared_cluster.cli(
        "approve", str(build_id), "ship-it", "--comment", "pumpkins are fine", "--json"
    )
    assert approved.returncode == 0, approved.stderr.decode()
    said = json.loads(approved.stdout)
    assert (said["decision"], said["by"], said["comment"]) == (
        "approved",
        "admin",
        "pumpkins are fine",
    )
    doc = wait_end(shared_cluster, build_id)
    assert doc["status"] == "succeeded"
    approval = job(doc, "ship-it")["approval"]
    assert {k: approval[k] for k in ("prompt", "decision", "by", "comment")} == {
        "prompt": "Ship to production?",
        "decision": "approved",
        "by": "admin",
        "comment": "pumpkins are fine",
    }
    assert approval["at_ms"] >= doc["created_at_ms"]
    # Transparent for artifacts: production read the file build made, through the gate.
    logs = shared_cluster.cli("logs", str(build_id), "production")
    assert logs.stdout == b"pumpkin\n", logs.stderr.decode()
    again = shared_cluster.cli("approve", str(build_id), "ship-it")
    assert again.returncode == 2
    assert b"already decided" in again.stderr
    assert shared_cluster.show(build_id) == doc


def test_reject_fails_the_gate_and_skips_what_needs_it(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    build_id = submit(shared_cluster, tmp_path)
    wait_gate(shared_cluster, build_id)
    rejected = shared_cluster.cli("reject", str(build_id), "ship-it", "--comment", "not today")
    assert rejected.returncode == 0, rejected.stderr.decode()
    assert b"rejected by admin" in rejected.stdout
    doc = wait_end(shared_cluster, build_id)
    assert doc["status"] == "failed"
    gate, production = job(doc, "ship-it"), job(doc, "production")
    assert (gate["status"], gate["reason"]) == ("failed", "rejected")
    assert gate["approval"]["decision"] == "rejected"
    assert (production["status"], production["reason"]) == ("skipped", "dependency_failed")


def test_an_undecided_gate_fails_with_timeout(shared_cluster: Cluster, tmp_path: Path) -> None:
    build_id = submit(shared_cluster, tmp_path, timeout="2s")
    doc = wait_end(shared_cluster, build_id)
    gate = job(doc, "ship-it")
    assert (doc["status"], gate["status"], gate["reason"]) == ("failed", "failed", "timeout")
    assert job(doc, "production")["status"] == "skipped"
    late = shared_cluster.cli("approve", str(build_id), "ship-it")
    assert late.returncode == 2
    assert b"nothing to decide" in late.stderr


def test_run_prints_the_approve_command_while_it_waits(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "gated.yml", GATED.replace("TIMEOUT", "1h"))
    command = [*CLI, "run", str(path), "--coordinator", shared_cluster.address]
    follower = subprocess.Popen(
        [*command, "--token", CLIENT_TOKEN], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert follower.stdout is not None
        lines: list[bytes] = []

        def saw_command() -> bool:
            line = follower.stdout.readline() if follower.stdout else b""
            lines.append(line)
            return b"conveyor approve " in line or follower.poll() is not None

        wait_for(saw_command, WAIT_S, "the approve command in run's output")
        waiting = lines[-1].decode()
        build_id = int(waiting.split("conveyor approve ")[1].split()[0])
        assert f"conveyor approve {build_id} ship-it" in waiting
        assert "Ship to production?" in waiting
        approved = shared_cluster.cli("approve", str(build_id), "ship-it")
        assert approved.returncode == 0, approved.stderr.decode()
        out, err = follower.communicate(timeout=WAIT_S)
        assert follower.returncode == 0, err.decode()
        assert b"build " + str(build_id).encode() + b" succeeded" in out
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_a_waiting_gate_and_its_decision_survive_a_coordinator_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_agent("host")
    build_id = submit(cluster, tmp_path)
    wait_gate(cluster, build_id)
    cluster.processes[0].stop()
    cluster.start_server()
    assert job(wait_gate(cluster, build_id), "ship-it")["reason"] == "waiting_for_approval"
    approved = cluster.cli("approve", str(build_id), "ship-it", "--comment", "after restart")
    assert approved.returncode == 0, approved.stderr.decode()
    cluster.processes[-1].stop()
    cluster.start_server()
    doc = wait_end(cluster, build_id)
    assert doc["status"] == "succeeded"
    assert job(doc, "ship-it")["approval"]["comment"] == "after restart"


def test_a_deployment_after_a_gate_records_its_approval_and_the_artifacts_through_it(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    """DESIGN §4.1: a deployment records the approvals on its path and exactly the artifacts
    its job received, which come through the gate from the gate's needs."""
    cluster.start_agent(f"a-{unique}")
    text = GATED.replace("TIMEOUT", "1h").replace(
        "  production:\n", "  production:\n    environment: production\n"
    )
    path = write_pipeline(tmp_path, "deploy.yml", text)
    result = cluster.cli("run", str(path), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]
    wait_gate(cluster, build_id)
    approved = cluster.cli("approve", str(build_id), "ship-it", "--comment", "looks tasty")
    assert approved.returncode == 0, approved.stderr.decode()
    assert wait_end(cluster, build_id)["status"] == "succeeded"

    (deployment,) = cluster.json("deployments", "production")["deployments"]
    built = next(a for a in cluster.json("artifacts", str(build_id))["artifacts"])
    assert deployment["artifacts"] == [
        {"job": "build", "name": "shop.tar", "sha256": built["sha256"]}
    ]
    (approval,) = deployment["approvals"]
    assert {k: approval[k] for k in ("job", "by", "decision", "comment")} == {
        "job": "ship-it",
        "by": "admin",
        "decision": "approved",
        "comment": "looks tasty",
    }
    assert approval["at_ms"] > 0
