"""Running attempts: claims and their leases, step events, log appends, finishing, lease expiry.

Every call an agent makes about an attempt is fenced: the caller must hold the attempt's lease
(same agent, same token) or it gets FencedError and must stop. Leases live in memory; an attempt
whose lease is not renewed in time is ended by the reaper as `agent_lost`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.states import Outcome, Reason, StepStatus
from coordinator.config import (
    MAX_LOG_OFFSET_BYTES,
    MAX_LOST_LOG_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_REASON_CHARS,
)
from coordinator.domain.bounds import check_range, check_step_index
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.errors import FencedError, OutOfRangeError
from coordinator.domain.fanout import InTurn
from coordinator.domain.leases import Lease, LeaseTable
from coordinator.domain.loops import DEFAULT_BACKOFF, Backoff, every
from coordinator.domain.metrics import Metrics, NoMetrics
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.ports import AttemptStore, LogStorage, SecretSealer
from coordinator.domain.records import (
    Assignment,
    JobSpecRecord,
    LiveAttempt,
    StepEnd,
    StepFinish,
)
from coordinator.domain.registry import AgentRegistry, AgentSession
from coordinator.domain.runtime import Runtime, uncancellable
from coordinator.domain.secrets import open_secrets

LOGGER = logging.getLogger(__name__)

_STEP_STATUS = {
    Outcome.SUCCEEDED: StepStatus.SUCCEEDED,
    Outcome.FAILED: StepStatus.FAILED,
    Outcome.CANCELED: StepStatus.CANCELED,
}


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, as recorded (the first finish wins; later ones get this back)."""

    outcome: Outcome
    reason: str


def undeliverable(spec: JobSpecRecord) -> str | None:
    """Why a job as stored could not be sent to an agent (None: it can): its text must be
    Unicode that encodes as UTF-8, as every protobuf string must."""
    for index, step in enumerate(spec.steps):
        texts = {"name": step.name, "image": step.image, "run": step.run}
        texts.update({f"env name {name!r}": name for name in step.env})
        texts.update({f"env.{name}": value for name, value in step.env.items()})
        for field, text in texts.items():
            try:
                text.encode()
            except UnicodeEncodeError as error:
                return f"steps[{index}].{field}: not valid Unicode ({error.reason})"
    return None


class Claims:
    """The dispatcher's claim: takes queued jobs in the store and leases them, as one step.

    A claimed job that could not be sent to an agent is failed at once (reason `error`, logged)
    instead of being handed out: it would fail the agent's poll, then its lease would expire and
    blame the agent, again and again.
    """

    def __init__(
        self,
        runtime: Runtime,
        store: AttemptStore,
        leases: LeaseTable,
        notifier: BuildNotifier,
        sealer: SecretSealer,
        metrics: Metrics | None = None,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._leases = leases
        self._notifier = notifier
        self._sealer = sealer
        self._metrics = metrics or NoMetrics()

    async def __call__(
        self, agent_id: int, labels: Mapping[str, str], slots: int
    ) -> list[Assignment]:
        # A committed claim without its lease would never expire: finish even if the poll goes.
        return await uncancellable(self._claim(agent_id, labels, slots))

    async def _claim(
        self, agent_id: int, labels: Mapping[str, str], slots: int
    ) -> list[Assignment]:
        began = time.monotonic()
        claimed = await self._runtime.db(self._store.claim, agent_id, labels, slots)
        self._metrics.claimed(time.monotonic() - began, len(claimed))
        assignments = []
        for taken in claimed:
            assignment = await self._deliverable(taken)
            if assignment is None:
                continue
            assignments.append(assignment)
            if assignment.queued_for_ms is not None:
                self._metrics.queue_waited(assignment.queued_for_ms / 1000)
            self._leases.add(
                LiveAttempt(
                    assignment.attempt_id,
                    agent_id,
                    assignment.build_id,
                    assignment.lease_token,
                    cancel_requested=False,
                    step_count=len(assignment.spec.steps),
                )
            )
            self._notifier.changed(assignment.build_id)
        return assignments

    async def _deliverable(self, assignment: Assignment) -> Assignment | None:
        """The assignment as sent, its secrets opened (on a file thread); None once refused."""
        problem = undeliverable(assignment.spec)
        if problem is None and assignment.sealed_secrets:
            opened = await self._runtime.io(open_secrets, assignment, self._sealer)
            if isinstance(opened, Assignment):
                return opened
            problem = opened
        if problem is None:
            return assignment
        await self._refuse(assignment, problem)
        return None

    async def _refuse(self, assignment: Assignment, problem: str) -> None:
        LOGGER.error(
            "build %d job %s: cannot be sent to an agent (%s); attempt %d failed",
            assignment.build_id,
            assignment.job_name,
            problem,
            assignment.attempt_id,
        )
        await self._runtime.db(
            self._store.finish,
            assignment.attempt_id,
            outcome=Outcome.FAILED,
            reason=Reason.ERROR,
            message=f"the job cannot be sent to an agent: {problem}",
            exit_code=None,
        )
        self._notifier.changed(assignment.build_id)


class Attempts:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: AttemptStore,
        logs: LogStorage,
        leases: LeaseTable,
        registry: AgentRegistry,
        dispatcher: Dispatcher,
        notifier: BuildNotifier,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self._runtime = runtime
        self._store = store
        self._logs = logs
        self._leases = leases
        self._registry = registry
        self._dispatcher = dispatcher
        self._notifier = notifier
        self._log_turns = InTurn()

    async def load(self) -> int:
        """Leases every attempt the store says runs, with a fresh TTL; returns how many."""
        for attempt in await self._runtime.db(self._store.live):
            self._leases.add(attempt)
        return len(self._leases)

    def check(self, agent: AgentSession, attempt_id: int, token: str) -> Lease:
        """The caller's live lease on the attempt; FencedError if it does not hold one."""
        return self._leases.check(agent.id, attempt_id, token)

    def held_by(self, agent_id: int) -> int:
        return sum(1 for _ in self._leases.of_agent(agent_id))

    # Agent-facing (fenced)

    async def start_step(
        self, agent: AgentSession, attempt_id: int, token: str, index: int
    ) -> bool:
        """Marks a step running; whether the attempt has been asked to cancel."""
        lease = self.check(agent, attempt_id, token)
        check_step_index("step_index", index, lease.step_count)
        await self._runtime.db(self._store.start_step, attempt_id, index)
        self._notifier.changed(lease.build_id)
        return lease.cancel_requested

    async def append_log(
        self, agent: AgentSession, attempt_id: int, token: str, index: int, offset: int, data: bytes
    ) -> tuple[int, bool]:
        """Stores log bytes found at `offset`; (length held, accepted) as in LogStorage.append."""
        lease = self.check(agent, attempt_id, token)
        check_step_index("step_index", index, lease.step_count)
        check_range("offset", offset, 0, MAX_LOG_OFFSET_BYTES - len(data))
        # In the order they came: an agent sends a step's next chunk before the last is stored.
        async with self._log_turns.turn((attempt_id, index)):
            held, accepted = await self._runtime.io(
                self._logs.append, attempt_id, index, offset, data
            )
        self._notifier.appended(lease.build_id)  # bytes only: followers need no store read
        if accepted:
            self._metrics.log_bytes(len(data))
        return held, accepted

    async def finish_step(
        self,
        agent: AgentSession,
        attempt_id: int,
        token: str,
        index: int,
        *,
        outcome: Outcome,
        exit_code: int | None,
        log_lost_bytes: int = 0,
    ) -> None:
        lease = self.check(agent, attempt_id, token)
        end = await self._step_finish(lease, StepEnd(index, outcome, exit_code, log_lost_bytes))
        await self._runtime.db(
            self._store.finish_step,
            attempt_id,
            end.index,
            end.status,
            end.exit_code,
            end.log_length,
            end.log_lost_bytes,
        )
        self._notifier.changed(lease.build_id)

    async def _step_finish(self, lease: Lease, end: StepEnd) -> StepFinish:
        """The step's end as it is recorded: checked, with the length of its log held here."""
        check_step_index("step_index", end.index, lease.step_count)
        check_range("log_lost_bytes", end.log_lost_bytes, 0, MAX_LOST_LOG_BYTES)
        # A stat of a file just written: cheaper on the loop than a trip to a file thread.
        length = self._logs.length(lease.attempt_id, end.index)
        self._logs.forget(lease.attempt_id, end.index)
        status = _STEP_STATUS[end.outcome]
        return StepFinish(end.index, status, end.exit_code, length, end.log_lost_bytes)

    async def finish(
        self,
        agent: AgentSession,
        attempt_id: int,
        token: str,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        last_step: StepEnd | None = None,
    ) -> AttemptResult:
        """Records the agent's result, and first the end of `last_step` if given (one
        transaction: one change for the build's watchers); a resend of the same finish gets the
        same answer."""
        if len(reason) > MAX_REASON_CHARS:
            raise OutOfRangeError(
                f"reason: too long ({len(reason)} > {MAX_REASON_CHARS} characters)"
            )
        if len(message) > MAX_MESSAGE_CHARS:
            raise OutOfRangeError(
                f"message: too long ({len(message)} > {MAX_MESSAGE_CHARS} characters)"
            )
        try:
            lease = self.check(agent, attempt_id, token)
        except FencedError:
            stored, stored_reason, stored_token = await self._runtime.db(
                self._store.result, attempt_id
            )
            resent = (stored, stored_reason) == (outcome, reason)
            if resent and hmac.compare_digest(stored_token, token):
                return AttemptResult(outcome, reason)  # the lease went with the first finish
            raise
        step = None if last_step is None else await self._step_finish(lease, last_step)
        return await self.end(
            attempt_id,
            outcome=outcome,
            reason=reason,
            message=message,
            exit_code=exit_code,
            step=step,
        )

    # Coordinator-side ends

    async def end(
        self,
        attempt_id: int,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None = None,
    ) -> AttemptResult:
        """Ends an attempt whoever holds it (after `step`, the end of its last step), and wakes
        what that frees: runs to the end even if the request that asked is cancelled (the lease
        must go with the commit)."""
        ending = self._end(attempt_id, outcome, reason, message, exit_code, step)
        return await uncancellable(ending)

    async def _end(
        self,
        attempt_id: int,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None,
    ) -> AttemptResult:
        lease = self._leases.check_any(attempt_id)
        end = await self._runtime.db(
            self._store.finish,
            attempt_id,
            outcome=outcome,
            reason=reason,
            message=message,
            exit_code=exit_code,
            step=step,
        )
        self._leases.remove(attempt_id)
        if not end.already_recorded:
            ran_s = self._leases.held_for(lease) if lease is not None else None
            self._metrics.attempt_ended(end.outcome.value, ran_s)
        if lease is not None:
            self._dispatcher.forget_cancel(lease.agent_id, attempt_id)
            self._dispatcher.wake(lease.agent_id)  # a slot is free
        if end.jobs_queued:
            self._dispatcher.work_available(end.queued_labels)
        self._notifier.changed(end.build_id)
        for build_id in end.changed_builds:
            self._notifier.changed(build_id)
        return AttemptResult(end.outcome, end.reason)

    async def end_unlisted(self, agent: AgentSession, kept: Sequence[tuple[int, str]]) -> None:
        """A re-registering agent re-presents (attempt, token) it still runs; the rest is lost."""
        still_running = set(kept)
        for lease in list(self._leases.of_agent(agent.id)):
            if (lease.attempt_id, lease.token) not in still_running:
                await self.end(
                    lease.attempt_id,
                    outcome=Outcome.FAILED,
                    reason=Reason.AGENT_LOST,
                    message=f"agent {agent.name} restarted without this attempt",
                    exit_code=None,
                )

    async def end_all_of(self, agent_id: int, message: str) -> None:
        """Every attempt the agent holds is lost (re-queued or failed per its retry rule)."""
        for lease in list(self._leases.of_agent(agent_id)):
            await self.end(
                lease.attempt_id,
                outcome=Outcome.FAILED,
                reason=Reason.AGENT_LOST,
                message=message,
                exit_code=None,
            )

    def request_cancel(self, running: Sequence[LiveAttempt]) -> None:
        """Tells the agents of these attempts to stop them (on their next poll or renewal)."""
        for attempt in running:
            self._leases.mark_cancel(attempt.attempt_id)
            self._dispatcher.cancel_attempt(attempt.agent_id, attempt.attempt_id)

    # Lease expiry

    async def reap_forever(
        self,
        stop: asyncio.Event,
        period_s: float,
        each_round: Callable[[], Awaitable[None]] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> None:
        """Every `period_s` until `stop` is set: ends attempts whose lease expired, then runs
        `each_round` (other periodic upkeep). A failed round is logged and retried after a
        backoff: the loop itself goes on."""

        async def one_round() -> None:
            await self.expire_due()
            if each_round is not None:
                await each_round()

        await every("lease reaper", period_s, one_round, stop, backoff)

    async def expire_due(self) -> int:
        """Ends every attempt whose lease has expired (reason agent_lost); returns how many.

        One attempt the store cannot end does not keep the others running: each is tried, and
        the failures are raised together at the end (the reaper logs them and retries)."""
        ended = 0
        failures: list[Exception] = []
        for lease in self._leases.expired():
            try:
                ended += await self._expire(lease)
            except Exception as error:
                failures.append(error)
        if failures:
            raise ExceptionGroup(
                f"{len(failures)} expired attempt(s) could not be ended ({ended} were)", failures
            )
        return ended

    async def _expire(self, lease: Lease) -> bool:
        # Earlier expiries in this round awaited the store: this lease may have been renewed or
        # ended since.
        if not self._leases.is_due(lease):
            return False
        name = self._registry.lost_lease(lease.agent_id)
        # What was observed, not a guess at the culprit: the agent, the network or this
        # coordinator (frozen, or its disk) may be why no renewal arrived.
        observed = f"no lease renewal from agent {name} for {self._leases.silent_for(lease):.1f} s"
        LOGGER.warning("attempt %d: lease expired: %s", lease.attempt_id, observed)
        self._metrics.lease_expired()
        await self.end(
            lease.attempt_id,
            outcome=Outcome.FAILED,
            reason=Reason.AGENT_LOST,
            message=observed,
            exit_code=None,
        )
        return True
