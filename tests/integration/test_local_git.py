"""A git source on the agent's own host (a path or file:// URL) is refused unless the agent runs
with --allow-local-git: a pipeline could otherwise read any repository the agent's user can."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Cluster, job, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

PIPELINE = """
name: local-git
image: conveyor/busybox
source: {{git: "{url}", ref: main}}
jobs:
  show:
    labels: {{pool: {pool}}}
    steps:
      - run: cat version.txt
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    (path / "version.txt").write_text("from the repo\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, env=env)
    return path


def _run(cluster: Cluster, tmp_path: Path, url: str, pool: str) -> dict[str, Any]:
    text = PIPELINE.format(url=url, pool=pool)
    result = cluster.cli("run", str(write_pipeline(tmp_path, f"{pool}.yml", text)), "--json")
    assert result.stdout, result.stderr.decode()
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_local_git_is_refused_without_the_flag_and_accepted_with_it(
    cluster: Cluster, tmp_path: Path, repo: Path
) -> None:
    cluster.start_agent("strict", labels="pool=strict", allow_local_git=False)
    cluster.start_agent("open", labels="pool=open")  # the harness passes --allow-local-git
    for url in (str(repo), f"file://{repo}"):
        refused = job(_run(cluster, tmp_path, url, "strict"), "show")
        assert refused["status"] == "failed", refused
        assert refused["reason"] == "source_failed"
        assert "--allow-local-git" in refused["message"]
        assert refused["steps"][0]["status"] != "succeeded"

        accepted = _run(cluster, tmp_path, url, "open")
        assert accepted["status"] == "succeeded", accepted
        build_id = str(accepted["id"])
        assert cluster.cli("logs", build_id, "show").stdout == b"from the repo\n"
