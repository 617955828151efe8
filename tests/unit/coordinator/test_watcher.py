"""The repository watcher's schedules, driven by a clock of the test's own: a real git
repository, the real store and the real cron rules; time is the only thing the test moves."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from coordinator.config import CoordinatorConfig
from coordinator.domain.access import SERVER_PRINCIPAL
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.errors import AuthError, GitError, SealError
from coordinator.domain.repos import Repos
from coordinator.domain.watcher import Watcher
from coordinator.domain.webhooks import Webhooks, is_push, signature_valid
from coordinator.storage.blobs import BlobStore
from coordinator.storage.git import GitCache
from coordinator.storage.logs import LogStore
from coordinator.storage.secretbox import SecretBox
from coordinator.store import Store
from tests.gitrepo import GitRepo

HOURLY = """
name: nightly
image: conveyor/busybox
on:
  push: {branches: [main]}
  schedule:
    - cron: "0 * * * *"
    - cron: "30 2 * * *"
      branch: release
jobs:
  j:
    steps: [{run: "true"}]
"""


def at(text: str) -> int:
    """Epoch ms of an ISO time in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


class Clock:
    def __init__(self, start: str) -> None:
        self.now = at(start)

    def set(self, text: str) -> None:
        self.now = at(text)

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    made = GitRepo.create(tmp_path / "repo", {".conveyor.yml": HOURLY})
    made.checkout("release", new=True)
    made.checkout("main")
    return made


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "server"


def coordinator(data_dir: Path) -> tuple[Coordinator, Store]:
    config = CoordinatorConfig(data_dir=data_dir, agent_token="a", client_token="c")
    data_dir.mkdir(exist_ok=True)
    store = Store(config.database_url)
    core = Coordinator(
        config,
        store=store,
        logs=LogStore(config.log_dir),
        blobs=BlobStore(config.blob_dir),
        sealer=SecretBox(config.secret_key_path),
    )
    return core, store


def parts(core: Coordinator, store: Store, clock: Clock) -> tuple[Repos, Watcher]:
    """A watcher and repository API over `core`'s store, with git of their own, on `clock`."""
    git = GitCache(core.config.git_cache_dir, 60.0)
    watcher = Watcher(
        runtime=core.runtime, store=store.repos, git=git, secrets=store.secrets,
        dispatcher=core.dispatcher, attempts=core.attempts, notifier=core.notifier, clock=clock,
    )  # fmt: skip
    repos = Repos(
        runtime=core.runtime, store=store.repos, git=git, sealer=SealerStub(),
        prepare=watcher.with_schedules, clock=clock,
    )  # fmt: skip
    return repos, watcher


class SealerStub:
    def seal(self, name: str, scope: str, value: str) -> bytes:
        return value.encode()

    def open(self, name: str, scope: str, sealed: bytes) -> str:
        return sealed.decode()


def events(store: Store) -> list[tuple[str, str | None]]:
    return [(b.event, b.branch) for b in reversed(store.builds.list(100))]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    created = asyncio.new_event_loop()
    yield created
    created.close()


def test_schedules_fire_on_time_once_however_many_were_missed_and_survive_a_restart(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    clock = Clock("2026-01-01T00:30:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    added = loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=3600))
    assert added.schedules == {"|0 * * * *": at("2026-01-01T01:00:00"),
                               "release|30 2 * * *": at("2026-01-01T02:30:00")}  # fmt: skip
    assert added.next_check_ms == at("2026-01-01T01:00:00"), "checked when the first fires"

    clock.set("2026-01-01T00:59:59")
    loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert events(store) == []
    clock.set("2026-01-01T01:00:00")
    result = loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert events(store) == [("schedule", "main")]
    fired = store.builds.get(result.build_ids[0])
    assert fired.trigger is not None and fired.trigger.commit == repo.head("main")
    assert fired.trigger.event == "schedule"
    assert store.repos.get("app").schedules["|0 * * * *"] == at("2026-01-01T02:00:00")
    loop.run_until_complete(core.close())

    # Down from 01:00 to 04:10: the hourly schedule missed 02, 03 and 04 and fires once; the
    # release one (02:30) missed once and fires once, on its own branch.
    clock.set("2026-01-01T04:10:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    loop.run_until_complete(watcher.check(store.repos.get("app")))
    fired_now = sorted(events(store)[1:], key=str)
    assert fired_now == [("schedule", "main"), ("schedule", "release")]
    after = store.repos.get("app")
    assert after.schedules == {"|0 * * * *": at("2026-01-01T05:00:00"),
                               "release|30 2 * * *": at("2026-01-02T02:30:00")}  # fmt: skip
    assert after.next_check_ms == at("2026-01-01T05:00:00")
    loop.run_until_complete(watcher.check(after))
    assert len(events(store)) == 3, "nothing fires twice"
    loop.run_until_complete(core.close())


def test_a_pipeline_change_on_the_default_branch_keeps_kept_schedules_and_drops_removed_ones(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    clock = Clock("2026-01-01T00:30:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=3600))
    repo.commit({".conveyor.yml": HOURLY.replace('    - cron: "30 2 * * *"\n      branch: '
                                                 'release\n', "")}, "one schedule")  # fmt: skip
    clock.set("2026-01-01T00:40:00")
    loop.run_until_complete(watcher.check(store.repos.get("app")))
    after = store.repos.get("app")
    assert after.schedules == {"|0 * * * *": at("2026-01-01T01:00:00")}
    assert events(store) == [("push", "main")]
    loop.run_until_complete(core.close())


def test_signatures_of_each_forge_are_checked_against_the_raw_body() -> None:
    body = b'{"ref": "refs/heads/main"}'
    forged = "sha256=" + "4b3d2e1d9b1ac6bbd7b0d6b3f2f27c40b1a8d5d8a4a8a0ac03a1f4e0c2b0d6a1"
    assert not signature_valid("s3cret-value", {"x-hub-signature-256": forged}, body)
    digest = hmac.new(b"s3cret-value", body, hashlib.sha256).hexdigest()
    assert signature_valid("s3cret-value", {"x-hub-signature-256": f"sha256={digest}"}, body)
    assert not signature_valid("s3cret-value", {"x-hub-signature-256": digest}, body)
    assert signature_valid("s3cret-value", {"x-gitea-signature": digest}, body)
    assert not signature_valid("s3cret-value", {"x-gitea-signature": digest}, body + b" ")
    assert signature_valid("s3cret-value", {"x-gitlab-token": "s3cret-value"}, body)
    assert not signature_valid("s3cret-value", {"x-gitlab-token": "s3cret-valuE"}, body)
    assert not signature_valid("s3cret-value", {}, body)
    assert is_push({"x-github-event": "push"}) and not is_push({"x-github-event": "ping"})
    assert is_push({"x-gitlab-event": "Tag Push Hook"}) and is_push({"x-gitea-event": "push"})
    assert not is_push({"x-gitlab-event": "Merge Request Hook"}) and not is_push({})


def test_two_checks_of_one_push_build_it_once(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """Two checks (a webhook's and a poll's, or two coordinators') start from the same recorded
    heads: the second finds them changed when it records, and records nothing."""
    clock = Clock("2026-01-01T00:10:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=60))
    before = store.repos.get("app")
    pushed = repo.commit({"x.txt": "1"}, "one push")
    first = loop.run_until_complete(watcher.check(before))
    second = loop.run_until_complete(watcher.check(before))
    assert len(first.build_ids) == 1 and second.build_ids == ()
    assert events(store) == [("push", "main")]
    assert store.repos.get("app").heads["refs/heads/main"] == pushed
    loop.run_until_complete(core.close())


def test_heads_are_branches_and_tags_at_their_commits_with_the_default_branch(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("tag", "-a", "v1", "-m", "an annotated tag names a tag object")
    repo.git("update-ref", "refs/notes/other", repo.head())
    heads = GitCache(tmp_path / "cache", 60.0).heads(str(repo.path))
    commit = repo.head()
    assert heads == {
        "HEAD": "refs/heads/main",
        "refs/heads/main": commit,
        "refs/heads/release": commit,
        "refs/tags/v1": commit,
    }
    with pytest.raises(GitError, match="does not appear to be a git repository"):
        GitCache(tmp_path / "cache", 60.0).heads(str(tmp_path / "nothing"))


def test_new_heads_past_one_checks_cap_are_built_by_the_next_check(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check builds at most MAX_BUILDS_PER_CHECK new heads; the others are not recorded as
    seen, so the next check (due at once) builds them, and none is built twice."""
    monkeypatch.setattr("coordinator.domain.watcher.MAX_BUILDS_PER_CHECK", 2)
    clock = Clock("2026-01-01T00:10:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    repo.commit({".conveyor.yml": HOURLY.replace("branches: [main]", "tags: ['v*']")}, "tags")
    loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=3600))
    for tag in ("v1", "v2", "v3"):
        repo.git("tag", tag)
    first = loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert len(first.build_ids) == 2
    after = store.repos.get("app")
    assert after.next_check_ms <= clock.now, "the heads left over are checked again at once"
    second = loop.run_until_complete(watcher.check(after))
    assert len(second.build_ids) == 1, "the head past the cap is built by the next check"
    third = loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert third.build_ids == ()
    tags = sorted(b.tag or "" for b in store.builds.list(100))
    assert tags == ["v1", "v2", "v3"]
    assert store.repos.get("app").next_check_ms > clock.now, "then on its interval again"
    loop.run_until_complete(core.close())


def test_a_schedule_of_a_branch_with_a_bar_in_its_name_fires_on_that_branch(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """git allows '|' in a branch name; a schedule of such a branch fires on it, and its
    repository's pushes still build (a schedule read back wrong failed every check)."""
    repo.commit({".conveyor.yml": HOURLY.replace("branch: release", "branch: 'team|x'")}, "bar")
    repo.checkout("team|x", new=True)
    repo.checkout("main")
    clock = Clock("2026-01-01T02:00:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=3600))
    clock.set("2026-01-01T02:30:00")
    repo.commit({"x.txt": "1"}, "a push")
    loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert sorted(events(store), key=str) == [("push", "main"), ("schedule", "team|x")]
    assert store.repos.get("app").schedules["team|x|30 2 * * *"] == at("2026-01-02T02:30:00")
    loop.run_until_complete(core.close())


def test_a_tag_of_a_blob_or_tree_builds_nothing_and_stops_no_other_build(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """A tag may name a blob or a tree (git's own repository tags its maintainer's key): there
    is no commit to build, and the pushes beside it still build."""
    every_tag = HOURLY.replace("branches: [main]", "branches: [main], tags: ['*']")
    repo.commit({".conveyor.yml": every_tag}, "tags build")
    clock = Clock("2026-01-01T00:10:00")
    core, store = coordinator(data_dir)
    repos, watcher = parts(core, store, clock)
    loop.run_until_complete(repos.add(SERVER_PRINCIPAL, "app", str(repo.path), poll_s=3600))
    blob = repo.git("hash-object", "-w", ".conveyor.yml")
    repo.git("tag", "key", blob)
    repo.git("tag", "-a", "tree", "-m", "a tree", repo.head() + "^{tree}")
    pushed = repo.commit({"x.txt": "1"}, "a push")
    result = loop.run_until_complete(watcher.check(store.repos.get("app")))
    assert events(store) == [("push", "main")]
    assert len(result.build_ids) == 1
    after = store.repos.get("app")
    assert after.last_error == "" and after.heads["refs/heads/main"] == pushed
    loop.run_until_complete(core.close())


class ChangedKeySealer(SealerStub):
    """Seals as before, but opens nothing: the coordinator's secret key changed since."""

    def open(self, name: str, scope: str, sealed: bytes) -> str:
        raise SealError("not a value this coordinator sealed")


def test_a_webhook_secret_that_cannot_be_opened_is_refused_for_that_reason(
    repo: GitRepo, data_dir: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """The operator reading the 401 learns that the repository has a secret this coordinator
    cannot open (its key changed), not that it has none."""
    clock = Clock("2026-01-01T00:10:00")
    core, store = coordinator(data_dir)
    _, watcher = parts(core, store, clock)
    git = GitCache(core.config.git_cache_dir, 60.0)
    repos = Repos(runtime=core.runtime, store=store.repos, git=git, sealer=ChangedKeySealer())
    secret = "s3cret-value"
    loop.run_until_complete(
        repos.add(SERVER_PRINCIPAL, "app", str(repo.path), webhook_secret=secret)
    )
    hooks = Webhooks(runtime=core.runtime, repos=repos, watcher=watcher)
    body = b'{"ref": "refs/heads/main"}'
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"x-github-event": "push", "x-hub-signature-256": f"sha256={digest}"}
    with pytest.raises(AuthError, match="webhook secret of repository 'app' cannot be opened"):
        loop.run_until_complete(hooks.receive("app", headers, body))
    loop.run_until_complete(core.close())
