"""The variables every step gets (DESIGN §4.2), through the whole system, as a step prints them:
on the shell executor from a git build retried once, and in a Docker container from a snapshot."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Cluster, write_pipeline

# The claim's context query runs on both backends in the store's unit test.
pytestmark = pytest.mark.any_store

PRINT_ENV = "env | grep -E '^(CI|CONVEYOR_[A-Z_]+)=' | grep -v '^CONVEYOR_WORKSPACE=' | sort"

ON_HOST = f"""
name: stepenv-host
image: any
jobs:
  deploy:
    labels: {{executor: shell}}
    environment: staging
    retry: {{max: 1, when: [exit_code]}}
    steps:
      - run: |
          {PRINT_ENV}
          test "$CONVEYOR_ATTEMPT" = 2
"""

IN_DOCKER = f"""
name: stepenv-docker
image: conveyor/busybox
jobs:
  box:
    steps:
      - run: "{PRINT_ENV}"
"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("stepenv"), executor="shell")
    created.start_server()
    created.start_agent("host")
    try:
        yield created
    finally:
        created.close()


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, env=env, check=True, text=True
    )
    return done.stdout.strip()


def _printed(farm: Cluster, build: int, job: str, *attempt: str) -> dict[str, str]:
    logs = farm.cli("logs", str(build), job, *attempt)
    assert logs.returncode == 0, logs.stderr.decode()
    return dict(line.split("=", 1) for line in logs.stdout.decode().splitlines())


def _expected(build: int, job: str, attempt: int, **values: str) -> dict[str, str]:
    return {
        "CI": "true",
        "CONVEYOR_BUILD_ID": str(build),
        "CONVEYOR_JOB": job,
        "CONVEYOR_ATTEMPT": str(attempt),
        "CONVEYOR_EVENT": "manual",
        "CONVEYOR_BRANCH": "",
        "CONVEYOR_TAG": "",
        "CONVEYOR_COMMIT": "",
        "CONVEYOR_ENVIRONMENT": "",
        **values,
    }


def test_a_host_step_sees_its_git_build_attempt_and_environment(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "file.txt").write_text("one\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    commit = _git(repo, "rev-parse", "HEAD")
    path = write_pipeline(tmp_path, "host.yml", ON_HOST)
    result = farm.cli("run", str(path), "--git", str(repo), "--ref", "main", "--json")
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    build = json.loads(result.stdout)["id"]
    git = {"CONVEYOR_BRANCH": "main", "CONVEYOR_COMMIT": commit}
    staging = {"CONVEYOR_ENVIRONMENT": "staging"}
    assert _printed(farm, build, "deploy", "--attempt", "1") == _expected(
        build, "deploy", 1, **git, **staging
    )
    assert _printed(farm, build, "deploy") == _expected(build, "deploy", 2, **git, **staging)


@pytest.mark.docker
def test_a_container_step_sees_the_branch_of_its_snapshot_build(
    farm: Cluster, tmp_path: Path, docker_ready: None
) -> None:
    farm.start_agent("box", executor="docker")
    (tmp_path / "src").mkdir()
    path = write_pipeline(tmp_path, "docker.yml", IN_DOCKER)
    result = farm.cli(
        "run", str(path), "--source", str(tmp_path / "src"), "--branch", "feature/x", "--json"
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    build = json.loads(result.stdout)["id"]
    assert _printed(farm, build, "box") == _expected(build, "box", 1, CONVEYOR_BRANCH="feature/x")
