"""Cancellation reaches a running step fast and leaves no container behind (Docker); canceling
a queued or finished build runs nothing (fake executor)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline

SLEEPER = """
name: sleeper
image: conveyor/busybox
jobs:
  long:
    steps:
      - name: nap
        run: echo started; sleep 300
      - name: after
        run: echo never
  later:
    needs: [long]
    steps: [{run: "true"}]
"""


@pytest.mark.docker
def test_cancel_stops_running_step_within_seconds(
    docker_shared_cluster: Cluster, tmp_path: Path
) -> None:
    shared_cluster = docker_shared_cluster
    path = write_pipeline(tmp_path, "sleeper.yml", SLEEPER)
    submitted = shared_cluster.cli("run", str(path), "--no-follow", "--json")
    assert submitted.returncode == 0, submitted.stderr.decode()
    build_id = json.loads(submitted.stdout)["id"]
    wait_for(
        lambda: shared_cluster.cli("logs", str(build_id), "long").stdout == b"started\n",
        30,
        "the step to start",
    )
    assert shared_cluster.containers_of_build(build_id), "the step's container should be running"

    # Measured on the coordinator's record of when the step ended, not by polling: on a loaded
    # machine the CLI processes of this test alone take seconds to start.
    asked_ms = time.time() * 1000
    cancel = shared_cluster.cli("cancel", str(build_id))
    assert cancel.returncode == 0, cancel.stderr.decode()
    doc = shared_cluster.wait_build(
        build_id, lambda d: d["status"] == "canceled", 30, "the build to be canceled"
    )
    nap = job(doc, "long")["steps"][0]
    assert nap["finished_at_ms"] - asked_ms < 5000, "the step should stop within seconds"
    long = job(doc, "long")
    assert (long["status"], long["reason"]) == ("canceled", "canceled")
    assert [s["status"] for s in long["steps"]] == ["canceled", "skipped"]
    assert job(doc, "later")["status"] in ("canceled", "skipped")
    wait_for(
        lambda: not shared_cluster.containers_of_build(build_id),
        5,
        "the attempt's containers to be removed",
    )


def test_cancel_of_queued_build_and_finished_build(shared_cluster: Cluster, tmp_path: Path) -> None:
    text = (
        "name: q\nimage: conveyor/busybox\njobs:\n  x:\n    labels: {os: none}\n"
        "    steps: [{run: 'true'}]\n"
    )
    path = write_pipeline(tmp_path, "q.yml", text)
    build_id = json.loads(shared_cluster.cli("run", str(path), "--no-follow", "--json").stdout)[
        "id"
    ]
    assert shared_cluster.cli("cancel", str(build_id)).returncode == 0
    doc = shared_cluster.show(build_id)
    assert (doc["status"], job(doc, "x")["status"], job(doc, "x")["attempts"]) == (
        "canceled",
        "canceled",
        0,
    )
    # Canceling a canceled build changes nothing and is not an error.
    again = shared_cluster.cli("cancel", str(build_id))
    assert again.returncode == 0
    assert again.stdout.decode().strip() == f"build {build_id}: canceled"
    assert shared_cluster.show(build_id) == doc
    missing = shared_cluster.cli("cancel", "99999")
    assert missing.returncode == 2
    assert b"build 99999 does not exist" in missing.stderr


def test_cancel_of_a_finished_build_says_it_had_finished(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    text = "name: quick\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'true'}]\n"
    done = shared_cluster.json("run", str(write_pipeline(tmp_path, "quick.yml", text)))
    assert done["status"] == "succeeded"
    result = shared_cluster.cli("cancel", str(done["id"]))
    out = result.stdout.decode()
    assert result.returncode == 1, (out, result.stderr.decode())
    assert out.strip() == f"build {done['id']}: had already finished (succeeded); nothing to cancel"
    assert "cancel requested" not in out
    assert shared_cluster.show(done["id"])["status"] == "succeeded"
    as_json = shared_cluster.cli("cancel", str(done["id"]), "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "succeeded"
