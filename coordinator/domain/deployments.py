"""Environments and their deployments, as people read them (`conveyor envs`, `deployments`).

Deployments are recorded by the store as deployment jobs end (see `coordinator.store.deployments`);
this part only reads them back, within bounds.
"""

from __future__ import annotations

import time

from conveyor.pipeline.values import NAME_RE
from coordinator.config import (
    DEFAULT_LIST_LIMIT,
    MAX_ENVIRONMENT_CHARS,
    MAX_FIGURES_DEPLOYMENTS,
    MAX_LIST_LIMIT,
)
from coordinator.domain.bounds import check_range
from coordinator.domain.delivery_records import DeploymentRecord, EnvironmentRecord
from coordinator.domain.errors import NotFoundError, OutOfRangeError
from coordinator.domain.ports import DeploymentIndex
from coordinator.domain.runtime import Runtime
from coordinator.policy.dora import DeliveryFigures, DeploymentFact, delivery_figures


def check_environment_name(environment: str) -> None:
    """OutOfRangeError for an overlong name, NotFoundError for one no pipeline could name."""
    if len(environment) > MAX_ENVIRONMENT_CHARS:
        raise OutOfRangeError(
            f"environment: too long ({len(environment)} > {MAX_ENVIRONMENT_CHARS} characters)"
        )
    if not NAME_RE.fullmatch(environment):
        # No pipeline could have named it, so there is nothing to look up.
        raise NotFoundError(f"environment {environment!r} does not exist")


class Deployments:
    def __init__(self, *, runtime: Runtime, store: DeploymentIndex) -> None:
        self._runtime = runtime
        self._store = store

    async def environments(self) -> list[EnvironmentRecord]:
        return await self._runtime.db(self._store.environments)

    async def of(self, environment: str, limit: int = 0) -> list[DeploymentRecord]:
        """The environment's deployments, newest first; `limit` 0 means the default (capped)."""
        check_environment_name(environment)
        check_range("limit", limit, 0, 2**31 - 1)
        limit = min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        return await self._runtime.db(self._store.deployments, environment, limit)

    async def figures(self, environment: str | None, since_ms: int) -> DeliveryFigures:
        """The delivery figures (DESIGN §4.1) of one environment or of all, since `since_ms`.

        The whole history goes in, not only the window: a rollback, an outage's first failure
        or an earlier delivery of a commit may lie before it."""
        now_ms = int(time.time() * 1000)
        check_range("since_ms", since_ms, 0, now_ms)
        if environment is not None:
            await self.of(environment, 1)  # NotFoundError / OutOfRangeError, as for `deployments`
            names = [environment]
        else:
            names = [found.name for found in await self.environments()]
        facts: list[DeploymentFact] = []
        for name in names:
            history = await self._runtime.db(self._store.deployments, name, MAX_FIGURES_DEPLOYMENTS)
            facts.extend(_fact(deployment) for deployment in history)
        return delivery_figures(facts, since_ms=since_ms, now_ms=now_ms, environment=environment)


def _fact(deployment: DeploymentRecord) -> DeploymentFact:
    return DeploymentFact(
        id=deployment.id,
        environment=deployment.environment,
        status=deployment.status,
        started_at_ms=deployment.started_at_ms,
        finished_at_ms=deployment.finished_at_ms,
        commit=deployment.commit,
        commit_time_ms=deployment.committed_at_ms,
        redeploys=deployment.redeploys,
    )
