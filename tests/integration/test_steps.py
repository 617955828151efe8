"""Step limits and failures through the whole system: timeouts, missing images, follow, retry.

Timeouts and images are about containers (Docker); following and retrying are not (fake)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import CLI, CLIENT_TOKEN, Cluster, job, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store


def _submit(cluster: Cluster, path: Path) -> int:
    result = cluster.cli("run", str(path), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


@pytest.mark.docker
def test_job_timeout_kills_the_step(docker_shared_cluster: Cluster, tmp_path: Path) -> None:
    shared_cluster = docker_shared_cluster
    text = (
        "name: slow\nimage: conveyor/busybox\njobs:\n  slow:\n    timeout: 2s\n"
        "    steps:\n      - run: echo begin; sleep 300\n      - run: echo never\n"
    )
    started = time.monotonic()
    result = shared_cluster.cli("run", str(write_pipeline(tmp_path, "slow.yml", text)), "--json")
    assert result.returncode == 1, result.stderr.decode()
    assert time.monotonic() - started < 20
    doc = json.loads(result.stdout)
    slow = job(doc, "slow")
    assert (slow["status"], slow["reason"]) == ("failed", "timeout")
    assert [s["status"] for s in slow["steps"]] == ["failed", "skipped"]
    assert shared_cluster.containers_of_build(doc["id"]) == []


@pytest.mark.docker
def test_missing_image_fails_fast_naming_it(docker_shared_cluster: Cluster, tmp_path: Path) -> None:
    shared_cluster = docker_shared_cluster
    text = (
        "name: noimage\nimage: conveyor/busybox\njobs:\n  pull:\n"
        "    steps:\n      - image: conveyor/does-not-exist:1\n        run: 'true'\n"
    )
    started = time.monotonic()
    result = shared_cluster.cli("run", str(write_pipeline(tmp_path, "img.yml", text)), "--json")
    assert result.returncode == 1, result.stderr.decode()
    assert time.monotonic() - started < 30
    pull = job(json.loads(result.stdout), "pull")
    assert (pull["status"], pull["reason"]) == ("failed", "image_pull_failed")
    assert "conveyor/does-not-exist:1" in pull["message"]


def test_logs_follow_streams_until_the_step_ends(shared_cluster: Cluster, tmp_path: Path) -> None:
    text = (
        "name: ticks\nimage: conveyor/busybox\njobs:\n  tick:\n    steps:\n"
        # A long pause after the first tick: the test looks at the step while it still runs,
        # through CLI processes that take a while to start on a loaded machine.
        "      - run: echo tick 1; sleep 8; "
        f"{'; '.join(f'echo tick {i}; sleep 0.2' for i in range(2, 6))}\n"
    )
    build_id = _submit(shared_cluster, write_pipeline(tmp_path, "ticks.yml", text))
    follower = subprocess.Popen(
        [
            *CLI,
            "logs",
            str(build_id),
            "tick",
            "--follow",
            "--coordinator",
            shared_cluster.address,
            "--token",
            CLIENT_TOKEN,
        ],
        stdout=subprocess.PIPE,
    )
    assert follower.stdout is not None
    first = follower.stdout.readline()
    assert first == b"tick 1\n"
    # The first line arrived while the step was still running.
    assert job(shared_cluster.show(build_id), "tick")["status"] == "running"
    # Read through the same buffered pipe as readline: it may hold the next lines already
    # (communicate() would read past it, from the raw descriptor).
    rest = follower.stdout.read()
    assert follower.wait(30) == 0
    assert first + rest == b"".join(f"tick {i}\n".encode() for i in range(1, 6))


def test_retry_makes_a_new_attempt_and_keeps_history(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    text = (
        "name: flaky\nimage: conveyor/busybox\njobs:\n  flaky:\n    steps:\n"
        "      - run: exit 4\n  after:\n    needs: [flaky]\n    steps: [{run: 'true'}]\n"
    )
    first = shared_cluster.cli("run", str(write_pipeline(tmp_path, "flaky.yml", text)), "--json")
    assert first.returncode == 1
    build_id = json.loads(first.stdout)["id"]
    assert job(shared_cluster.show(build_id), "after")["status"] == "skipped"
    again = shared_cluster.cli("retry", str(build_id), "--follow", "--json")
    assert again.returncode == 1, again.stderr.decode()
    doc = json.loads(again.stdout)
    flaky = job(doc, "flaky")
    assert (flaky["status"], flaky["attempts"], flaky["exit_code"]) == ("failed", 2, 4)
    assert job(doc, "after")["status"] == "skipped"
    # Retrying only `after` re-evaluates it: its need still failed, so it is skipped again.
    only_after = shared_cluster.cli("retry", str(build_id), "after", "--follow", "--json")
    assert only_after.returncode == 1, only_after.stderr.decode()
    assert job(json.loads(only_after.stdout), "after")["status"] == "skipped"
    missing = shared_cluster.cli("retry", "99999")
    assert missing.returncode == 2
    assert b"build 99999 does not exist" in missing.stderr


def test_logs_follow_of_a_job_that_never_runs_returns(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    text = (
        "name: never\nimage: conveyor/busybox\njobs:\n  first:\n    steps: [{run: 'exit 1'}]\n"
        "  second:\n    needs: [first]\n    steps: [{run: 'true'}]\n"
    )
    build_id = _submit(shared_cluster, write_pipeline(tmp_path, "never.yml", text))
    follow = shared_cluster.cli("logs", str(build_id), "second", "--follow", timeout_s=30)
    assert follow.returncode == 0
    assert follow.stdout == b""
    assert job(shared_cluster.show(build_id), "second")["status"] == "skipped"
