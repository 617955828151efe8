"""The repository watcher (DESIGN §4.2): a long-lived loop that checks each watched repository
on its interval (at once when a webhook wakes it), at most a few at a time, and turns new heads
and due schedules into builds.

A check lists the repository's heads (`git ls-remote`), compares them with the recorded ones,
fetches the new commits into the coordinator's cache clone, reads the pipeline file as it is in
each, and records the new heads together with the builds they start in one store transaction.
A failed check is recorded (its error, shown by `repo list`) and tried again after a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from conveyor.pipeline import Pipeline, PipelineError, load_pipeline
from coordinator.config import (
    MAX_BUILDS_PER_CHECK,
    MAX_REPO_ERROR_CHARS,
    MAX_REPO_HEADS,
    MAX_REPO_PIPELINE_BYTES,
    REPO_BACKOFF_MAX_S,
    REPO_CHECKS_AT_ONCE,
    REPO_WATCH_TICK_S,
)
from coordinator.domain import repo_plans, trigger_rules
from coordinator.domain.attempts import Attempts
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.errors import ConflictError, GitError, NotFoundError
from coordinator.domain.loops import DEFAULT_BACKOFF
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.ports import SecretStore
from coordinator.domain.repo_plans import SCHEDULE, Head
from coordinator.domain.repo_ports import GitRemote, RepoStore
from coordinator.domain.repo_records import (
    BRANCH_PREFIX,
    CheckResult,
    NewBuild,
    RepoRecord,
    schedule_entry,
    schedule_key,
)
from coordinator.domain.repos import now_ms
from coordinator.domain.runtime import Runtime

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rules:
    """The pipeline's `on:` as the watcher asks it (`coordinator.domain.trigger_rules`)."""

    accepts: Callable[[Pipeline, str | None, str | None], bool] = trigger_rules.push_accepted
    schedules: Callable[[Pipeline], list[tuple[str, str]]] = trigger_rules.schedules
    next_fire_ms: Callable[[str, int], int] = trigger_rules.next_fire_ms


@dataclass
class _Plan:
    heads: dict[str, str]
    builds: list[NewBuild] = field(default_factory=list)
    schedules: dict[str, int] = field(default_factory=dict)
    schedules_commit: str = ""


class Watcher:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: RepoStore,
        git: GitRemote,
        secrets: SecretStore,
        dispatcher: Dispatcher,
        attempts: Attempts,
        notifier: BuildNotifier,
        rules: Rules | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._git = git
        self._secrets = secrets
        self._dispatcher = dispatcher
        self._attempts = attempts
        self._notifier = notifier
        self._rules = rules or Rules()
        self._clock = clock
        self._woken: set[str] = set()
        self._wake = asyncio.Event()
        self._checking: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(REPO_CHECKS_AT_ONCE)

    def wake(self, name: str) -> None:
        """Checks `name` at once (a webhook said it changed), whatever its interval."""
        self._woken.add(name)
        self._wake.set()

    async def watch_forever(self, stop: asyncio.Event) -> None:
        """Starts the checks that are due until `stop` is set. A failed look for due
        repositories (the database away for a moment) is retried after a backoff; a failed
        check is recorded on its repository. Neither ends the loop."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self._start_due()
                except Exception:
                    failures += 1
                    delay_s = DEFAULT_BACKOFF.delay(failures)
                    LOGGER.exception("repository watcher: pass failed (%d in a row)", failures)
                else:
                    failures, delay_s = 0, REPO_WATCH_TICK_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay_s)
                self._wake.clear()
        finally:
            for task in self._checking.values():
                task.cancel()
            await asyncio.gather(*self._checking.values(), return_exceptions=True)

    async def _start_due(self) -> None:
        woken, self._woken = self._woken, set()
        due = await self._runtime.db(self._store.due, self._clock(), REPO_CHECKS_AT_ONCE * 4)
        names = [repo.name for repo in due] + sorted(woken)
        for name in dict.fromkeys(names):
            if name in self._checking:
                if name in woken:
                    self._woken.add(name)  # checked again once the running check ends
                continue
            task = asyncio.create_task(self._check_named(name), name=f"check {name}")
            self._checking[name] = task
            task.add_done_callback(functools.partial(self._checked, name))

    def _checked(self, name: str, _: asyncio.Task[None]) -> None:
        self._checking.pop(name, None)
        if name in self._woken:
            self._wake.set()

    async def _check_named(self, name: str) -> None:
        async with self._slots:
            try:
                repo = await self._runtime.db(self._store.get, name)
            except NotFoundError:
                return  # removed meanwhile
            try:
                await self.check(repo)
            except Exception as error:
                await self._record_failure(repo, error)

    async def _record_failure(self, repo: RepoRecord, error: Exception) -> None:
        if not isinstance(error, (GitError, ValueError, NotFoundError)):
            LOGGER.error("repository %s: check failed", repo.name, exc_info=error)
        else:
            LOGGER.warning("repository %s: check failed: %s", repo.name, error)
        delay_s = min(REPO_BACKOFF_MAX_S, repo.poll_s * 2.0 ** min(repo.failures + 1, 20))
        try:
            await self._runtime.db(
                self._store.record_failure,
                repo.name,
                str(error)[:MAX_REPO_ERROR_CHARS],
                self._clock() + int(delay_s * 1000),
            )
        except Exception:
            # Not recorded (the database away too): the check is simply due again.
            LOGGER.exception("repository %s: cannot record the failed check", repo.name)

    async def check(self, repo: RepoRecord) -> CheckResult:
        """One check of `repo`: its new heads and due schedules become builds, recorded with
        the heads in one transaction. A check that lost a race to another changes nothing."""
        heads = await self._runtime.git(self._git.heads, repo.url)
        if len(heads) > MAX_REPO_HEADS:
            raise ValueError(f"too many refs ({len(heads)} > {MAX_REPO_HEADS})")
        now = self._clock()
        found = repo_plans.new_heads(repo.heads, heads)
        wanted, later = found[:MAX_BUILDS_PER_CHECK], found[MAX_BUILDS_PER_CHECK:]
        # Heads past the cap stay as recorded, so the next check (at once) builds them.
        plan = _Plan(repo_plans.held_back(repo.heads, heads, later), schedules=dict(repo.schedules),
                     schedules_commit=repo.schedules_commit)  # fmt: skip
        await self._refresh_schedules(repo, plan, now)
        wanted += self._due_schedules(repo, plan, now)
        if wanted:
            commits = list(dict.fromkeys(head.commit for head in wanted))
            found_commits = await self._runtime.git(self._git.fetch, repo.name, repo.url, commits)
            for head in wanted:
                if head.commit not in found_commits:
                    LOGGER.info("repository %s: %s names no commit", repo.name, head.ref)
                    continue
                new = await self._plan(repo, head)
                if new is not None:
                    plan.builds.append(new)
        next_check = min([now + int(repo.poll_s * 1000), *plan.schedules.values()])
        next_check = now if later else next_check
        try:
            result = await self._runtime.db(
                self._store.record_check,
                repo.name,
                seen=repo.heads,
                heads=plan.heads,
                builds=plan.builds,
                schedules=plan.schedules,
                schedules_commit=plan.schedules_commit,
                next_check_ms=next_check,
                supersede=True,
            )
        except ConflictError:
            LOGGER.info("repository %s: checked by another meanwhile", repo.name)
            return CheckResult()
        self._announce(repo, plan.builds, result)
        return result

    async def with_schedules(self, repo: RepoRecord) -> RepoRecord:
        """`repo` with the schedules of its default branch's pipeline file (for `repo add`: a
        repository polled rarely still fires its schedules from the start)."""
        plan = _Plan(dict(repo.heads))
        try:
            await self._refresh_schedules(repo, plan, self._clock())
        except GitError as error:
            LOGGER.warning("repository %s: schedules not read yet: %s", repo.name, error)
            return repo
        next_check = min([repo.next_check_ms, *plan.schedules.values()])
        return replace(
            repo,
            schedules=plan.schedules,
            schedules_commit=plan.schedules_commit,
            next_check_ms=next_check,
        )

    async def _plan(self, repo: RepoRecord, head: Head) -> NewBuild | None:
        info = await self._runtime.git(self._git.commit_info, repo.name, head.commit)
        try:
            text = await self._runtime.git(
                self._git.show, repo.name, head.commit, repo.pipeline_path, MAX_REPO_PIPELINE_BYTES
            )
        except GitError as error:
            text, problem = b"", str(error)
        else:
            problem = ""
        new, pipeline = await self._runtime.io(
            repo_plans.plan_build, repo, head, info, text, accepts=self._rules.accepts
        )
        if problem and new is not None:
            return repo_plans.failed_copy(new, f"{repo.pipeline_path}: {problem}")
        if new is None or pipeline is None:
            return new
        names = repo_plans.secret_names(pipeline)
        if not names:
            return new
        scopes = await self._runtime.db(self._secrets.scopes, names)
        return repo_plans.missing_secrets_error(new, pipeline, scopes)

    async def _refresh_schedules(self, repo: RepoRecord, plan: _Plan, now: int) -> None:
        """Reads the schedules again when the default branch moved: entries kept keep their
        next fire time (a restart or a push neither loses nor repeats one)."""
        commit = plan.heads.get(repo_plans.default_ref(plan.heads), "")
        if not commit or commit == repo.schedules_commit:
            return
        await self._runtime.git(self._git.fetch, repo.name, repo.url, [commit])
        entries: list[tuple[str, str]] = []
        with contextlib.suppress(GitError, PipelineError):
            text = await self._runtime.git(
                self._git.show, repo.name, commit, repo.pipeline_path, MAX_REPO_PIPELINE_BYTES
            )
            if text is not None:
                pipeline = await self._runtime.io(load_pipeline, text, repo.pipeline_path)
                entries = self._rules.schedules(pipeline)
        fresh: dict[str, int] = {}
        for cron, branch in entries:
            key = schedule_key(cron, branch)
            if key in repo.schedules:
                fresh[key] = repo.schedules[key]
            else:
                with contextlib.suppress(ValueError):
                    fresh[key] = self._rules.next_fire_ms(cron, now)
        plan.schedules, plan.schedules_commit = fresh, commit

    def _due_schedules(self, repo: RepoRecord, plan: _Plan, now: int) -> list[Head]:
        """Heads to build for the schedules due now; each fires once however many of its times
        passed (while the coordinator was down), then waits for its next time after now."""
        heads = []
        for key, fire_ms in sorted(plan.schedules.items()):
            if fire_ms > now:
                continue
            cron, branch = schedule_entry(key)
            plan.schedules[key] = self._rules.next_fire_ms(cron, now)
            ref = f"{BRANCH_PREFIX}{branch}" if branch else repo_plans.default_ref(plan.heads)
            commit = plan.heads.get(ref)
            if commit is None:
                LOGGER.warning("repository %s: schedule %r: no branch %s", repo.name, cron, ref)
                continue
            heads.append(Head(ref, commit, SCHEDULE))
        return heads

    def _announce(self, repo: RepoRecord, builds: list[NewBuild], result: CheckResult) -> None:
        for build_id, new in zip(result.build_ids, builds, strict=True):
            LOGGER.info(
                "repository %s: build %d (%s of %s)%s",
                repo.name,
                build_id,
                new.context.event,
                new.trigger.commit[:12],
                f" failed: {new.error.splitlines()[0]}" if new.error else "",
            )
        labels = [job.labels for new in builds for job in new.jobs if not job.needs]
        if labels:
            self._dispatcher.work_available(labels)
        if result.superseded:
            self._attempts.request_cancel(result.superseded)
        for attempt in result.superseded:
            self._notifier.changed(attempt.build_id)
