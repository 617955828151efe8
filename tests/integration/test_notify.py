"""Outgoing notifications over real processes (DESIGN §4.2, §8): a coordinator, a fake-executor
agent, and a real HTTP receiver on 127.0.0.1. Events reach a receiver that fails the first tries
and is down across a coordinator restart: every one arrives, signed, in order per target, and
none twice in a row without a failed try between; targets hear only their events; commit
statuses have the forge's shape; bad input and roles below admin are refused, storing nothing."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline
from tests.integration.notify_receiver import Received, Receiver

# Retries a fifth of a second apart at first, never more than a second: the test waits for the
# backoff, never for a fixed time.
FAST_RETRIES = ("--notify-backoff-initial", "0.2", "--notify-backoff-max", "1s")
WAIT_S = 90.0
SECRET = "receiver-shared-secret"
GATED = """
name: gated
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
  ship-it:
    needs: [build]
    approval: {prompt: "Ship?"}
  staging:
    needs: [ship-it]
    environment: staging
    steps: [{run: "true"}]
"""
FROM_GIT = """
name: from-git
image: conveyor/busybox
source: {{git: "{url}", ref: main}}
jobs:
  check:
    steps: [{{run: "true"}}]
"""


def run_gated(cluster: Cluster, root: Path) -> int:
    """Runs GATED through its gate to its end (succeeded); returns its id."""
    build_id: int = cluster.json(
        "run", str(write_pipeline(root, "gated.yml", GATED)), "--no-follow"
    )["id"]
    cluster.wait_build(
        build_id,
        lambda d: job(d, "ship-it")["status"] == "waiting_for_approval",
        WAIT_S,
        "the gate to wait",
    )
    assert cluster.cli("approve", str(build_id), "ship-it").returncode == 0
    done = cluster.wait_build(build_id, lambda d: d["status"] != "running", WAIT_S, "the end")
    assert done["status"] == "succeeded", done
    return build_id


def targets(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return {t["url"]: t for t in cluster.json("notify", "list")["targets"]}


def signed(request: Received) -> bool:
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return request.headers.get("x-conveyor-signature") == f"sha256={expected}"


def summary(request: Received) -> tuple[int, str]:
    doc = json.loads(request.body)
    return doc["build"]["id"], doc["event"]


def never_twice_without_a_failure(requests: list[Received]) -> bool:
    """No event was delivered again right after its delivery (only a failed try is retried)."""
    pairs = itertools.pairwise(requests)
    ids = "x-conveyor-delivery"
    return all(not (a.headers[ids] == b.headers[ids] and a.delivered) for a, b in pairs)


def test_every_event_arrives_signed_in_order_across_failures_and_a_restart(
    tmp_path: Path,
) -> None:
    receiver = Receiver(failing={"/all": 2})
    receiver.start()
    cluster = Cluster(tmp_path, server_args=FAST_RETRIES, executor="fake")
    server = cluster.start_server()
    try:
        cluster.start_agent("notify-agent")
        secret = tmp_path / "secret"
        secret.write_text(SECRET + "\n")
        every = receiver.url("/all")
        added = cluster.json("notify", "add", every, "--secret-file", str(secret))
        assert (added["events"], added["signed"], added["pending"]) == (
            ["build", "deployment", "gate"],
            True,
            0,
        )
        assert SECRET not in json.dumps(added)
        ends = receiver.url("/ends")
        cluster.json("notify", "add", ends, "--events", "build")
        first = run_gated(cluster, tmp_path)
        wait_for(lambda: len(receiver.delivered("/all")) == 3, WAIT_S, "the first build's events")
        # Down: the next build's events wait in the outbox, tried and failing, across a restart.
        receiver.stop()
        second = run_gated(cluster, tmp_path)
        wait_for(
            lambda: "ConnectError" in (targets(cluster)[every]["last_error"] or ""),
            WAIT_S,
            "a refused try recorded",
        )
        server.stop()
        server = cluster.start_server()
        pending = targets(cluster)[every]
        assert (pending["delivered"], pending["pending"], pending["failed"]) == (3, 3, 0)
        receiver.start()
        wait_for(lambda: len(receiver.delivered("/all")) == 6, WAIT_S, "every event after")
        wait_for(lambda: len(receiver.delivered("/ends")) == 2, WAIT_S, "both builds' ends")

        requests = receiver.on("/all")
        assert [r.answered for r in requests[:3]] == [503, 503, 200]
        assert all(signed(r) for r in requests), "every request carries the body's signature"
        events = ["gate", "deployment", "build"]
        delivered = receiver.delivered("/all")
        assert [summary(r) for r in delivered] == [(b, e) for b in (first, second) for e in events]
        assert len({r.headers["x-conveyor-delivery"] for r in delivered}) == 6
        assert never_twice_without_a_failure(requests)
        assert all(r.headers["content-type"] == "application/json" for r in requests)
        # The body is the CLI's build document as it was at the event.
        end = json.loads(delivered[2].body)
        assert end["build"] == cluster.show(first)
        deployment = json.loads(delivered[1].body)["deployment"]
        assert deployment == cluster.json("deployments", "staging")["deployments"][-1]

        only_ends = receiver.delivered("/ends")
        assert [summary(r) for r in only_ends] == [(first, "build"), (second, "build")]
        assert all("x-conveyor-signature" not in r.headers for r in only_ends)
        assert never_twice_without_a_failure(receiver.on("/ends"))
        shown = targets(cluster)
        assert (shown[every]["delivered"], shown[every]["pending"]) == (6, 0)
        assert (shown[ends]["delivered"], shown[ends]["pending"], shown[ends]["failed"]) == (
            2,
            0,
            0,
        )
    finally:
        cluster.close()
        receiver.stop()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Receiver]]:
    """One coordinator, one agent and a receiver for the tests that change no shared state."""
    receiver = Receiver()
    receiver.start()
    cluster = Cluster(tmp_path_factory.mktemp("notify"), server_args=FAST_RETRIES)
    cluster.start_server()
    try:
        cluster.start_agent("status-agent")
        yield cluster, receiver
    finally:
        cluster.close()
        receiver.stop()


@pytest.mark.any_store
def test_a_commit_status_reaches_the_forge_in_its_api_shape(
    farm: tuple[Cluster, Receiver], tmp_path: Path
) -> None:
    cluster, receiver = farm
    # A commit-status target posts for builds of its own repository only: the source's path
    # ends in team/shop.
    repo = tmp_path / "team" / "shop"
    repo.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    (repo / "README").write_text("shop\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    token = tmp_path / "forge-token"
    token.write_text("forge-api-token\n")
    base = receiver.url("/api/v1")
    added = cluster.json(
        "notify", "add", base, "--commit-status", "team/shop", "--forge-token-file", str(token),
        "--link", "https://ci.example",
    )  # fmt: skip
    assert (added["kind"], added["repo"], added["events"]) == (
        "commit-status",
        "team/shop",
        ["build", "gate"],
    )
    try:
        pipeline = write_pipeline(tmp_path, "git.yml", FROM_GIT.format(url=repo))
        done = cluster.json("run", str(pipeline))
        assert done["status"] == "succeeded", done
        path = f"/api/v1/repos/team/shop/statuses/{head}"
        (status,) = wait_for(lambda: receiver.delivered(path), WAIT_S, "the commit status")
        assert status.headers["authorization"] == "token forge-api-token"
        assert json.loads(status.body) == {
            "state": "success",
            "target_url": f"https://ci.example/builds/{done['id']}",
            "description": f"build {done['id']} succeeded",
            "context": "conveyor/from-git",
        }
    finally:
        assert cluster.cli("notify", "remove", str(added["id"])).returncode == 0


@pytest.mark.any_store
def test_bad_input_to_notify_add_is_exit_2_and_stores_nothing(
    farm: tuple[Cluster, Receiver], tmp_path: Path
) -> None:
    cluster, receiver = farm
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    before = cluster.json("notify", "list")
    bad = [
        ["ftp://example.com/hook"],
        ["not a url"],
        ["http://"],
        ["http://example.com:99999/"],
        [receiver.url("/x"), "--events", "build,bogus"],
        [receiver.url("/x"), "--events", ""],
        [receiver.url("/x"), "--secret", "a", "--secret-file", str(token)],
        [receiver.url("/x"), "--commit-status", "team/shop"],  # no token
        [receiver.url("/x"), "--commit-status", "not-a-repo", "--forge-token-file", str(token)],
        [receiver.url("/x"), "--commit-status", "t/s", "--forge-token-file", str(token),
         "--events", "deployment"],
    ]  # fmt: skip
    for args in bad:
        refused = cluster.cli("notify", "add", *args)
        assert refused.returncode == 2, (args, refused.stderr.decode())
        assert refused.stderr, args
    assert cluster.cli("notify", "remove", "99999").returncode == 2
    assert cluster.json("notify", "list") == before


@pytest.mark.any_store
def test_a_role_below_admin_may_not_add_list_or_remove_targets(
    farm: tuple[Cluster, Receiver],
) -> None:
    cluster, receiver = farm
    created = cluster.json("token", "create", "a-deployer", "--role", "deployer")
    kept = cluster.json("notify", "add", receiver.url("/kept"))
    for args in (
        ["add", receiver.url("/refused")],
        ["list"],
        ["remove", str(kept["id"])],
    ):
        refused = cluster.cli("notify", *args, token=created["token"])
        assert refused.returncode == 2, (args, refused.stderr.decode())
        assert b"may not" in refused.stderr, refused.stderr
    assert [t["url"] for t in cluster.json("notify", "list")["targets"]] == [receiver.url("/kept")]
    actions = [e["action"] for e in cluster.json("audit")["events"] if e["by"] == "a-deployer"]
    assert actions == []
    assert cluster.cli("notify", "remove", str(kept["id"])).returncode == 0
