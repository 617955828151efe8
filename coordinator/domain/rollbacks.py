"""Rollback without rebuilding (DESIGN §4.1): deploy a recorded deployment's artifacts again.

The store makes the build (one job, the deployment's, with its recorded pipeline, commit and
artifacts by digest); this part checks who asks, and that the job's own `when:` admits a
rollback, before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from conveyor.pipeline import load_pipeline
from conveyor.pipeline.issues import PipelineError
from coordinator.domain.access import DEPLOY, Principal, check_role
from coordinator.domain.bounds import check_id
from coordinator.domain.delivery_records import RollbackPlan
from coordinator.domain.deployments import check_environment_name
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.errors import ConflictError
from coordinator.domain.ports import RollbackStore
from coordinator.domain.runtime import Runtime, uncancellable
from coordinator.policy.conditions import BuildContext, condition_admits, condition_message

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollbackStarted:
    build_id: int
    redeploys: int


class Rollbacks:
    def __init__(self, *, runtime: Runtime, store: RollbackStore, dispatcher: Dispatcher) -> None:
        self._runtime = runtime
        self._store = store
        self._dispatcher = dispatcher

    async def start(
        self, environment: str, to: int | None, principal: Principal
    ) -> RollbackStarted:
        """Starts a build that redeploys `to` (or the default target) to `environment`."""
        check_environment_name(environment)
        if to is not None:
            check_id("to_deployment", to)
        check_role(principal, DEPLOY, f"roll back {environment}")
        plan = await self._runtime.db(self._store.plan, environment, to)
        await self._runtime.io(_check_condition, plan)
        build_id = await uncancellable(self._runtime.db(self._store.create, plan, principal.name))
        LOGGER.info(
            "build %d: %s rolls %s back to deployment %d",
            build_id,
            principal.name,
            environment,
            plan.redeploys,
        )
        self._dispatcher.work_available([plan.labels])
        return RollbackStarted(build_id, plan.redeploys)


def _check_condition(plan: RollbackPlan) -> None:
    """ConflictError when the job's `when:` excludes this rollback: a skipped job would deploy
    nothing, and saying so before anything is made is clearer than an empty build."""
    try:
        pipeline = load_pipeline(plan.pipeline_yaml, plan.source_name, recorded=True)
    except PipelineError as error:
        raise ConflictError(
            f"deployment {plan.redeploys} cannot be deployed again: its recorded pipeline no "
            f"longer validates ({error})"
        ) from None
    context = BuildContext("rollback", plan.branch, plan.tag)
    condition = pipeline.job(plan.job).when
    if not condition_admits(condition, context):
        assert condition is not None
        raise ConflictError(
            f"job {plan.job} of deployment {plan.redeploys} does not run in a rollback: "
            f"{condition_message(condition, context)}"
        )
