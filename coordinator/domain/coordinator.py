"""The coordinator's domain API, used by both gRPC services; owns the store thread and the leases.

Everything here runs on the event loop. Blocking work goes to two executors: one thread for the
database (which also serialises writers) and a few for log files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

from conveyor import PROTOCOL_VERSION
from conveyor.pipeline import load_pipeline
from conveyor.states import JobStatus, Outcome, Reason, StepStatus
from coordinator.config import LOG_IO_THREADS, CoordinatorConfig
from coordinator.domain.agents import MODES, AgentRegistry, AgentSession, session_hash
from coordinator.domain.dispatch import Dispatcher, PollResult
from coordinator.domain.errors import AuthError, ConflictError, FencedError, NotFoundError
from coordinator.domain.leases import Lease, LeaseTable
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.records import AgentRecord, Assignment, BuildRecord, JobRecord, LiveAttempt
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.policy import scheduling as scheduler
from coordinator.storage.logs import LogStore
from coordinator.store import Store
from coordinator.store.artifacts import SourceSpec

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseState:
    ACTIVE = "active"
    CANCEL = "cancel"
    LOST = "lost"


class Coordinator:
    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(config.database_url)
        self.logs = LogStore(config.log_dir)
        self.notifier = BuildNotifier()
        self.leases = LeaseTable(config.lease_ttl_s)
        self.dispatcher = Dispatcher(self._claim)
        self._db = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._io = ThreadPoolExecutor(LOG_IO_THREADS, thread_name_prefix="logs")
        self.registry = AgentRegistry(config.agent_offline_after_s)

    async def db(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, functools.partial(fn, *args, **kwargs))

    async def io(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._io, functools.partial(fn, *args)
        )

    async def start(self) -> None:
        for attempt in await self.db(self.store.attempts.live):
            self.leases.add(attempt)
        for agent in await self.db(self.store.agents.list):
            self.registry.remember(agent, last_seen=0.0)
        LOGGER.info(
            "coordinator state loaded: %d running attempts, %d known agents",
            len(self.leases),
            len(self.registry),
        )

    async def close(self) -> None:
        self._db.shutdown(wait=True)
        self._io.shutdown(wait=True)
        self.store.close()

    # Authentication

    def check_client_token(self, token: str | None) -> None:
        if token is None or not hmac.compare_digest(token, self.config.client_token):
            raise AuthError("missing or wrong client token")

    def agent_for(self, session_token: str | None) -> AgentSession:
        return self.registry.by_session(session_token)

    # Agent-facing

    async def register(
        self,
        *,
        join_token: str,
        name: str,
        labels: Mapping[str, str],
        capacity: int,
        protocol_version: int,
        running: Sequence[tuple[int, str]],
    ) -> tuple[AgentSession, str]:
        if not hmac.compare_digest(join_token, self.config.agent_token):
            raise AuthError("wrong join token")
        if protocol_version != PROTOCOL_VERSION:
            raise ConflictError(
                f"agent speaks protocol {protocol_version}, "
                f"coordinator speaks {PROTOCOL_VERSION}: upgrade the older side"
            )
        if not name or capacity < 1:
            raise ValueError("an agent needs a name and a capacity of at least 1")
        secret = secrets.token_urlsafe(24)
        record = await self.db(
            self.store.agents.register, name=name, labels=labels, capacity=capacity, session_hash=""
        )
        session_token = f"{record.id}.{secret}"
        record = await self.db(
            self.store.agents.register,
            name=name,
            labels=labels,
            capacity=capacity,
            session_hash=session_hash(session_token),
        )
        agent = self.registry.remember(record, last_seen=time.monotonic())
        # No wake-up for the others: this agent polls next, and waking every parked agent at each
        # registration would cost N^2 claims while a large farm starts.
        await self._drop_forgotten_attempts(agent, running)
        LOGGER.info(
            "agent %s (id %d) registered: labels %s, capacity %d", name, agent.id, labels, capacity
        )
        return agent, session_token

    async def poll(self, agent: AgentSession, free_slots: int, draining: bool) -> PollResult:
        """Waits for work or cancellations; `drain` in the result relays an operator's drain."""

        def slots() -> int:
            if not agent.takes_work:
                return 0
            held = sum(1 for _ in self.leases.of_agent(agent.id))
            return min(free_slots, agent.capacity - held)

        agent.draining = draining
        result = await self.dispatcher.poll(
            agent.id, agent.labels, slots, self.config.poll_timeout_s
        )
        agent.last_seen = time.monotonic()
        result.drain = agent.mode == "draining"
        return result

    async def set_agent_mode(self, name: str, mode: str) -> tuple[AgentRecord, str]:
        if mode not in MODES:
            raise ValueError(f"unknown agent mode '{mode}' (use {', '.join(MODES)})")
        record = await self.db(self.store.agents.set_mode, name, mode)
        agent = self.registry.get(record.id)
        if agent is not None:
            agent.mode = mode
            self.dispatcher.nudge(agent.id)
        if mode == "active":
            self.dispatcher.work_available()
        LOGGER.info("agent %s set to %s by an operator", name, mode)
        return record, self._agent_state(record.id)

    def renew(
        self, agent: AgentSession, leases: Sequence[tuple[int, str]]
    ) -> list[tuple[int, str]]:
        states = []
        for attempt_id, token in leases:
            lease = self.leases.renew(agent.id, attempt_id, token)
            if lease is None:
                states.append((attempt_id, LeaseState.LOST))
            elif lease.cancel_requested:
                states.append((attempt_id, LeaseState.CANCEL))
            else:
                states.append((attempt_id, LeaseState.ACTIVE))
        return states

    async def start_step(
        self, agent: AgentSession, attempt_id: int, token: str, index: int
    ) -> bool:
        lease = self.leases.check(agent.id, attempt_id, token)
        await self.db(self.store.attempts.start_step, attempt_id, index)
        self.notifier.changed(lease.build_id)
        return lease.cancel_requested

    async def append_log(
        self, agent: AgentSession, attempt_id: int, token: str, index: int, offset: int, data: bytes
    ) -> tuple[int, bool]:
        lease = self.leases.check(agent.id, attempt_id, token)
        held, accepted = await self.io(self.logs.append, attempt_id, index, offset, data)
        self.notifier.changed(lease.build_id)
        return held, accepted

    async def finish_step(
        self,
        agent: AgentSession,
        attempt_id: int,
        token: str,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_lost_bytes: int = 0,
    ) -> None:
        lease = self.leases.check(agent.id, attempt_id, token)
        length = await self.io(self.logs.length, attempt_id, index)
        self.logs.forget(attempt_id, index)
        await self.db(
            self.store.attempts.finish_step,
            attempt_id,
            index,
            status,
            exit_code,
            length,
            log_lost_bytes,
        )
        self.notifier.changed(lease.build_id)

    async def finish_attempt(
        self,
        agent: AgentSession,
        attempt_id: int,
        token: str,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
    ) -> tuple[Outcome, str]:
        try:
            self.leases.check(agent.id, attempt_id, token)
        except FencedError:
            stored, stored_reason, stored_token = await self.db(
                self.store.attempts.result, attempt_id
            )
            resent = (stored, stored_reason) == (outcome, reason)
            if resent and hmac.compare_digest(stored_token, token):
                return outcome, reason  # the same finish again: answer as the first time
            raise
        return await self._end_attempt(
            attempt_id, outcome=outcome, reason=reason, message=message, exit_code=exit_code
        )

    # Client-facing

    async def submit(
        self,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        source: SourceSpec | None = None,
    ) -> int:
        """`source` (an uploaded snapshot or `--git`) overrides the pipeline's `source:`."""
        return await _uncancellable(self._accept(pipeline_yaml, source_name, env, source))

    async def _accept(
        self,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        source: SourceSpec | None,
    ) -> int:
        pipeline = load_pipeline(pipeline_yaml, source_name)
        jobs = jobs_from_pipeline(pipeline, env)
        if source is None and pipeline.source is not None:
            source = SourceSpec(git_url=pipeline.source.url, git_ref=pipeline.source.ref)
        digest = source.snapshot_sha256 if source is not None else ""
        if digest and not await self.db(self.store.artifacts.has_blob, digest):
            raise NotFoundError(
                f"source snapshot {digest} is not on the coordinator; upload it first"
            )
        build_id = await self.db(
            self.store.builds.create,
            name=pipeline.name,
            pipeline_yaml=pipeline_yaml,
            source_name=source_name,
            env=env,
            jobs=jobs,
            source=source,
        )
        LOGGER.info("build %d (%s) accepted with %d jobs", build_id, pipeline.name, len(jobs))
        # Jobs that need nothing are queued at once; the others wait for their needs to end.
        self.dispatcher.work_available([job.labels for job in jobs if not job.needs])
        return build_id

    async def get_build(self, build_id: int) -> BuildRecord:
        return self._explain(await self.db(self.store.builds.get, build_id))

    async def list_builds(self, limit: int) -> list[BuildRecord]:
        return await self.db(self.store.builds.list, limit)

    async def cancel(self, build_id: int) -> BuildRecord:
        return await _uncancellable(self._cancel_now(build_id))

    async def _cancel_now(self, build_id: int) -> BuildRecord:
        result = await self.db(self.store.builds.cancel, build_id)
        for attempt in result.running:
            self.leases.mark_cancel(attempt.attempt_id)
            self.dispatcher.cancel_attempt(attempt.agent_id, attempt.attempt_id)
        self.notifier.changed(build_id)
        LOGGER.info(
            "build %d: cancel requested (%d running attempts)", build_id, len(result.running)
        )
        return self._explain(result.build)

    async def retry(self, build_id: int, job: str | None) -> BuildRecord:
        build = await self.db(self.store.builds.retry, build_id, job)
        self.notifier.changed(build_id)
        self.dispatcher.work_available()
        return self._explain(build)

    async def list_agents(self) -> list[tuple[AgentRecord, str]]:
        records = await self.db(self.store.agents.list)
        return [(record, self._agent_state(record.id)) for record in records]

    def _agent_state(self, agent_id: int) -> str:
        return self.registry.state(agent_id, polling=self.dispatcher.is_waiting(agent_id))

    # Leases

    async def reap_forever(self, stop: asyncio.Event) -> None:
        """Ends attempts whose lease expired (reason agent_lost) every reaper period."""
        while not stop.is_set():
            for lease in self.leases.expired():
                await self._expire(lease)
            await self._persist_last_seen()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.reaper_period_s)

    async def _expire(self, lease: Lease) -> None:
        # Earlier expiries in this round awaited the store: this lease may have been renewed since.
        current = self.leases.check_any(lease.attempt_id)
        if current is not lease or lease.deadline > time.monotonic():
            return
        agent = self.registry.get(lease.agent_id)
        name = agent.name if agent else f"#{lease.agent_id}"
        if agent is not None:
            agent.silent = True
        LOGGER.warning("attempt %d: lease of agent %s expired", lease.attempt_id, name)
        await self._end_attempt(
            lease.attempt_id,
            outcome=Outcome.FAILED,
            reason=Reason.AGENT_LOST,
            message=f"agent {name} stopped renewing its lease",
            exit_code=None,
        )

    async def _end_attempt(
        self, attempt_id: int, *, outcome: Outcome, reason: str, message: str, exit_code: int | None
    ) -> tuple[Outcome, str]:
        return await _uncancellable(
            self._record_end(attempt_id, outcome, reason, message, exit_code)
        )

    async def _record_end(
        self, attempt_id: int, outcome: Outcome, reason: str, message: str, exit_code: int | None
    ) -> tuple[Outcome, str]:
        lease = self.leases.check_any(attempt_id)
        end = await self.db(
            self.store.attempts.finish,
            attempt_id,
            outcome=outcome,
            reason=reason,
            message=message,
            exit_code=exit_code,
        )
        self.leases.remove(attempt_id)
        if lease is not None:
            self.dispatcher.forget_cancel(lease.agent_id, attempt_id)
            self.dispatcher.wake(lease.agent_id)
        if end.jobs_queued:
            self.dispatcher.work_available(end.queued_labels)
        self.notifier.changed(end.build_id)
        return end.outcome, end.reason

    async def _drop_forgotten_attempts(
        self, agent: AgentSession, running: Sequence[tuple[int, str]]
    ) -> None:
        """A re-registering agent re-presents what it still runs; anything else of it is lost."""
        kept = set(running)
        for lease in list(self.leases.of_agent(agent.id)):
            if (lease.attempt_id, lease.token) not in kept:
                await self._end_attempt(
                    lease.attempt_id,
                    outcome=Outcome.FAILED,
                    reason=Reason.AGENT_LOST,
                    message=f"agent {agent.name} restarted without this attempt",
                    exit_code=None,
                )

    async def _claim(
        self, agent_id: int, labels: Mapping[str, str], slots: int
    ) -> list[Assignment]:
        return await _uncancellable(self._claim_and_lease(agent_id, labels, slots))

    async def _claim_and_lease(
        self, agent_id: int, labels: Mapping[str, str], slots: int
    ) -> list[Assignment]:
        assignments = await self.db(self.store.attempts.claim, agent_id, labels, slots)
        for assignment in assignments:
            self.leases.add(
                LiveAttempt(
                    assignment.attempt_id,
                    agent_id,
                    assignment.build_id,
                    assignment.lease_token,
                    cancel_requested=False,
                )
            )
            self.notifier.changed(assignment.build_id)
        return assignments

    # Agents in memory

    async def _persist_last_seen(self) -> None:
        stamps = self.registry.last_seen_ms()
        if stamps:
            await self.db(self.store.agents.touch, stamps)

    def _explain(self, build: BuildRecord) -> BuildRecord:
        """Fills in why each queued job still waits, from the agents known right now."""
        if not any(job.status is JobStatus.QUEUED for job in build.jobs):
            return build
        views = [
            scheduler.AgentView(
                a.labels,
                a.capacity if a.takes_work else 0,
                sum(1 for _ in self.leases.of_agent(a.id)),
                self.registry.online(a.id, polling=self.dispatcher.is_waiting(a.id)),
            )
            for a in self.registry.all()
        ]
        jobs: list[JobRecord] = []
        for job in build.jobs:
            if job.status is JobStatus.QUEUED and not job.reason:
                reason, message = scheduler.queued_reason(job.labels, views)
                jobs.append(replace(job, reason=reason, message=message))
            else:
                jobs.append(job)
        return replace(build, jobs=tuple(jobs))


async def _uncancellable(work: Coroutine[object, object, T]) -> T:
    """Runs a commit and the in-memory bookkeeping after it to the end, even if the RPC that
    asked for it is cancelled meanwhile: a committed claim without its lease would never expire."""
    return await asyncio.shield(asyncio.ensure_future(work))
