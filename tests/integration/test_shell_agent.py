"""`conveyor agent --executor shell` through the whole system: no Docker involved.

A shell agent carries `executor=shell` and takes only jobs that ask for it (DESIGN §8), so
every job here does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

PIPELINE = r"""
name: hostside
image: conveyor/does-not-exist:1   # ignored by the shell executor
env: {FLAVOUR: pumpkin}
jobs:
  make:
    labels: {executor: shell}
    steps:
      - name: write
        run: |
          echo "$FLAVOUR" > scoop.txt
          echo to-stderr >&2
          printf 'raw \377 end\n'
      - name: read
        run: cat scoop.txt
  broken:
    labels: {executor: shell}
    steps:
      - run: echo failing; exit 4
"""

SLEEPER = """
name: sleeper
image: any
jobs:
  long:
    labels: {executor: shell}
    steps:
      # Outside the workspace, which is gone once the attempt ends.
      - run: echo $$ > "$HOME/../sleeper.pid"; echo started; sleep 300
"""


@pytest.fixture(scope="module")
def shell_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("shell-cluster"), executor="shell")
    created.start_server()
    created.start_agent("host", concurrency=2)
    try:
        yield created
    finally:
        created.close()


def test_steps_run_on_the_host_with_exact_logs(shell_cluster: Cluster, tmp_path: Path) -> None:
    result = shell_cluster.cli("run", str(write_pipeline(tmp_path, "p.yml", PIPELINE)), "--json")
    assert result.returncode == 1, result.stderr.decode()
    doc = json.loads(result.stdout)
    make, broken = job(doc, "make"), job(doc, "broken")
    assert (make["status"], make["exit_code"]) == ("succeeded", 0)
    assert (broken["status"], broken["reason"], broken["exit_code"]) == ("failed", "exit_code", 4)
    build = str(doc["id"])
    write = shell_cluster.cli("logs", build, "make", "--step", "write")
    assert write.stdout == b"to-stderr\nraw \xff end\n"
    assert shell_cluster.cli("logs", build, "make", "--step", "read").stdout == b"pumpkin\n"


def test_cancel_stops_a_host_step(shell_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "sleeper.yml", SLEEPER)
    submitted = shell_cluster.cli("run", str(path), "--no-follow", "--json")
    assert submitted.returncode == 0, submitted.stderr.decode()
    build = str(json.loads(submitted.stdout)["id"])
    wait_for(
        lambda: shell_cluster.cli("logs", build, "long").stdout == b"started\n",
        30,
        "the step to start",
    )
    pid = int((shell_cluster.root / "agent-host" / "workspaces" / "sleeper.pid").read_text())
    assert shell_cluster.cli("cancel", build).returncode == 0
    doc = shell_cluster.wait_build(
        int(build), lambda d: d["status"] == "canceled", 20, "the build to end canceled"
    )
    assert job(doc, "long")["status"] == "canceled"
    assert not Path(f"/proc/{pid}").exists()


ARTIFACTS = """
name: handoff
image: any
jobs:
  build:
    labels: {executor: shell}
    steps:
      - run: mkdir -p dist && printf 'built\\n' > dist/out.txt
    artifacts: [dist/out.txt]
  test:
    needs: [build]
    labels: {executor: shell}
    steps:
      - run: cat dist/out.txt
"""


def test_artifacts_pass_between_host_jobs(shell_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "handoff.yml", ARTIFACTS)
    result = shell_cluster.cli("run", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    build = str(json.loads(result.stdout)["id"])
    assert shell_cluster.cli("logs", build, "test").stdout == b"built\n"


UNLABELLED = "name: plain\nimage: any\njobs:\n  plain:\n    steps: [{run: echo on the host}]\n"


def test_a_job_without_labels_never_runs_on_a_shell_agent(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    agents = shell_cluster.json("agents")
    assert [a["labels"] for a in agents] == [{"executor": "shell"}]
    path = write_pipeline(tmp_path, "plain.yml", UNLABELLED)
    submitted = shell_cluster.cli("run", str(path), "--no-follow", "--json")
    build = json.loads(submitted.stdout)["id"]
    time.sleep(2)  # the idle shell agent would have taken it by now
    plain = job(shell_cluster.show(build), "plain")
    assert (plain["status"], plain["attempts"], plain["reason"]) == (
        "queued",
        0,
        "waiting_for_agent",
    )
    assert (
        "agents labelled executor=shell take only jobs whose labels ask for it"
        in (plain["message"])
    )
    assert shell_cluster.cli("cancel", str(build)).returncode == 0
