"""Deployments and deploy locks through the whole system: real coordinator and shell agents.

Each deploy step appends `TAG start|end SECONDS` (from `date +%s.%N`) to a file of the test, so
the test sees when deployments really ran, whichever agent ran them.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster, job, wait_for, write_pipeline

LOGGER = logging.getLogger(__name__)
DEPLOYMENT_KEYS = {
    "id",
    "environment",
    "build",
    "job",
    "status",
    "commit",
    "artifacts",
    "approvals",
    "redeploys",
    "actor",
    "started_at_ms",
    "finished_at_ms",
    "committed_at_ms",
    # ISO 8601 (UTC) beside each epoch-milliseconds field.
    "started_at",
    "finished_at",
    "committed_at",
}
FINAL = ("succeeded", "failed", "canceled")

SHOP = """
name: shop
image: any
jobs:
  build:
    labels: {executor: shell}
    steps: [{run: "mkdir -p dist && echo pumpkin-$TAG > dist/shop.tar"}]
    artifacts: [dist/shop.tar]
  staging:
    needs: [build]
    labels: {executor: shell}
    environment: staging
    steps: [{run: "sha256sum dist/shop.tar"}]
  production:
    needs: [build, staging]
    labels: {executor: shell}
    environment: {name: production, url: "https://shop.example"}
    steps: [{run: "sha256sum dist/shop.tar"}]
"""


def gate_step(gate: Path) -> str:
    """A step that waits for `gate` to exist, for two minutes at most (so that a step a killed
    agent left behind, or a failed test, does not loop forever)."""
    return f"i=0; while [ ! -e {gate} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"


def deploy_pipeline(environment: str, times: Path, step: str, extra: str = "") -> str:
    """One deployment job that records when it starts and ends around `step`."""
    return f"""
name: deploy
image: any
jobs:
  deploy:
    labels: {{executor: shell}}
    environment: {environment}{extra}
    steps:
      - run: |
          echo "$TAG start $(date +%s.%N)" >> {times}
          {step}
          echo "$TAG end $(date +%s.%N)" >> {times}
"""


@pytest.fixture
def shell_cluster(tmp_path: Path) -> Iterator[Cluster]:
    (tmp_path / "cluster").mkdir()
    created = Cluster(tmp_path / "cluster", executor="shell")
    created.start_server()
    try:
        yield created
    finally:
        created.close()


def submit(cluster: Cluster, path: Path, tag: str) -> int:
    result = cluster.cli("run", str(path), "--no-follow", "--json", "--env", f"TAG={tag}")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


def wait_final(cluster: Cluster, build_id: int, timeout_s: float = 120) -> dict[str, Any]:
    return cluster.wait_build(
        build_id, lambda d: d["status"] in FINAL, timeout_s, f"build {build_id} to end"
    )


def intervals(times: Path) -> dict[str, tuple[float, float]]:
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for line in times.read_text().splitlines():
        tag, kind, stamp = line.split()
        (starts if kind == "start" else ends)[tag] = float(stamp)
    return {tag: (starts[tag], ends[tag]) for tag in starts if tag in ends}


def overlaps(spans: dict[str, tuple[float, float]]) -> int:
    ordered = sorted(spans.values())
    return sum(1 for a, b in itertools.pairwise(ordered) if b[0] < a[1])


def test_two_builds_through_staging_and_production(shell_cluster: Cluster, tmp_path: Path) -> None:
    cluster = shell_cluster
    cluster.start_agent("a1", labels="executor=shell", concurrency=2)
    path = write_pipeline(tmp_path, "shop.yml", SHOP)
    empty = cluster.json("envs")
    assert empty == {"environments": []}
    builds = []
    for tag in ("one", "two"):
        result = cluster.cli("run", str(path), "--json", "--env", f"TAG={tag}")
        assert result.returncode == 0, result.stderr.decode()
        builds.append(json.loads(result.stdout)["id"])
    envs = cluster.json("envs")
    names = [(e["name"], e["url"]) for e in envs["environments"]]
    assert names == [("production", "https://shop.example"), ("staging", None)]
    artifacts = cluster.json("artifacts", str(builds[1]))
    digest = next(a["sha256"] for a in artifacts["artifacts"] if a["name"] == "dist/shop.tar")
    for environment in envs["environments"]:
        current = environment["current"]
        assert set(current) == DEPLOYMENT_KEYS
        assert (current["build"], current["status"]) == (builds[1], "succeeded")
        assert current["artifacts"] == [{"job": "build", "name": "dist/shop.tar", "sha256": digest}]
    production = cluster.json("deployments", "production")
    assert production["environment"] == "production"
    listed = production["deployments"]
    assert [d["build"] for d in listed] == [builds[1], builds[0]]
    newest = listed[0]
    assert set(newest) == DEPLOYMENT_KEYS
    assert newest["environment"] == "production" and newest["job"] == "production"
    assert newest["commit"] is None and newest["redeploys"] is None
    assert newest["approvals"] == [] and newest["actor"] == "admin"
    assert newest["started_at_ms"] <= newest["finished_at_ms"]
    assert newest["id"] > listed[1]["id"]
    assert listed[0]["artifacts"] != listed[1]["artifacts"], "each build deployed its own"

    table = cluster.cli("envs")
    assert table.returncode == 0
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "BUILD", "COMMIT", "DEPLOYED", "URL"]
    assert lines[1].split()[:2] == ["production", str(builds[1])]
    history = cluster.cli("deployments", "staging")
    assert history.returncode == 0
    assert [line.split()[1] for line in history.stdout.decode().splitlines()[1:]] == [
        str(builds[1]),
        str(builds[0]),
    ]
    unknown = cluster.cli("deployments", "nowhere")
    assert unknown.returncode == 2
    assert b"environment 'nowhere' does not exist" in unknown.stderr
    assert cluster.cli("deployments", "no such name").returncode == 2


def test_deployments_on_the_wire_are_bounded(shell_cluster: Cluster) -> None:
    channel = wire.insecure_channel(shell_cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    metadata = wire.bearer(CLIENT_TOKEN)
    try:
        for request, code in (
            (control_pb2.ListDeploymentsRequest(environment="x" * 100), "OUT_OF_RANGE"),
            (control_pb2.ListDeploymentsRequest(environment="prod", limit=-1), "OUT_OF_RANGE"),
            (control_pb2.ListDeploymentsRequest(environment="no such"), "NOT_FOUND"),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                control.ListDeployments(request, metadata=metadata, timeout=30)
            error: Any = refused.value
            assert error.code().name == code, error.details()
    finally:
        channel.close()


def test_one_deployment_at_a_time_in_build_order_under_load(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = shell_cluster
    agents = 3
    for index in range(agents):
        cluster.start_agent(f"load-{index}", labels="executor=shell", concurrency=2)
    times = tmp_path / "times.log"
    path = write_pipeline(tmp_path, "deploy.yml", deploy_pipeline("load", times, "sleep 0.3"))
    count = 12
    builds = [submit(cluster, path, f"b{index}") for index in range(count)]
    docs = [wait_final(cluster, build_id, 240) for build_id in builds]
    assert [d["status"] for d in docs] == ["succeeded"] * count
    spans = intervals(times)
    found = overlaps(spans)
    deployed = cluster.json("deployments", "load", "--limit", "100")["deployments"]
    order = [d["build"] for d in reversed(deployed)]
    started_order = [tag for tag, _ in sorted(spans.items(), key=lambda item: item[1][0])]
    LOGGER.warning(
        "deploy lock under load: %d builds, %d agents, %d deployments, %d overlaps found",
        count,
        agents,
        len(deployed),
        found,
    )
    print(
        f"deploy lock under load: {count} builds, {agents} agents, "
        f"{len(deployed)} deployments, {found} overlaps found"
    )
    assert found == 0, spans
    assert len(spans) == count
    assert order == builds
    assert started_order == [f"b{index}" for index in range(count)]


def test_newest_first_skips_superseded_and_an_older_build_is_outdated(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = shell_cluster
    cluster.start_agent("n1", labels="executor=shell", concurrency=4)
    gate = tmp_path / "go"
    times = tmp_path / "times.log"
    wait_gate = gate_step(gate)
    order = "\n    concurrency: {group: prod, order: newest_first}"
    held = write_pipeline(tmp_path, "held.yml", deploy_pipeline("prod", times, wait_gate, order))
    quick = write_pipeline(tmp_path, "quick.yml", deploy_pipeline("prod", times, "true", order))
    first = submit(cluster, held, "first")
    wait_for(times.exists, 60, "the first deployment to start")
    waiting = [submit(cluster, quick, f"w{index}") for index in range(3)]
    doc = cluster.wait_build(
        waiting[0],
        lambda d: job(d, "deploy")["reason"] == "waiting_for_lock",
        60,
        "the waiting job to say why",
    )
    assert job(doc, "deploy")["message"] == f"prod is being deployed by build {first}"
    gate.touch()
    results = [wait_final(cluster, build_id) for build_id in waiting]
    skipped = [job(d, "deploy") for d in results[:2]]
    assert [(j["status"], j["reason"]) for j in skipped] == [("skipped", "superseded")] * 2
    assert job(results[2], "deploy")["status"] == "succeeded"
    assert wait_final(cluster, first)["status"] == "succeeded"

    # An older build's deployment job whose needs end after a newer build deployed.
    slow = SHOP_LIKE.format(step=gate_step(tmp_path / "later"))
    older = submit(cluster, write_pipeline(tmp_path, "slow.yml", slow), "older")
    newer = submit(
        cluster, write_pipeline(tmp_path, "fast.yml", SHOP_LIKE.format(step="true")), "newer"
    )
    assert wait_final(cluster, newer)["status"] == "succeeded"
    (tmp_path / "later").touch()
    outdated = job(wait_final(cluster, older), "ship")
    assert (outdated["status"], outdated["reason"]) == ("skipped", "outdated")
    assert f"older than build {newer}" in outdated["message"]
    shipped = cluster.json("deployments", "shipyard")["deployments"]
    assert [d["build"] for d in shipped] == [newer]


SHOP_LIKE = """
name: ship
image: any
jobs:
  make:
    labels: {{executor: shell}}
    steps: [{{run: "{step}"}}]
  ship:
    needs: [make]
    labels: {{executor: shell}}
    environment: shipyard
    steps: [{{run: "true"}}]
"""


def test_a_coordinator_restart_keeps_the_lock_and_the_order(tmp_path: Path) -> None:
    (tmp_path / "patient").mkdir()
    # Leases outlive the restart, so the holder's attempt goes on rather than being reaped.
    cluster = Cluster(tmp_path / "patient", server_args=("--lease-ttl", "15"), executor="shell")
    cluster.start_server()
    try:
        cluster.start_agent("r1", labels="executor=shell", concurrency=2)
        gate = tmp_path / "go"
        times = tmp_path / "times.log"
        wait_gate = gate_step(gate)
        held = write_pipeline(tmp_path, "held.yml", deploy_pipeline("prod", times, wait_gate))
        quick = write_pipeline(tmp_path, "quick.yml", deploy_pipeline("prod", times, "true"))
        first = submit(cluster, held, "first")
        wait_for(times.exists, 60, "the first deployment to start")
        second = submit(cluster, quick, "second")
        cluster.wait_build(
            second,
            lambda d: job(d, "deploy")["reason"] == "waiting_for_lock",
            60,
            "the second to wait for the lock",
        )
        server = cluster.processes[0]
        server.kill()
        server.popen.wait(10)
        cluster.start_server()
        doc = cluster.wait_build(
            second,
            lambda d: job(d, "deploy")["reason"] == "waiting_for_lock",
            60,
            "the second to still wait after the restart",
        )
        assert job(doc, "deploy")["message"] == f"prod is being deployed by build {first}"
        gate.touch()
        assert wait_final(cluster, first)["status"] == "succeeded"
        assert wait_final(cluster, second)["status"] == "succeeded"
        spans = intervals(times)
        assert spans["first"][1] <= spans["second"][0]
        deployed = cluster.json("deployments", "prod")["deployments"]
        assert [d["build"] for d in deployed] == [second, first]
    finally:
        cluster.close()


def test_an_agent_killed_holding_the_lock_frees_it_with_its_attempt(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = shell_cluster
    doomed = cluster.start_agent("doomed", labels="executor=shell", concurrency=1)
    gate = tmp_path / "never"
    times = tmp_path / "times.log"
    wait_gate = gate_step(gate)
    held = write_pipeline(tmp_path, "held.yml", deploy_pipeline("prod", times, wait_gate))
    quick = write_pipeline(tmp_path, "quick.yml", deploy_pipeline("prod", times, "true"))
    first = submit(cluster, held, "first")
    wait_for(times.exists, 60, "the first deployment to start")
    second = submit(cluster, quick, "second")
    cluster.start_agent("steady", labels="executor=shell", concurrency=1)
    cluster.wait_build(
        second,
        lambda d: job(d, "deploy")["reason"] == "waiting_for_lock",
        60,
        "the second to wait for the lock",
    )
    doomed.kill()
    lost = job(wait_final(cluster, first, 60), "deploy")
    assert (lost["status"], lost["reason"]) == ("failed", "agent_lost")
    assert job(wait_final(cluster, second, 60), "deploy")["status"] == "succeeded"
    deployed = cluster.json("deployments", "prod")["deployments"]
    assert [(d["build"], d["status"]) for d in deployed] == [
        (second, "succeeded"),
        (first, "failed"),
    ]
    # The killed agent's step process may outlive it: give it its gate so it ends.
    gate.touch()


def test_a_deployment_of_a_git_source_records_its_commit_and_its_time(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = shell_cluster
    cluster.start_agent("g1", labels="executor=shell")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
        )
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    (repo / "version.txt").write_text("one\n")
    git("add", ".")
    # A commit time far from now, so lead time is measured from it and not from the clock.
    git("commit", "-q", "-m", "first", "--date", "@1700000000")
    env["GIT_COMMITTER_DATE"] = "@1700000000"
    git("commit", "-q", "--amend", "--no-edit")
    commit = git("rev-parse", "HEAD")
    text = deploy_pipeline("prod", tmp_path / "times.log", "cat version.txt")
    path = write_pipeline(tmp_path, "git.yml", text)
    result = cluster.cli("run", str(path), "--git", str(repo), "--json", "--env", "TAG=git")
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    (deployment,) = cluster.json("deployments", "prod")["deployments"]
    assert deployment["commit"] == commit
    assert deployment["build"] == json.loads(result.stdout)["id"]
    assert deployment["committed_at_ms"] == 1_700_000_000_000
    lead = cluster.json("dora", "--env", "prod", "--since", "10000d")["lead_time_s"]
    assert lead["median"] == (deployment["finished_at_ms"] - 1_700_000_000_000) / 1000
