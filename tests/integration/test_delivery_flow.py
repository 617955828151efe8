"""From commit to production, the whole way: releases of a real git repository through a build,
staging, an approval gate and production (main only), on a real coordinator and shell agents,
driven by the CLI as a person would. Then what the records say (`envs`, `deployments`, `dora`),
and back: gc, then a rollback to the first release that rebuilds nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Cluster, job, write_pipeline

# The whole flow through the CLI; its store paths (deployments, locks, gates, rollbacks) are run
# on both backends by the store tests and test_deploys, test_gates and test_http_api.
pytestmark = pytest.mark.any_store

SHOP = """
name: shop
image: any
jobs:
  build:
    labels: {executor: shell}
    steps: [{run: "mkdir -p dist && cp version.txt dist/shop.tar"}]
    artifacts: [dist/shop.tar]
  staging:
    needs: [build]
    labels: {executor: shell}
    environment: staging
    steps: [{run: "cat dist/shop.tar"}]
  ship-it:
    needs: [staging]
    approval: {prompt: "Ship to production?", timeout: 1h}
    when: {branch: [main]}
  production:
    needs: [build, ship-it]  # artifacts come from the jobs named (staging keeps none)
    labels: {executor: shell}
    environment: {name: production, url: "https://shop.example"}
    when: {branch: [main]}
    steps: [{run: "cat dist/shop.tar"}]
"""
SCRATCH = """
name: scratch
image: any
jobs:
  only:
    labels: {executor: shell}
    steps: [{run: "echo scratch > out.txt"}]
    artifacts: [out.txt]
"""
WAIT_S = 90.0


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return done.stdout.strip()

    def release(self, version: str) -> str:
        (self.path / "version.txt").write_text(f"{version}\n")
        self.git("add", ".")
        self.git("commit", "-q", "-m", version)
        return self.git("rev-parse", "HEAD")


def start(cluster: Cluster, pipeline: Path, repo: Repo, ref: str) -> int:
    result = cluster.cli(
        "run", str(pipeline), "--git", str(repo.path), "--ref", ref, "--no-follow", "--json"
    )
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


def wait(cluster: Cluster, build_id: int, what: str, done: Any) -> dict[str, Any]:
    return cluster.wait_build(build_id, done, WAIT_S, what)


def at_gate(doc: dict[str, Any]) -> bool:
    return bool(job(doc, "ship-it")["status"] == "waiting_for_approval")


def ended(doc: dict[str, Any]) -> bool:
    return doc["status"] in ("succeeded", "failed", "canceled")


def test_releases_go_from_commit_to_production_and_the_records_say_how(
    tmp_path: Path, unique: str
) -> None:
    (tmp_path / "cluster").mkdir()
    cluster = Cluster(tmp_path / "cluster", executor="shell")
    cluster.start_server()
    try:
        cluster.start_agent(f"a-{unique}", labels="executor=shell")
        cluster.start_agent(f"b-{unique}", labels="executor=shell")
        _flow(cluster, tmp_path)
    finally:
        cluster.close()


def _flow(cluster: Cluster, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "shop")
    pipeline = write_pipeline(tmp_path, "shop.yml", SHOP)
    shipped: list[tuple[int, str]] = []
    for version in ("v1", "v2"):
        commit = repo.release(version)
        build_id = start(cluster, pipeline, repo, "main")
        wait(cluster, build_id, f"{version} at the gate", at_gate)
        approved = cluster.cli("approve", str(build_id), "ship-it", "--comment", f"{version} ok")
        assert approved.returncode == 0, approved.stderr.decode()
        assert wait(cluster, build_id, f"{version} shipped", ended)["status"] == "succeeded"
        log = cluster.cli("logs", str(build_id), "production").stdout.decode()
        assert log == f"{version}\n"  # the bytes built from that commit, not rebuilt
        shipped.append((build_id, commit))

    # A feature branch goes to staging and stops there, without a gate to decide.
    repo.git("checkout", "-q", "-b", "feature")
    repo.release("v3-feature")
    feature = start(cluster, pipeline, repo, "feature")
    doc = wait(cluster, feature, "the feature build", ended)
    assert doc["status"] == "succeeded" and doc["branch"] == "feature"
    for name in ("ship-it", "production"):
        assert (job(doc, name)["status"], job(doc, name)["reason"]) == ("skipped", "condition")

    # A release someone rejects never reaches production.
    repo.git("checkout", "-q", "main")
    repo.release("v4")
    rejected = start(cluster, pipeline, repo, "main")
    wait(cluster, rejected, "v4 at the gate", at_gate)
    assert cluster.cli("reject", str(rejected), "ship-it", "--comment", "not today").returncode == 0
    doc = wait(cluster, rejected, "v4 rejected", ended)
    assert doc["status"] == "failed"
    assert job(doc, "ship-it")["reason"] == "rejected"
    assert job(doc, "production")["status"] == "skipped"

    _check_records(cluster, shipped, [feature, rejected])
    _roll_back_after_gc(cluster, tmp_path, shipped)


def _check_records(
    cluster: Cluster, shipped: list[tuple[int, str]], staged_only: list[int]
) -> None:
    envs = {e["name"]: e for e in cluster.json("envs")["environments"]}
    assert envs["production"]["url"] == "https://shop.example"
    assert envs["production"]["current"]["build"] == shipped[-1][0]
    assert envs["staging"]["current"]["build"] == staged_only[-1]

    production = cluster.json("deployments", "production")["deployments"]
    assert [(d["build"], d["commit"], d["status"]) for d in production] == [
        (build_id, commit, "succeeded") for build_id, commit in reversed(shipped)
    ]
    for deployment, (build_id, _) in zip(production, reversed(shipped), strict=True):
        built = cluster.json("artifacts", str(build_id))["artifacts"]
        digest = next(a["sha256"] for a in built if a["name"] == "dist/shop.tar")
        assert deployment["artifacts"] == [
            {"job": "build", "name": "dist/shop.tar", "sha256": digest}
        ]
        (approval,) = deployment["approvals"]
        assert (approval["job"], approval["by"], approval["decision"]) == (
            "ship-it",
            "admin",
            "approved",
        )
    staging = cluster.json("deployments", "staging")["deployments"]
    assert [d["build"] for d in staging] == [
        *reversed(staged_only),
        *(b for b, _ in reversed(shipped)),
    ]

    figures = cluster.json("dora", "--env", "production")
    assert (figures["deployments"], figures["change_failure_rate"]) == (2, 0.0)
    assert cluster.json("dora", "--env", "staging")["deployments"] == 4


def _roll_back_after_gc(cluster: Cluster, tmp_path: Path, shipped: list[tuple[int, str]]) -> None:
    (first_build, first_commit), (second_build, _) = shipped
    built = cluster.json("artifacts", str(first_build))["artifacts"]
    first_digest = next(a["sha256"] for a in built if a["name"] == "dist/shop.tar")
    first = cluster.json("deployments", "production")["deployments"][-1]
    assert first["build"] == first_build

    # Two builds that deploy nothing; gc takes everything of the older (the newer is the newest).
    scratch = write_pipeline(tmp_path, "scratch.yml", SCRATCH)
    scratch_builds = [cluster.json("run", str(scratch))["id"] for _ in range(2)]
    collected = cluster.cli("gc", "--older-than", "0s")
    assert collected.returncode == 0, collected.stderr.decode()
    # gc ran: the build no deployment came from lost its artifacts...
    assert cluster.json("artifacts", str(scratch_builds[0]))["artifacts"] == []
    # ...and kept what production's history came from.
    assert [a["sha256"] for a in cluster.json("artifacts", str(first_build))["artifacts"]] == [
        first_digest
    ]

    rolled = cluster.cli("rollback", "production", "--json")
    assert rolled.returncode == 0, rolled.stderr.decode()
    doc = json.loads(rolled.stdout)
    # Nothing rebuilt: one job, production's, with the first release's commit and bytes.
    assert (doc["status"], doc["event"], doc["branch"]) == ("succeeded", "rollback", "main")
    assert doc["redeploys"] == first["id"]
    assert [j["name"] for j in doc["jobs"]] == ["production"]
    assert cluster.cli("logs", str(doc["id"]), "production").stdout.decode() == "v1\n"
    assert cluster.json("artifacts", str(doc["id"]))["artifacts"] == []

    production = cluster.json("deployments", "production")["deployments"]
    newest = production[0]
    assert (newest["build"], newest["redeploys"], newest["status"]) == (
        doc["id"],
        first["id"],
        "succeeded",
    )
    assert newest["commit"] == first_commit
    assert newest["committed_at_ms"] == first["committed_at_ms"] is not None
    assert newest["artifacts"] == [
        {"job": "build", "name": "dist/shop.tar", "sha256": first_digest}
    ]
    current = {e["name"]: e for e in cluster.json("envs")["environments"]}["production"]
    assert current["current"]["id"] == newest["id"]

    figures = cluster.json("dora", "--env", "production")
    # Three deployments; the second release was rolled back from; both releases have a lead
    # time (their commits' times were recorded), the rollback none.
    assert figures["deployments"] == 3
    assert figures["change_failure_rate"] == 1 / 3
    assert figures["lead_time_s"]["median"] is not None
    assert second_build != doc["id"]

    # Going back again goes to what ran before the rollback: the second release.
    again = cluster.json("rollback", "production", "--no-follow")
    assert again["redeploys"] == production[1]["id"]
    cluster.wait_build(again["id"], ended, WAIT_S, "the second rollback")
    for bad, says in (
        (("rollback", "nowhere"), "does not exist"),
        (("rollback", "production", "--to", "999999"), "does not exist"),
    ):
        refused = cluster.cli(*bad)
        assert refused.returncode == 2 and says in refused.stderr.decode(), refused.stderr
