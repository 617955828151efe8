"""Environments and their deployments, as people read them (`conveyor envs`, `deployments`).

Deployments are recorded by the store as deployment jobs end (see `coordinator.store.deployments`);
this part only reads them back, within bounds.
"""

from __future__ import annotations

from conveyor.pipeline.values import NAME_RE
from coordinator.config import DEFAULT_LIST_LIMIT, MAX_ENVIRONMENT_CHARS, MAX_LIST_LIMIT
from coordinator.domain.bounds import check_range
from coordinator.domain.delivery_records import DeploymentRecord, EnvironmentRecord
from coordinator.domain.errors import NotFoundError, OutOfRangeError
from coordinator.domain.ports import DeploymentIndex
from coordinator.domain.runtime import Runtime


class Deployments:
    def __init__(self, *, runtime: Runtime, store: DeploymentIndex) -> None:
        self._runtime = runtime
        self._store = store

    async def environments(self) -> list[EnvironmentRecord]:
        return await self._runtime.db(self._store.environments)

    async def of(self, environment: str, limit: int = 0) -> list[DeploymentRecord]:
        """The environment's deployments, newest first; `limit` 0 means the default (capped)."""
        if len(environment) > MAX_ENVIRONMENT_CHARS:
            raise OutOfRangeError(
                f"environment: too long ({len(environment)} > {MAX_ENVIRONMENT_CHARS} characters)"
            )
        if not NAME_RE.fullmatch(environment):
            # No pipeline could have named it, so there is nothing to look up.
            raise NotFoundError(f"environment {environment!r} does not exist")
        check_range("limit", limit, 0, 2**31 - 1)
        limit = min(limit or DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        return await self._runtime.db(self._store.deployments, environment, limit)
