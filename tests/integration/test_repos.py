"""Watched repositories end to end: real git repositories on disk, a real coordinator and an
agent (started with --allow-local-git, as the harness does), pushes found by polling and by
webhooks, builds of the pipeline file as it is in each commit."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gitrepo import GitRepo
from tests.harness import Cluster, wait_for

SECRET = "webhook-secret-for-tests"
WAIT_S = 60.0


def pipeline(job: str, *, extra: str = "") -> str:
    return f"""
name: watched
image: conveyor/busybox
jobs:
  {job}:
    steps:
      - run: cat version.txt
{extra}"""


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("repos"), executor="fake")
    created.start_server()
    created.start_agent("watcher-agent", concurrency=4)
    try:
        yield created
    finally:
        created.close()


def repo_builds(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    builds: list[dict[str, Any]] = cluster.json("builds", "--limit", "1000")
    return [b for b in builds if (b["trigger"] or {}).get("repo") == name]


def add_repo(cluster: Cluster, name: str, repo: GitRepo, *args: str) -> dict[str, Any]:
    added: dict[str, Any] = cluster.json("repo", "add", name, str(repo.path), *args)
    return added


def hook(cluster: Cluster, name: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    url = f"http://{cluster.http_address}/hooks/git/{name}"
    return httpx.post(url, content=body, headers=headers, timeout=30.0)


def github_headers(body: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def github_push(ref: str, after: str) -> bytes:
    """A push event shaped like GitHub's (the fields a receiver reads)."""
    return json.dumps(
        {
            "ref": ref,
            "before": "0" * 40,
            "after": after,
            "repository": {"full_name": "octo/widgets", "clone_url": "https://example.com/x.git"},
            "pusher": {"name": "ada", "email": "ada@example.com"},
            "commits": [{"id": after, "message": "change", "author": {"name": "Ada"}}],
            "head_commit": {"id": after, "message": "change"},
        }
    ).encode()


def test_a_push_builds_that_commit_with_the_pipeline_as_committed(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = GitRepo.create(
        tmp_path / "app", {".conveyor.yml": pipeline("before"), "version.txt": "v0\n"}
    )
    added = add_repo(farm, "app", repo, "--poll", "1s")
    assert added["heads"] == {"refs/heads/main": repo.head()}
    assert "webhook_secret" in added and added["webhook_secret"] is False

    commit = repo.commit(
        {".conveyor.yml": pipeline("after"), "version.txt": "v1\n"}, "Ship v1\n\nbody"
    )
    build = wait_for(lambda: repo_builds(farm, "app"), WAIT_S, "a build of the push")[0]
    done = farm.wait_build(build["id"], lambda d: d["status"] == "succeeded", WAIT_S, "success")
    assert [j["name"] for j in done["jobs"]] == ["after"]
    assert done["event"] == "push" and done["branch"] == "main"
    trigger = done["trigger"]
    assert trigger["commit"] == commit and trigger["event"] == "push"
    assert (trigger["repo"], trigger["branch"], trigger["tag"]) == ("app", "main", None)
    assert trigger["message"] == "Ship v1"
    assert trigger["author"] == "Ada Author <ada@example.com>"
    assert isinstance(trigger["committed_at_ms"], int)
    assert farm.cli("logs", str(done["id"]), "after").stdout == b"v1\n"
    shown = farm.cli("show", str(done["id"])).stdout.decode()
    assert f"push of app branch main at {commit[:12]}" in shown

    repo.git("tag", "-a", "v1.0", "-m", "release")
    tagged = wait_for(
        lambda: [b for b in repo_builds(farm, "app") if b["trigger"]["tag"] == "v1.0"],
        WAIT_S,
        "a build of the tag",
    )[0]
    assert tagged["event"] == "tag" and tagged["trigger"]["commit"] == commit

    repo.checkout("topic", new=True)
    repo.commit({}, "topic work")
    wait_for(lambda: len(repo_builds(farm, "app")) == 3, WAIT_S, "the topic branch's build")
    repo.checkout("main")
    repo.git("branch", "-D", "topic")
    listed = wait_for(
        lambda: [r for r in farm.json("repo", "list")["repos"]
                 if r["name"] == "app" and "refs/heads/topic" not in r["heads"]],
        WAIT_S,
        "the deleted branch to be recorded",
    )  # fmt: skip
    assert listed[0]["last_error"] is None
    assert len(repo_builds(farm, "app")) == 3, "a deleted branch builds nothing"


def test_an_invalid_pipeline_gives_a_failed_build_that_says_where(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "bad", {".conveyor.yml": pipeline("fine")})
    add_repo(farm, "bad", repo, "--poll", "1s")
    commit = repo.commit({".conveyor.yml": "name: bad\njobs:\n  x:\n    stepz: []\n"}, "oops")
    build = wait_for(lambda: repo_builds(farm, "bad"), WAIT_S, "the failed build")[0]
    doc = farm.show(build["id"])
    assert doc["status"] == "failed" and doc["jobs"] == []
    assert doc["trigger"]["commit"] == commit
    assert ".conveyor.yml:4:5: jobs.x.stepz: unknown key 'stepz'" in doc["error"], doc["error"]
    assert "error: .conveyor.yml:3:3:" in farm.cli("builds").stdout.decode()
    assert "error: .conveyor.yml:4:5:" in farm.cli("show", str(build["id"])).stdout.decode()


def test_webhooks_start_a_check_at_once_and_bad_signatures_change_nothing(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "hooked", {".conveyor.yml": pipeline("hooked")})
    # Polled once an hour: only a webhook finds a push within the test.
    add_repo(farm, "hooked", repo, "--poll", "1h", "--webhook-secret", SECRET)
    repo.commit({"a.txt": "1"}, "one")
    newest = repo.commit({"a.txt": "2"}, "two")
    body = github_push("refs/heads/main", newest)

    for headers in (
        {**github_headers(body), "X-Hub-Signature-256": "sha256=" + "0" * 64},
        github_headers(body, secret="not-the-secret"),
        {"X-GitHub-Event": "push"},
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"},
    ):
        refused = hook(farm, "hooked", body, headers)
        assert refused.status_code == 401, refused.text
        assert "signature" in refused.json()["error"]
    assert hook(farm, "nobody", body, github_headers(body)).status_code == 404
    too_big = b"x" * (4 * 1024 * 1024 + 1)
    assert hook(farm, "hooked", too_big, github_headers(too_big)).status_code == 413
    ping = hook(farm, "hooked", b'{"zen": "hi"}', github_headers(b'{"zen": "hi"}', "ping"))
    assert ping.status_code == 202 and ping.json()["result"] == "ignored"
    assert repo_builds(farm, "hooked") == []

    accepted = hook(farm, "hooked", body, github_headers(body))
    assert accepted.status_code == 202 and accepted.json()["result"] == "checking"
    builds = wait_for(lambda: repo_builds(farm, "hooked"), 10.0, "the webhook's build")
    assert [b["trigger"]["commit"] for b in builds] == [newest], "one build, of the newest"


@pytest.mark.any_store  # the forges differ in headers only; the store paths are GitHub's
def test_gitea_and_gitlab_pushes_are_accepted_with_their_own_signatures(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "forges", {".conveyor.yml": pipeline("forge")})
    add_repo(farm, "forges", repo, "--poll", "1h", "--webhook-secret", SECRET)
    first = repo.commit({"b.txt": "1"}, "for gitea")
    gitea = json.dumps(
        {"ref": "refs/heads/main", "before": "0" * 40, "after": first,
         "commits": [{"id": first, "message": "for gitea"}],
         "repository": {"full_name": "ada/forges"}, "pusher": {"login": "ada"}}
    ).encode()  # fmt: skip
    signature = hmac.new(SECRET.encode(), gitea, hashlib.sha256).hexdigest()
    headers = {"X-Gitea-Event": "push", "X-Gitea-Signature": signature}
    assert hook(farm, "forges", gitea, headers).json()["result"] == "checking"
    wait_for(lambda: len(repo_builds(farm, "forges")) == 1, 10.0, "the Gitea push's build")

    second = repo.commit({"b.txt": "2"}, "for gitlab")
    gitlab = json.dumps(
        {"object_kind": "push", "event_name": "push", "ref": "refs/heads/main",
         "before": first, "after": second, "checkout_sha": second, "user_name": "Ada",
         "project": {"path_with_namespace": "ada/forges"}, "commits": [{"id": second}],
         "total_commits_count": 1}
    ).encode()  # fmt: skip
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}
    assert hook(farm, "forges", gitlab, headers).json()["result"] == "checking"
    builds = wait_for(
        lambda: (found := repo_builds(farm, "forges")) and len(found) == 2 and found,
        10.0,
        "the GitLab push's build",
    )
    assert builds[0]["trigger"]["commit"] == second


@pytest.mark.any_store  # refused before the store is written
def test_repo_add_refuses_bad_input_and_unreachable_urls_and_never_prints_the_secret(
    farm: Cluster, tmp_path: Path
) -> None:
    for args, words in (
        (["bad/name", "/tmp"], "invalid repository name"),
        (["ok", "ext::sh%20-c%20evil"], "unsupported repository URL"),
        (["ok", "/tmp", "--pipeline", "../x.yml"], "invalid pipeline path"),
        (["ok", "/tmp", "--poll", "0.5s"], "poll interval"),
        (["ok", str(tmp_path / "missing")], "cannot read the repository"),
    ):
        refused = farm.cli("repo", "add", *args)
        assert refused.returncode == 2, refused
        assert words in refused.stderr.decode(), refused.stderr
    assert all(r["name"] != "ok" for r in farm.json("repo", "list")["repos"])
    developer = farm.json("token", "create", "repo-dev", "--role", "developer")["token"]
    for args in (["list"], ["add", "dev", str(tmp_path)], ["remove", "app"]):
        refused = farm.cli("repo", *args, token=developer)
        assert refused.returncode == 2 and b"admin" in refused.stderr, refused

    repo = GitRepo.create(tmp_path / "listed", {".conveyor.yml": pipeline("x")})
    added = farm.cli("repo", "add", "listed", str(repo.path), "--webhook-secret", SECRET)
    assert added.returncode == 0 and SECRET not in added.stdout.decode()
    listing = farm.cli("repo", "list")
    assert b"listed" in listing.stdout and SECRET.encode() not in listing.stdout
    assert farm.cli("repo", "add", "listed", str(repo.path)).returncode == 2
    removed = farm.json("repo", "remove", "listed")
    assert removed["name"] == "listed"
    actions = [(e["action"], e["target"]) for e in farm.json("audit")["events"]]
    assert ("repo_remove", "listed") in actions and ("repo_add", "listed") in actions
    assert farm.cli("repo", "remove", "listed").returncode == 2


def recorded(cluster: Cluster, name: str, ref: str, commit: str) -> bool:
    """Whether the watcher has recorded `ref` at `commit` (its check of that push is done)."""
    repos = cluster.json("repo", "list")["repos"]
    return any(r["name"] == name and r["heads"].get(ref) == commit for r in repos)


@pytest.mark.any_store  # a check that builds nothing records heads as every check does
def test_a_push_the_pipeline_does_not_accept_builds_nothing(farm: Cluster, tmp_path: Path) -> None:
    only_main = pipeline("main-only", extra="on:\n  push: {branches: [main]}\n")
    repo = GitRepo.create(tmp_path / "picky", {".conveyor.yml": only_main, "version.txt": "1\n"})
    add_repo(farm, "picky", repo, "--poll", "1s")
    repo.checkout("topic", new=True)
    topic = repo.commit({"x.txt": "x"}, "on a topic")
    wait_for(lambda: recorded(farm, "picky", "refs/heads/topic", topic), WAIT_S, "the check")
    assert repo_builds(farm, "picky") == []
    repo.checkout("main")
    main = repo.commit({"y.txt": "y"}, "on main")
    builds = wait_for(lambda: repo_builds(farm, "picky"), WAIT_S, "the build of main")
    assert [(b["branch"], b["trigger"]["commit"]) for b in builds] == [("main", main)]


SUPERSEDABLE = """
name: slow
image: conveyor/busybox
jobs:
  long:
    interruptible: true
    steps: [{run: "sleep 120"}]
  after-long:
    interruptible: true
    needs: [long]
    steps: [{run: "true"}]
  keep:
    steps: [{run: "sleep 2"}]
"""


def test_a_newer_push_supersedes_interruptible_jobs_and_leaves_the_others(
    farm: Cluster, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "busy", {".conveyor.yml": pipeline("first")})
    add_repo(farm, "busy", repo, "--poll", "1s")
    repo.commit({".conveyor.yml": SUPERSEDABLE}, "slow one")
    older = wait_for(lambda: repo_builds(farm, "busy"), WAIT_S, "the first build")[0]["id"]
    farm.wait_build(
        older,
        lambda d: next(j for j in d["jobs"] if j["name"] == "long")["status"] == "running",
        WAIT_S,
        "the long job to run",
    )
    newer = repo.commit({".conveyor.yml": pipeline("quick"), "version.txt": "2\n"}, "quick one")
    wait_for(lambda: len(repo_builds(farm, "busy")) == 2, WAIT_S, "the newer build")
    done = farm.wait_build(older, lambda d: d["status"] in ("failed", "canceled", "succeeded"),
                           WAIT_S, "the older build to end")  # fmt: skip
    jobs = {j["name"]: j for j in done["jobs"]}
    for name in ("long", "after-long"):
        assert (jobs[name]["status"], jobs[name]["reason"]) == ("canceled", "superseded"), jobs
        assert "newer push to main" in jobs[name]["message"]
    assert jobs["keep"]["status"] == "succeeded", "a job not marked interruptible runs on"
    cancels = [e for e in farm.json("audit")["events"] if e["target"] == f"build {older}"]
    assert [(e["action"], e["by"]) for e in cancels] == [("cancel", "repo:busy")]
    assert "long" in cancels[0]["detail"] and "after-long" in cancels[0]["detail"]
    newest = next(b for b in repo_builds(farm, "busy") if b["trigger"]["commit"] == newer)
    assert farm.wait_build(newest["id"], lambda d: d["status"] == "succeeded", WAIT_S, "newer")
