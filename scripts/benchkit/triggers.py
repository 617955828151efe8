"""triggers: a commit landing in a watched repository to the first job of its build starting,
found by a signed webhook and by polling (1 s), beside a build submitted directly (the floor the
trigger path adds to).

The repository is a real one on disk; the agent is a shell agent allowed to fetch local git.
A sample's clock starts once `git commit` has returned (the commit is in the repository) and
stops at the first attempt's start as the coordinator recorded it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import time
import urllib.request
from pathlib import Path

from benchkit import builds
from benchkit.config import (
    POLL_PICKUP_MAX_S,
    TRIGGER_POLL_S,
    TRIGGER_TIMEOUT_S,
    WEBHOOK_PICKUP_MAX_S,
    Sizes,
)
from benchkit.figures import Figure, at_most, median, percentile
from benchkit.procs import Farm, wait_until
from conveyor.cli.client import Client
from conveyor.v1 import repos_pb2, repos_pb2_grpc

SECRET = "bench-webhook-secret"
PIPELINE = builds.one_step("true", "triggered", executor="shell")
_IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
             "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}  # fmt: skip


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          env={**os.environ, **_IDENTITY})  # fmt: skip
    return done.stdout.decode().strip()


def _repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / ".conveyor.yml").write_text(PIPELINE)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "first")
    return path


def _commit(repo: Path, index: int) -> tuple[str, float]:
    """A new commit on main; its id and the wall time it landed."""
    _git(repo, "commit", "-q", "--allow-empty", "-m", f"{repo.name}: change {index}")
    return _git(repo, "rev-parse", "HEAD"), time.time()


def _add(client: Client, name: str, repo: Path, poll_s: float) -> None:
    stub = repos_pb2_grpc.RepoServiceStub(client.channel)
    request = repos_pb2.AddRepoRequest(
        name=name, url=str(repo), poll_s=poll_s, webhook_secret=SECRET
    )
    stub.AddRepo(request, metadata=client.metadata, timeout=60)


def _hook(http: str, name: str, commit: str) -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://{http}/hooks/git/{name}", data=body, method="POST",
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={digest}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as reply:
        reply.read()


def _started_s(client: Client, name: str, commit: str) -> float:
    """The wall time the first job of `commit`'s build started (waits for it)."""
    found: list[float] = []

    def started() -> bool:
        for summary in client.list_builds(50):
            if (summary.trigger.repo, summary.trigger.commit) != (name, commit):
                continue
            build = client.get_build(summary.id)
            times = [a.started_at_ms for job in build.jobs for a in job.attempts if a.started_at_ms]
            if times:
                found.append(min(times) / 1000)
                return True
        return False

    wait_until(started, TRIGGER_TIMEOUT_S, f"the build of {commit[:12]} to start")
    return found[0]


def _direct(client: Client) -> float:
    submitted = time.time()
    build_id = client.submit(PIPELINE, "bench.yml", {})
    builds.wait_final(client, build_id)
    build = client.get_build(build_id)
    return min(a.started_at_ms for job in build.jobs for a in job.attempts) / 1000 - submitted


def _samples(farm: Farm, client: Client, repo: Path, name: str, count: int) -> list[float]:
    http = (farm.root / "server" / "http.addr").read_text().strip()
    taken = []
    for index in range(count):
        if name != "hooked":
            # Real pushes land at any moment of the poll interval, not just after a check.
            time.sleep(random.uniform(0, TRIGGER_POLL_S))
        commit, landed = _commit(repo, index)
        if name == "hooked":
            _hook(http, name, commit)
        taken.append(_started_s(client, name, commit) - landed)
    return taken


def run(root: Path, sizes: Sizes) -> list[Figure]:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(1, "shell", concurrency=2, extra=["--allow-local-git"])
        client = farm.client()
        direct = [_direct(client) for _ in range(sizes.trigger_samples)]
        hooked = _repo(root / "hooked")
        _add(client, "hooked", hooked, 3600.0)  # polled once an hour: only webhooks count
        by_hook = _samples(farm, client, hooked, "hooked", sizes.trigger_samples)
        polled = _repo(root / "polled")
        _add(client, "polled", polled, TRIGGER_POLL_S)
        by_poll = _samples(farm, client, polled, "polled", sizes.trigger_samples)
        client.close()
    finally:
        farm.stop()
    floor = median(direct)
    what = f"{sizes.trigger_samples} pushes"
    hook_median, poll_median = median(by_hook), median(by_poll)
    poll = f"polling every {TRIGGER_POLL_S:g} s"
    return [
        Figure("triggers", f"{what}, webhook: commit to first job started, median", hook_median,
               "s", f"<= {WEBHOOK_PICKUP_MAX_S:.1f}", at_most(hook_median, WEBHOOK_PICKUP_MAX_S),
               floor, "submitted directly"),
        Figure("triggers", f"{what}, webhook: commit to first job started, max", max(by_hook),
               "s", f"<= {WEBHOOK_PICKUP_MAX_S:.1f}", at_most(max(by_hook), WEBHOOK_PICKUP_MAX_S),
               floor, "submitted directly"),
        Figure("triggers", f"{what}, {poll}: commit to first job started, median", poll_median,
               "s", f"<= {POLL_PICKUP_MAX_S:.1f}", at_most(poll_median, POLL_PICKUP_MAX_S),
               floor, "submitted directly"),
        Figure("triggers", f"{what}, {poll}: commit to first job started, p95",
               percentile(by_poll, 0.95), "s", f"<= {POLL_PICKUP_MAX_S:.1f}",
               at_most(percentile(by_poll, 0.95), POLL_PICKUP_MAX_S), floor, "submitted directly"),
    ]  # fmt: skip
