"""`when:` conditions end to end: a build's branch or tag from the CLI, jobs skipped at creation."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import Cluster, job, write_pipeline

DELIVERY = """
name: delivery
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "echo built"}]
  production:
    needs: [build]
    when: {branch: [main]}
    steps: [{run: "echo deployed"}]
  smoke:
    needs: [production]
    steps: [{run: "echo smoked"}]
  tagged:
    when: {tag: ["v*"]}
    steps: [{run: "echo released"}]
"""


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env, check=True)


def test_a_condition_skips_a_job_on_another_branch_and_its_dependents(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "delivery.yml", DELIVERY)
    (tmp_path / "src").mkdir()
    result = shared_cluster.cli(
        "run", str(path), "--source", str(tmp_path / "src"), "--branch", "other", "--json"
    )
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]
    doc = shared_cluster.show(build_id)
    assert (doc["status"], doc["event"], doc["branch"], doc["tag"]) == (
        "succeeded",
        "manual",
        "other",
        None,
    )
    assert job(doc, "build")["status"] == "succeeded"
    for name in ("production", "smoke", "tagged"):
        assert (job(doc, name)["status"], job(doc, name)["reason"]) == ("skipped", "condition")
        assert job(doc, name)["attempts"] == 0
    assert job(doc, "production")["message"] == "not run: branch other is not one of main"


def test_on_its_branch_the_conditional_job_runs(shared_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "delivery.yml", DELIVERY)
    (tmp_path / "src").mkdir()
    result = shared_cluster.cli(
        "run", str(path), "--source", str(tmp_path / "src"), "--branch", "main", "--json"
    )
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    statuses = {entry["name"]: entry["status"] for entry in doc["jobs"]}
    assert statuses == {
        "build": "succeeded",
        "production": "succeeded",
        "smoke": "succeeded",
        "tagged": "skipped",
    }


@pytest.mark.parametrize(("ref", "branch", "tag"), [("main", "main", None), ("v1", None, "v1")])
def test_a_git_ref_is_found_to_be_a_branch_or_a_tag(
    shared_cluster: Cluster, tmp_path: Path, ref: str, branch: str | None, tag: str | None
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "file.txt").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "tag", "-a", "v1", "-m", "release")
    path = write_pipeline(tmp_path, "delivery.yml", DELIVERY)
    result = shared_cluster.cli(
        "run", str(path), "--git", str(repo), "--ref", ref, "--no-follow", "--json"
    )
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]
    shared_cluster.cli("cancel", str(build_id))
    doc = shared_cluster.show(build_id)
    assert (doc["event"], doc["branch"], doc["tag"]) == ("manual", branch, tag)
    assert (job(doc, "tagged")["reason"] == "condition") is (tag is None)


def test_branch_is_for_source_builds_only(shared_cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "delivery.yml", DELIVERY)
    before = shared_cluster.json("builds", "--limit", "1000")
    result = shared_cluster.cli("run", str(path), "--branch", "main")
    assert result.returncode == 2
    assert b"--branch needs --source" in result.stderr
    assert shared_cluster.json("builds", "--limit", "1000") == before
