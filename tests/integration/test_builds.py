"""End to end through the CLI: real coordinator and agent processes, steps on the fake
executor (the protocol, the DAG, logs and placement need no containers)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.harness import Cluster, job, wait_for, write_pipeline

DAG = """
name: dag
image: conveyor/busybox
env: {FLAVOUR: pumpkin, LEVEL: build}
jobs:
  a:
    env: {LEVEL: job}
    steps:
      - name: write
        env: {SCOOPS: "2"}
        run: echo "$FLAVOUR $LEVEL $SCOOPS" > scoop.txt
      - name: read
        run: cat scoop.txt
  b:
    needs: [a]
    steps:
      - run: echo "b sees $FLAVOUR"
  c:
    needs: [a]
    steps:
      - run: echo "c sees $EXTRA"
"""


def test_dag_shares_workspace_and_env_and_reports_json(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "dag.yml", DAG)
    result = shared_cluster.cli("run", str(path), "--json", "--env", "EXTRA=from-cli")
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    assert doc["status"] == "succeeded"
    assert [j["name"] for j in doc["jobs"]] == ["a", "b", "c"]
    for entry in doc["jobs"]:
        assert entry["status"] == "succeeded"
        assert entry["attempts"] == 1
        assert entry["exit_code"] == 0
        assert entry["reason"] is None
    assert [s["name"] for s in job(doc, "a")["steps"]] == ["write", "read"]
    # b and c start only after a has finished.
    a_end = job(doc, "a")["steps"][-1]["finished_at_ms"]
    for name in ("b", "c"):
        assert job(doc, name)["steps"][0]["started_at_ms"] >= a_end
    assert shared_cluster.show(doc["id"]) == doc
    logs = shared_cluster.cli("logs", str(doc["id"]), "a", "--step", "read")
    assert logs.stdout == b"pumpkin job 2\n"
    assert shared_cluster.cli("logs", str(doc["id"]), "c").stdout == b"c sees from-cli\n"


def test_human_run_shows_progress_and_logs(shared_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "dag.yml", DAG)
    result = shared_cluster.cli("run", str(path))
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    # A follower sees snapshots, not every transition: a step quicker than one may show only its
    # end, never nothing.
    assert re.search(r"a/write: (running|succeeded)", out), out
    assert "a/read | pumpkin job 2" in out
    assert "b: succeeded" in out
    assert out.rstrip().splitlines()[0].startswith("build ")
    assert "succeeded" in out.rstrip().splitlines()[-1]


FAILING = """
name: failing
image: conveyor/busybox
jobs:
  a:
    steps:
      - name: breaks
        run: echo before; exit 3
      - name: never
        run: echo should-not-run
  b:
    needs: [a]
    steps: [{run: "true"}]
  c:
    needs: [b]
    steps: [{run: "true"}]
"""


def test_failing_step_stops_job_skips_dependents(shared_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "failing.yml", FAILING)
    result = shared_cluster.cli("run", str(path), "--json")
    assert result.returncode == 1, result.stderr.decode()
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed"
    a = job(doc, "a")
    assert (a["status"], a["exit_code"], a["reason"]) == ("failed", 3, "exit_code")
    assert [s["status"] for s in a["steps"]] == ["failed", "skipped"]
    assert [(job(doc, n)["status"], job(doc, n)["attempts"]) for n in "bc"] == [("skipped", 0)] * 2
    assert shared_cluster.cli("logs", str(doc["id"]), "a").stdout == b"before\n"


def _octal(data: bytes) -> str:
    return "".join(f"\\{byte:03o}" for byte in data)


def test_logs_are_byte_exact(shared_cluster: Cluster, tmp_path: Path) -> None:
    invalid_utf8 = b"\xff\xfe\xc0\x80 not utf-8 \xed\xa0\x80\n"
    script = (
        f"printf '{_octal(bytes(range(256)))}'\n"
        f"printf '{_octal(invalid_utf8)}'\n"
        "head -c 1048576 /dev/zero | tr '\\000' x\n"
    )
    text = "name: bytes\nimage: conveyor/busybox\njobs:\n  emit:\n    steps:\n      - run: |\n"
    text += "".join(f"          {line}\n" for line in script.splitlines())
    path = write_pipeline(tmp_path, "bytes.yml", text)
    result = shared_cluster.cli("run", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id = str(json.loads(result.stdout)["id"])
    expected = bytes(range(256)) + invalid_utf8 + b"x" * 1024 * 1024
    logs = shared_cluster.cli("logs", build_id, "emit")
    assert logs.returncode == 0
    assert len(logs.stdout) == len(expected)
    assert logs.stdout == expected


PLACED = """
name: placed
image: conveyor/busybox
jobs:
  gpu-job:
    labels: {gpu: "yes"}
    steps: [{run: "sleep 1"}]
  linux-1:
    labels: {os: linux}
    steps: [{run: "sleep 2"}]
  linux-2:
    labels: {os: linux}
    steps: [{run: "sleep 2"}]
"""


def test_labels_place_jobs_and_concurrency_overlaps(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "placed.yml", PLACED)
    result = shared_cluster.cli("run", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    gpu_agent = job(doc, "gpu-job")["agent"]
    assert gpu_agent.startswith("gpu-")
    first, second = job(doc, "linux-1"), job(doc, "linux-2")
    assert first["agent"] == second["agent"]
    assert first["agent"].startswith("main-")
    one, two = first["steps"][0], second["steps"][0]
    # Both 2 s steps ran at the same time on the concurrency-2 agent.
    assert one["started_at_ms"] < two["finished_at_ms"]
    assert two["started_at_ms"] < one["finished_at_ms"]


def test_job_without_matching_agent_waits_and_says_why(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    text = (
        "name: nowhere\nimage: conveyor/busybox\njobs:\n"
        "  win:\n    labels: {os: windows}\n    steps: [{run: 'true'}]\n"
    )
    path = write_pipeline(tmp_path, "nowhere.yml", text)
    submitted = shared_cluster.cli("run", str(path), "--no-follow", "--json")
    assert submitted.returncode == 0, submitted.stderr.decode()
    build_id = json.loads(submitted.stdout)["id"]
    try:
        wait_for(
            lambda: job(shared_cluster.show(build_id), "win")["status"] == "queued",
            10,
            "the job to be queued",
        )
        time.sleep(2)  # several poll rounds in which no agent may take it
        doc = shared_cluster.show(build_id)
        win = job(doc, "win")
        assert (doc["status"], win["status"], win["attempts"]) == ("queued", "queued", 0)
        assert win["reason"] == "waiting_for_agent"
        assert "os=windows" in win["message"]
        human = shared_cluster.cli("show", str(build_id)).stdout.decode()
        assert "no connected agent has labels os=windows" in human
    finally:
        shared_cluster.cli("cancel", str(build_id))
