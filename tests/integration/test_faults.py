"""Faults lose nothing: a dead agent's attempt is reaped; a killed coordinator keeps its builds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.harness import CLI, CLIENT_TOKEN, Cluster, job, wait_for, write_pipeline

TTL_PLUS_REAPER_S = 4 + 0.5  # the harness's --lease-ttl and --reaper-period
# The coordinator's SQLite busy timeout: a write waits this long for a lock, then fails.
SQLITE_BUSY_S = 10.0


def test_killed_agent_attempt_is_retried_elsewhere(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    doomed = cluster.start_agent(f"doomed-{unique}")
    text = (
        "name: lost\nimage: conveyor/busybox\njobs:\n  work:\n"
        "    retry: {max: 1, when: [agent_lost]}\n"
        # Long enough that the attempt still runs when the kill lands on a loaded machine.
        "    steps:\n      - run: echo attempt; sleep 8\n"
    )
    path = write_pipeline(tmp_path, "lost.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "work").stdout == b"attempt\n",
        30,
        "the first attempt to start",
    )
    doomed.kill()
    killed_at = time.monotonic()
    cluster.start_agent(f"spare-{unique}")
    doc = cluster.wait_build(build_id, lambda d: d["status"] == "succeeded", 60, "the retry")
    work = job(doc, "work")
    assert work["attempts"] == 2
    assert work["agent"] == f"spare-{unique}"
    full = cluster.show(build_id)
    assert full == doc
    elapsed = time.monotonic() - killed_at
    assert elapsed < TTL_PLUS_REAPER_S + 30


def test_without_retry_rule_lost_agent_fails_the_job(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    doomed = cluster.start_agent(f"doomed-{unique}")
    text = (
        "name: once\nimage: conveyor/busybox\njobs:\n  deploy:\n"
        "    steps:\n      - run: echo deploying; sleep 300\n"
    )
    path = write_pipeline(tmp_path, "once.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "deploy").stdout == b"deploying\n",
        30,
        "the deploy to start",
    )
    doomed.kill()
    killed_at = time.monotonic()
    doc = cluster.wait_build(build_id, lambda d: d["status"] == "failed", 30, "agent_lost")
    assert time.monotonic() - killed_at < TTL_PLUS_REAPER_S + 3
    deploy = job(doc, "deploy")
    assert (deploy["status"], deploy["reason"], deploy["attempts"]) == ("failed", "agent_lost", 1)
    # The coordinator never handed the deploy out twice, so its log has one line.
    assert cluster.cli("logs", str(build_id), "deploy").stdout == b"deploying\n"


# The count's length: long enough (0.4 s a number) that on a loaded machine the kill, which waits
# for `run` to show the first number, still lands while it runs.
COUNT_TO = 24


def test_coordinator_killed_mid_build_keeps_it_and_finishes(
    patient_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = patient_cluster
    cluster.start_agent(f"steady-{unique}")
    text = (
        "name: survive\nimage: conveyor/busybox\njobs:\n  count:\n    steps:\n"
        f"      - run: {'; '.join(f'echo {i}; sleep 0.4' for i in range(1, COUNT_TO + 1))}\n"
        "  then:\n    needs: [count]\n    steps: [{run: echo after}]\n"
    )
    path = write_pipeline(tmp_path, "survive.yml", text)
    connection = ["--coordinator", cluster.address, "--token", CLIENT_TOKEN]
    runner = subprocess.Popen(
        [*CLI, "run", str(path), *connection], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # Its output as it comes: the kill must find `run` following (a slow start under load could
    # open its stream only after the restart, and then it has nothing to reconnect).
    assert runner.stdout is not None
    printed: list[bytes] = []
    reader = threading.Thread(target=lambda: printed.extend(runner.stdout or ()), daemon=True)
    reader.start()
    build_id = wait_for(
        lambda: cluster.json("builds") and cluster.json("builds")[0]["id"],
        30,
        "the build to be submitted",
    )
    follower = subprocess.Popen(
        [*CLI, "logs", str(build_id), "count", "--follow", *connection],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "count").stdout.startswith(b"1\n2\n"),
        30,
        "the count to start",
    )
    wait_for(lambda: b"count/step-1 | 1\n" in printed, 30, "run to follow the count")
    server = cluster.processes[0]
    server.kill()
    time.sleep(1)
    cluster.start_server()

    assert runner.stderr is not None
    err = runner.stderr.read()
    assert runner.wait(timeout=90) == 0, err.decode()
    reader.join(timeout=30)
    assert b"reconnecting" in err
    out = b"".join(printed)
    count_lines = [line for line in out.splitlines() if line.startswith(b"count/step-1 | ")]
    assert count_lines == [f"count/step-1 | {i}".encode() for i in range(1, COUNT_TO + 1)]
    followed, _ = follower.communicate(timeout=30)
    expected = b"".join(f"{i}\n".encode() for i in range(1, COUNT_TO + 1))
    assert follower.returncode == 0
    assert followed == expected

    doc = cluster.show(build_id)
    assert doc["status"] == "succeeded", doc
    assert job(doc, "count")["attempts"] == 1
    assert cluster.cli("logs", str(build_id), "count").stdout == expected
    assert cluster.cli("logs", str(build_id), "then").stdout == b"after\n"


@pytest.mark.sqlite_only  # fails the store by holding SQLite's write lock past its busy timeout
def test_the_reaper_survives_a_failed_store_write_and_reaps_once_the_store_is_back(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    assert cluster.db_url is None, "a SQLite-only test: run it with CONVEYOR_TEST_DB=sqlite"
    doomed = cluster.start_agent(f"doomed-{unique}")
    text = (
        "name: stuck\nimage: conveyor/busybox\njobs:\n  work:\n"
        "    steps:\n      - run: echo working; sleep 300\n"
    )
    path = write_pipeline(tmp_path, "stuck.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "work").stdout == b"working\n",
        30,
        "the job to start",
    )
    # Another writer holds the database past the busy timeout: the reaper's write of the lost
    # attempt (and the last-seen times) fails with "database is locked".
    blocker = sqlite3.connect(cluster.data_dir / "conveyor.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    doomed.kill()
    server = cluster.processes[0]
    try:
        # Writes queue on the one store thread, each waiting out the busy timeout in turn.
        wait_for(
            lambda: "lease reaper: pass failed" in server.log(),
            TTL_PLUS_REAPER_S + 3 * SQLITE_BUSY_S,
            "the reaper's write to fail",
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "database is locked" in server.log()
    doc = cluster.wait_build(build_id, lambda d: d["status"] == "failed", 30, "the reap")
    work = job(doc, "work")
    assert (work["reason"], work["attempts"]) == ("agent_lost", 1)
    assert server.popen.poll() is None


@pytest.mark.any_store  # the log file is cut, not a row
def test_a_log_truncated_under_a_follower_is_reported_naming_the_step(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"a-{unique}")
    lines = "; ".join(f"echo line-{i}; sleep 0.3" for i in range(40))
    text = f"name: cut\nimage: conveyor/busybox\njobs:\n  talk:\n    steps:\n      - run: {lines}\n"
    path = write_pipeline(tmp_path, "cut.yml", text)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    stderr_path = tmp_path / "follower.err"
    connection = ["--coordinator", cluster.address, "--token", CLIENT_TOKEN]
    with stderr_path.open("wb") as stderr:
        follower = subprocess.Popen(
            [*CLI, "logs", str(build_id), "talk", "--follow", *connection],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        (log_file,) = wait_for(
            lambda: [
                p for p in (cluster.data_dir / "logs").rglob("0.log") if p.stat().st_size > 40
            ],
            30,
            "the step to log",
        )
        time.sleep(0.5)  # the follower has what is stored so far
        with log_file.open("r+b") as handle:
            handle.truncate(5)
        wait_for(lambda: b"DATA_LOSS" in stderr_path.read_bytes(), 20, "the follower to be told")
        # Told once and final: the follower fails instead of reconnecting to the same loss.
        assert follower.wait(20) == 1
    finally:
        follower.kill()
        follower.wait(10)
    told = stderr_path.read_bytes().decode()
    assert "job 'talk' attempt 1 step 0" in told, told
    assert "truncated" in told
