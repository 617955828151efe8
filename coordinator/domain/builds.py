"""Builds: submitting a pipeline, reading builds back, cancelling, retrying.

A build read back says why each queued job still waits, from the agents known right now.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from dataclasses import replace

from conveyor.pipeline import Pipeline, load_pipeline
from conveyor.states import JobStatus
from coordinator.config import DEFAULT_LIST_LIMIT, INLINE_PIPELINE_MAX_BYTES, MAX_LIST_LIMIT
from coordinator.domain.access import SERVER_PRINCIPAL, Principal
from coordinator.domain.agents import Agents
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.attempts import Attempts
from coordinator.domain.bounds import check_id, check_range
from coordinator.domain.build_filter import EVERY_BUILD
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.errors import NotFoundError
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.ports import ArtifactIndex, BuildStore, SecretStore
from coordinator.domain.records import BuildFilter, BuildRecord, BuildSummary, JobRecord, NewJob
from coordinator.domain.runtime import Runtime, uncancellable
from coordinator.domain.secrets import missing_secrets
from coordinator.domain.submit import build_context, check_env_overrides, jobs_from_pipeline
from coordinator.policy.conditions import BuildContext
from coordinator.policy.scheduling import queued_reason

LOGGER = logging.getLogger(__name__)

DEFAULT_SOURCE_NAME = "pipeline.yml"
DEFAULT_GIT_REF = "HEAD"


def requested_source(source: SourceSpec | None) -> SourceSpec | None:
    """A submitted source as kept: None when nothing was named, git ref HEAD when none given."""
    if source is None or not (source.snapshot_sha256 or source.git_url):
        return None
    if source.git_url and not source.git_ref:
        return replace(source, git_ref=DEFAULT_GIT_REF)
    return source


class Builds:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: BuildStore,
        index: ArtifactIndex,
        secrets: SecretStore,
        notifier: BuildNotifier,
        dispatcher: Dispatcher,
        attempts: Attempts,
        agents: Agents,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._index = index
        self._secrets = secrets
        self._notifier = notifier
        self._dispatcher = dispatcher
        self._attempts = attempts
        self._agents = agents

    async def submit(
        self,
        pipeline_yaml: str,
        *,
        source_name: str = "",
        env: Mapping[str, str] | None = None,
        source: SourceSpec | None = None,
        branch: str = "",
        tag: str = "",
        by: Principal = SERVER_PRINCIPAL,
    ) -> int:
        """Accepts a pipeline as a new build started by `by`; returns its id.

        `source` (an uploaded snapshot or a git URL) overrides the pipeline's `source:`;
        `branch` or `tag` is what the client says the source is, for `when:` conditions.
        """
        name = source_name or DEFAULT_SOURCE_NAME
        context = build_context(branch, tag)
        return await uncancellable(
            self._accept(pipeline_yaml, name, env or {}, source, context, by.name)
        )

    async def _accept(
        self,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        source: SourceSpec | None,
        context: BuildContext,
        actor: str,
    ) -> int:
        check_env_overrides(env)
        if len(pipeline_yaml) <= INLINE_PIPELINE_MAX_BYTES:
            pipeline, jobs = _parse(pipeline_yaml, source_name, env, context)
        else:  # off the event loop: a pipeline may be up to 1 MiB of YAML
            pipeline, jobs = await self._runtime.io(
                _parse, pipeline_yaml, source_name, env, context
            )
        await self._check_secrets(pipeline)
        source = requested_source(source)
        if source is None and pipeline.source is not None:
            source = SourceSpec(git_url=pipeline.source.url, git_ref=pipeline.source.ref)
        await self._check_source(source)
        build_id = await self._runtime.db(
            self._store.create,
            name=pipeline.name,
            pipeline_yaml=pipeline_yaml,
            source_name=source_name,
            env=env,
            jobs=jobs,
            source=source,
            context=context,
            actor=actor,
        )
        LOGGER.info("build %d (%s) accepted with %d jobs", build_id, pipeline.name, len(jobs))
        self._dispatcher.work_available(_queued_at_once(jobs))
        return build_id

    async def _check_secrets(self, pipeline: Pipeline) -> None:
        """ValueError naming each job and secret that no stored secret would reach."""
        names = {name for job in pipeline.jobs for name in job.secrets}
        if not names:
            return
        problems = missing_secrets(pipeline, await self._runtime.db(self._secrets.scopes, names))
        if problems:
            raise ValueError("\n".join(problems))

    async def _check_source(self, source: SourceSpec | None) -> None:
        digest = source.snapshot_sha256 if source is not None else ""
        if digest and not await self._runtime.db(self._index.has_blob, digest):
            raise NotFoundError(
                f"source snapshot {digest} is not on the coordinator; upload it first"
            )

    async def get(self, build_id: int) -> BuildRecord:
        check_id("build", build_id)
        return self.explain(await self._runtime.db(self._store.get, build_id))

    async def list(
        self, limit: int = 0, only: BuildFilter = EVERY_BUILD
    ) -> builtins.list[BuildSummary]:
        """The newest builds that `only` keeps, newest first; `limit` 0 means the default, and
        it is capped (a negative one is OutOfRangeError: it used to mean "everything")."""
        check_range("limit", limit, 0, 2**31 - 1)
        limit = min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        return await self._runtime.db(self._store.list, limit, only)

    async def cancel(self, build_id: int, by: Principal = SERVER_PRINCIPAL) -> BuildRecord:
        """Cancels what has not started and asks the agents to stop what runs."""
        check_id("build", build_id)
        return await uncancellable(self._cancel(build_id, by))

    async def _cancel(self, build_id: int, by: Principal) -> BuildRecord:
        result = await self._runtime.db(self._store.cancel, build_id, by.name)
        self._attempts.request_cancel(result.running)
        self._notifier.changed(build_id)
        LOGGER.info(
            "build %d: cancel requested (%d running attempts)", build_id, len(result.running)
        )
        return self.explain(result.build)

    async def retry(
        self, build_id: int, job: str | None = None, by: Principal = SERVER_PRINCIPAL
    ) -> BuildRecord:
        """Runs one finished job again (or, without `job`, every unsuccessful one) and what
        needs it."""
        check_id("build", build_id)
        build = await self._runtime.db(self._store.retry, build_id, job, by.name)
        self._notifier.changed(build_id)
        self._dispatcher.work_available()
        return self.explain(build)

    def explain(self, build: BuildRecord) -> BuildRecord:
        """Fills in why each queued job still waits, from the agents known right now."""
        if not any(job.status is JobStatus.QUEUED for job in build.jobs):
            return build
        views = self._agents.views()
        jobs: builtins.list[JobRecord] = []
        for job in build.jobs:
            if job.status is JobStatus.QUEUED and not job.reason:
                reason, message = queued_reason(job.labels, views)
                jobs.append(replace(job, reason=reason, message=message))
            else:
                jobs.append(job)
        return replace(build, jobs=tuple(jobs))


def _queued_at_once(jobs: list[NewJob]) -> list[dict[str, str]]:
    """Labels of the jobs a new build queues at once: those that need nothing."""
    return [job.labels for job in jobs if not job.needs and not job.skipped]


def _parse(
    pipeline_yaml: str, source_name: str, env: Mapping[str, str], context: BuildContext
) -> tuple[Pipeline, list[NewJob]]:
    """The pipeline and the jobs it makes for this build; ValueError naming what is wrong."""
    pipeline = load_pipeline(pipeline_yaml, source_name)
    return pipeline, jobs_from_pipeline(pipeline, env, context)
