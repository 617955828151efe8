"""Builds over fake ports: what a submission keeps, why queued jobs wait, cancels reach agents."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from conveyor import PROTOCOL_VERSION
from conveyor.states import JobStatus, Reason
from coordinator.config import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import LiveAttempt
from tests.unit.coordinator.fakes import build, coordinator, job

PIPELINE = "name: p\nimage: conveyor/busybox\njobs:\n  j:\n    steps: [{run: 'true'}]\n"
GIT_PIPELINE = PIPELINE + "source: {git: 'https://example.com/r.git', ref: main}\n"
DIGEST = "ab" * 32


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_a_snapshot_not_uploaded_is_refused_and_nothing_is_stored() -> None:
    async def main() -> None:
        h = coordinator()
        with pytest.raises(NotFoundError, match="upload it first"):
            await h.core.builds.submit(PIPELINE, source=SourceSpec(snapshot_sha256=DIGEST))
        assert h.state.builds.created == []
        h.state.artifacts.blobs[DIGEST] = 10
        await h.core.builds.submit(PIPELINE, source=SourceSpec(snapshot_sha256=DIGEST))
        assert h.state.builds.created[-1]["source"] == SourceSpec(snapshot_sha256=DIGEST)
        await h.core.close()

    run(main())


@pytest.mark.parametrize(
    ("pipeline", "given", "kept"),
    [
        (PIPELINE, None, None),
        (PIPELINE, SourceSpec(), None),  # an edge passes what it got: nothing named
        (PIPELINE, SourceSpec(git_url="u"), SourceSpec(git_url="u", git_ref="HEAD")),
        (GIT_PIPELINE, None, SourceSpec(git_url="https://example.com/r.git", git_ref="main")),
        (
            GIT_PIPELINE,
            SourceSpec(git_url="u", git_ref="v1"),
            SourceSpec(git_url="u", git_ref="v1"),
        ),
    ],
)
def test_the_source_kept_is_the_one_given_else_the_pipelines(
    pipeline: str, given: SourceSpec | None, kept: SourceSpec | None
) -> None:
    async def main() -> None:
        h = coordinator()
        await h.core.builds.submit(pipeline, source=given)
        assert h.state.builds.created[-1]["source"] == kept
        assert h.state.builds.created[-1]["source_name"] == "pipeline.yml"
        await h.core.close()

    run(main())


def test_a_queued_job_says_why_it_waits_from_the_agents_known() -> None:
    async def main() -> None:
        h = coordinator()
        h.state.builds.records[1] = build(1, job("gpu", labels={"gpu": "yes"}), job("any"))
        waiting = await h.core.builds.get(1)
        assert [(j.reason, j.message) for j in waiting.jobs] == [
            (Reason.WAITING_FOR_AGENT, "no connected agent has labels gpu=yes"),
            (Reason.WAITING_FOR_AGENT, "no connected agent has labels (none)"),
        ]
        await h.core.agents.register(
            join_token="a",
            name="n",
            labels={},
            capacity=1,
            protocol_version=PROTOCOL_VERSION,
            running=(),
        )
        any_job = (await h.core.builds.get(1)).job("any")
        assert any_job is not None
        assert any_job.message == "waiting for a matching agent to ask for work"
        await h.core.close()

    run(main())


def test_a_build_with_nothing_queued_is_returned_as_stored() -> None:
    async def main() -> None:
        h = coordinator()
        stored = build(1, job("done", JobStatus.SUCCEEDED))
        h.state.builds.records[1] = stored
        assert await h.core.builds.get(1) is stored
        await h.core.close()

    run(main())


def test_cancel_flags_the_running_leases_and_wakes_their_agent_with_the_ids() -> None:
    async def main() -> None:
        h = coordinator(poll_timeout_s=5.0)
        h.state.builds.records[1] = build(1, job("j", JobStatus.RUNNING))
        h.state.attempts.running = [LiveAttempt(4, 7, 1, "t", False)]
        h.state.builds.running = tuple(h.state.attempts.running)
        await h.core.start()
        await h.core.builds.cancel(1)
        lease = h.core.leases.check_any(4)
        assert lease is not None and lease.cancel_requested
        result = await asyncio.wait_for(h.core.dispatcher.poll(7, {}, lambda: 0, 5.0), 1.0)
        assert result.cancel_attempt_ids == [4]
        await h.core.close()

    run(main())


def test_listing_uses_the_default_limit_and_caps_what_is_asked() -> None:
    async def main() -> None:
        h = coordinator()
        await h.core.builds.list()
        await h.core.builds.list(5)
        await h.core.builds.list(10**6)
        assert h.state.builds.limits == [DEFAULT_LIST_LIMIT, 5, MAX_LIST_LIMIT]
        await h.core.close()

    run(main())
