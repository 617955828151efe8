"""Approval gates (DESIGN §4.1): a person's decision, recorded once, and the gates' timeouts.

A gate never reaches an agent; the store keeps its state, so a decision or a wait survives a
coordinator restart. Who decided is the name of the caller's token; the gate's `roles` are
checked against that token's role inside the same transaction as the decision.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from coordinator.config import MAX_COMMENT_CHARS
from coordinator.domain.access import Principal, check_role
from coordinator.domain.bounds import check_id
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.loops import every
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.ports import ApprovalStore
from coordinator.domain.records import BuildRecord
from coordinator.domain.runtime import Runtime, uncancellable

LOGGER = logging.getLogger(__name__)


class Gates:
    def __init__(
        self,
        *,
        runtime: Runtime,
        store: ApprovalStore,
        notifier: BuildNotifier,
        dispatcher: Dispatcher,
    ) -> None:
        self._runtime = runtime
        self._store = store
        self._notifier = notifier
        self._dispatcher = dispatcher

    async def decide(
        self, build_id: int, job: str, *, approve: bool, comment: str, principal: Principal
    ) -> BuildRecord:
        """Approves (the gate succeeds) or rejects (it fails, reason `rejected`) a waiting gate."""
        if len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"comment: too long ({len(comment)} > {MAX_COMMENT_CHARS} characters)")
        if "\0" in comment:
            raise ValueError("comment: contains a NUL character")
        check_id("build", build_id)
        action = f"{'approve' if approve else 'reject'} build {build_id} job {job}"

        def authorize(roles: Sequence[str]) -> None:
            check_role(principal, roles, action)

        build = await uncancellable(
            self._runtime.db(
                self._store.decide,
                build_id,
                job,
                approve=approve,
                by=principal.name,
                comment=comment,
                authorize=authorize,
            )
        )
        LOGGER.info("build %d: gate %s %s by %s", build_id, job, _verb(approve), principal.name)
        self._changed([build_id])
        return build

    async def expire_due(self) -> None:
        builds = await self._runtime.db(self._store.expire_due)
        if builds:
            LOGGER.info("approval gates timed out in builds %s", ", ".join(map(str, builds)))
            self._changed(builds)

    async def expire_forever(self, stop: asyncio.Event, period_s: float) -> None:
        """Fails gates past their timeout every `period_s` until `stop` is set."""
        await every("approval gate timeouts", period_s, self.expire_due, stop)

    def _changed(self, builds: list[int]) -> None:
        for build_id in builds:
            self._notifier.changed(build_id)
        # A decided gate may have queued the jobs after it.
        self._dispatcher.work_available()


def _verb(approve: bool) -> str:
    return "approved" if approve else "rejected"
