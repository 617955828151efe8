"""`conveyor retry BUILD --follow` shows what the retry runs, not the earlier attempts again:
a step prints a marker with its attempt's count; after the retry only the new marker shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Cluster, job, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

PIPELINE = """
name: flaky
image: any
jobs:
  steady:
    labels: {{executor: shell}}
    steps:
      - run: echo steady-ran-once
  flaky:
    labels: {{executor: shell}}
    steps:
      - name: count
        run: |
          n=$(cat '{counter}' 2>/dev/null || echo 0)
          n=$((n + 1))
          echo "$n" > '{counter}'
          echo "marker-attempt-$n"
          test "$n" -ge 2
      - name: after
        run: echo after-count
"""


@pytest.fixture
def shell_cluster(tmp_path: Path) -> Iterator[Cluster]:
    created = Cluster(tmp_path / "cluster", executor="shell")
    created.root.mkdir()
    created.start_server()
    created.start_agent("host")
    try:
        yield created
    finally:
        created.close()


def test_retry_follow_prints_only_the_new_attempts(shell_cluster: Cluster, tmp_path: Path) -> None:
    text = PIPELINE.format(counter=tmp_path / "counter")
    first = shell_cluster.cli("run", str(write_pipeline(tmp_path, "flaky.yml", text)))
    out = first.stdout.decode()
    assert first.returncode == 1, (out, first.stderr.decode())
    assert "marker-attempt-1" in out and "steady-ran-once" in out, out
    submitted = re.search(r"^build (\d+) submitted$", out, re.MULTILINE)
    assert submitted is not None, out
    build = int(submitted.group(1))
    assert job(shell_cluster.show(build), "flaky")["status"] == "failed"

    retried = shell_cluster.cli("retry", str(build), "--follow")
    out = retried.stdout.decode()
    assert retried.returncode == 0, (out, retried.stderr.decode())
    assert "marker-attempt-2" in out, out
    assert "after-count" in out, out
    # Neither the failed attempt nor the job the retry left alone is shown again.
    assert "marker-attempt-1" not in out, out
    assert "steady-ran-once" not in out, out
    assert "(exit 1)" not in out, out
    assert job(shell_cluster.show(build), "flaky")["attempts"] == 2
