"""A claimed attempt carries what its steps' CONVEYOR_* variables say: the build's event, branch
and tag, and the job's environment."""

from __future__ import annotations

from conveyor.pipeline import load_pipeline
from coordinator.domain.records import StepContext
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.policy.conditions import BuildContext
from coordinator.store import Store

DEPLOYING = """\
name: deploying
image: conveyor/busybox
jobs:
  build:
    steps: [{run: "true"}]
  staging:
    environment: staging
    steps: [{run: "true"}]
  locked:
    concurrency: {group: shared}
    steps: [{run: "true"}]
"""


def _submit(store: Store, context: BuildContext) -> int:
    pipeline = load_pipeline(DEPLOYING)
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=DEPLOYING,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}, context),
        context=context,
    )


def test_claims_carry_the_build_context_and_the_job_environment(store: Store) -> None:
    agent = store.agents.register(name="a", labels={}, capacity=8, session_hash="")
    on_main = _submit(store, BuildContext("push", "main", None))
    tagged = _submit(store, BuildContext("tag", None, "v1.2"))
    claimed = store.attempts.claim(agent.id, {}, 8)
    contexts = {(a.build_id, a.job_name): a.context for a in claimed}
    assert contexts == {
        (on_main, "build"): StepContext("push", "main", "", ""),
        (on_main, "staging"): StepContext("push", "main", "", "staging"),
        (on_main, "locked"): StepContext("push", "main", "", ""),
        # The tagged build's lock jobs wait for the locks the first build holds.
        (tagged, "build"): StepContext("tag", "", "v1.2", ""),
    }
