"""An attempt's artifacts rule comes from its job's spec, frozen at submission; jobs stored before
the spec kept it still find it in their build's recorded pipeline."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from coordinator.domain.artifact_records import Inputs
from coordinator.domain.records import Assignment
from coordinator.store import Store
from tests.unit.coordinator.fakes import Harness, coordinator
from tests.unit.coordinator.test_attempts import agent_with_work
from tests.unit.coordinator.test_deploy_store import SHIP, claim
from tests.unit.coordinator.test_store import submit

RECORDED = """\
name: old
image: conveyor/busybox
jobs:
  job-0:
    steps: [{run: "true"}]
    artifacts: {paths: [dist/**], when: always}
"""


def assert_claim_carried_inputs(store: Store, attempt: Assignment) -> None:
    """The claim handed over what GetInputs answers (all but the pipeline, which it skips)."""
    asked = store.artifacts.inputs(attempt.attempt_id)
    assert attempt.inputs == replace(asked, pipeline_yaml="")


def inputs_of(stored: Inputs) -> tuple[tuple[str, ...], bool]:
    async def main() -> tuple[tuple[str, ...], bool]:
        h: Harness = coordinator()
        agent, work = await agent_with_work(h)
        h.state.artifacts.inputs_of[work.attempt_id] = stored
        found = await h.core.artifacts.inputs(agent, work.attempt_id, work.lease_token)
        await h.core.close()
        return found.artifact_paths, found.artifacts_always

    return asyncio.run(main())


def test_the_rule_frozen_in_the_spec_is_used_without_reading_the_pipeline() -> None:
    # Text no parser accepts: had the rule been read from it, the call would fail.
    stored = Inputs(None, (), "{{ not yaml", "job-0", 0, ("out/*.tar",), False)
    assert inputs_of(stored) == (("out/*.tar",), False)


def test_a_job_stored_before_the_spec_kept_the_rule_reads_its_recorded_pipeline() -> None:
    stored = Inputs(None, (), RECORDED, "job-0", 0, None)
    assert inputs_of(stored) == (("dist/**",), True)


def test_an_attempts_inputs_carry_its_jobs_artifacts_rule_from_submission(
    store: Store, agent: int
) -> None:
    submit(store, SHIP)
    (build,) = claim(store, agent)
    inputs = store.artifacts.inputs(build.attempt_id)
    assert (inputs.artifact_paths, inputs.artifacts_always) == (("shop.tar",), False)
    assert_claim_carried_inputs(store, build)
