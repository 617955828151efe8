"""Sources through the whole system: `run --source DIR` snapshots and git checkouts, unpacked
into real Docker volumes (modes and trees as the step's image sees them)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import Cluster, job, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = [pytest.mark.docker, pytest.mark.any_store]

LISTING = """
name: listing
image: conveyor/busybox
jobs:
  look:
    steps:
      - run: find . -mindepth 1 ! -type d -exec stat -c '%a %n' {} + | sort
"""


def _tree(root: Path) -> None:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "deep" / "leaf.txt").write_text("leaf\n")
    (root / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "build.sh").write_text("#!/bin/sh\necho built\n")
    (root / "build.sh").chmod(0o755)
    (root / "debug.log").write_text("ignored by .gitignore\n")
    (root / "secret").mkdir()
    (root / "secret" / "key").write_text("ignored by .conveyorignore\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / ".conveyorignore").write_text("secret/\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")


def _expected_listing(root: Path) -> list[str]:
    kept = ["src/deep/leaf.txt", "src/main.c", "build.sh", ".gitignore", ".conveyorignore"]
    modes = [f"{stat.S_IMODE((root / n).stat().st_mode):o} ./{n}" for n in kept]
    return sorted(modes)


def _logs(cluster: Cluster, build_id: int, job_name: str) -> str:
    return cluster.cli("logs", str(build_id), job_name).stdout.decode()


def test_source_snapshot_arrives_with_modes_and_without_ignored_files(
    docker_shared_cluster: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    _tree(root)
    os.umask(0o022)
    pipeline = write_pipeline(tmp_path, "listing.yml", LISTING)
    first = docker_shared_cluster.cli("run", str(pipeline), "--source", str(root))
    assert first.returncode == 0, first.stderr.decode() + first.stdout.decode()
    assert b"uploaded" in first.stdout
    build_id = int(re.search(rb"build (\d+) submitted", first.stdout)[1])  # type: ignore[index]
    listing = _logs(docker_shared_cluster, build_id, "look").splitlines()
    assert listing == _expected_listing(root)
    # An unchanged tree has the same digest: nothing is sent again.
    again = docker_shared_cluster.cli("run", str(pipeline), "--source", str(root))
    assert again.returncode == 0, again.stderr.decode()
    assert b"already on the coordinator" in again.stdout


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def two_commits(tmp_path: Path) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "version.txt").write_text("one\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    (repo / "run.sh").chmod(0o755)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "v1")
    (repo / "version.txt").write_text("two\n")
    _git(repo, "commit", "-q", "-am", "second")
    return repo, first, _git(repo, "rev-parse", "HEAD")


GIT_PIPELINE = """
name: git
image: conveyor/busybox
source: {{git: "{url}", ref: {ref}}}
jobs:
  show:
    steps:
      - run: cat version.txt && test -x run.sh && test ! -e .git
"""


def test_git_ref_checks_out_that_commit_and_records_it(
    docker_shared_cluster: Cluster, tmp_path: Path, two_commits: tuple[Path, str, str]
) -> None:
    repo, first, second = two_commits
    text = GIT_PIPELINE.format(url=repo, ref="v1")
    result = docker_shared_cluster.cli(
        "run", str(write_pipeline(tmp_path, "g.yml", text)), "--json"
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    build_id = json.loads(result.stdout)["id"]
    assert _logs(docker_shared_cluster, build_id, "show") == "one\n"
    source = docker_shared_cluster.json("artifacts", str(build_id))["source"]
    assert source == {"git": str(repo), "ref": "v1", "commit": first}

    # The CLI's --git overrides the pipeline; a file:// URL works too.
    override = docker_shared_cluster.cli(
        "run", str(write_pipeline(tmp_path, "g2.yml", text)), "--git", f"file://{repo}",
        "--ref", "main", "--json",
    )  # fmt: skip
    assert override.returncode == 0, override.stderr.decode()
    build_id = json.loads(override.stdout)["id"]
    assert _logs(docker_shared_cluster, build_id, "show") == "two\n"
    assert docker_shared_cluster.json("artifacts", str(build_id))["source"]["commit"] == second


@pytest.mark.parametrize(
    ("url", "ref", "expected"),
    [
        ("{repo}", "no-such-ref", "ref 'no-such-ref' not found"),
        ("{repo}-missing", "main", "git clone of"),
    ],
)
def test_bad_git_url_or_ref_fails_fast_with_reason(
    docker_shared_cluster: Cluster,
    tmp_path: Path,
    two_commits: tuple[Path, str, str],
    url: str,
    ref: str,
    expected: str,
) -> None:
    repo, _, _ = two_commits
    text = GIT_PIPELINE.format(url=url.format(repo=repo), ref=ref)
    started = time.monotonic()
    result = docker_shared_cluster.cli(
        "run", str(write_pipeline(tmp_path, "bad.yml", text)), "--json"
    )
    assert result.returncode == 1, result.stderr.decode()
    assert time.monotonic() - started < 20
    show = job(json.loads(result.stdout), "show")
    assert show["reason"] == "source_failed"
    assert expected in show["message"]
