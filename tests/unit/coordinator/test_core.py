"""The coordinator's domain API in-process, over a real SQLite file and real log and blob files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

from conveyor import PROTOCOL_VERSION
from conveyor.states import BuildStatus, JobStatus, Outcome
from coordinator.app import build_coordinator
from coordinator.config import CoordinatorConfig
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.follow import LogQuery
from coordinator.domain.records import Assignment
from coordinator.domain.registry import AgentSession
from coordinator.storage.blobs import BlobStore
from coordinator.storage.logs import LogStore
from coordinator.storage.secretbox import SecretBox
from coordinator.store import Store
from coordinator.store.attempts import AttemptStore

PIPELINE = "name: p\nimage: conveyor/busybox\njobs:\n  j:\n    steps: [{run: 'true'}]\n"


def config(tmp_path: Path) -> CoordinatorConfig:
    return CoordinatorConfig(data_dir=tmp_path, agent_token="a", client_token="c")


async def register(core: Coordinator, name: str = "n") -> AgentSession:
    registration = await core.agents.register(
        join_token="a",
        name=name,
        labels={},
        capacity=1,
        protocol_version=PROTOCOL_VERSION,
        running=(),
    )
    assert core.agents.session(registration.session_token) is registration.agent
    return registration.agent


class SlowClaims(AttemptStore):
    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        time.sleep(0.5)  # the RPC is cancelled while the store thread commits
        return super().claim(agent_id, labels, slots)


def test_a_poll_cancelled_during_its_claim_still_leases_what_was_claimed(tmp_path: Path) -> None:
    """A committed claim without a lease would never expire: its build would run forever."""

    async def scenario() -> None:
        store = Store(config(tmp_path).database_url)
        store.attempts = SlowClaims(store.engine)
        core = Coordinator(
            config(tmp_path),
            store=store,
            logs=LogStore(tmp_path / "logs"),
            blobs=BlobStore(tmp_path / "blobs"),
            sealer=SecretBox(tmp_path / "secret.key"),
        )
        await core.start()
        agent = await register(core)
        await core.builds.submit(PIPELINE)
        poll = asyncio.create_task(core.agents.poll(agent, free_slots=1, draining=False))
        await asyncio.sleep(0.1)
        poll.cancel()
        await asyncio.sleep(1.0)
        assert len(core.leases) == 1, "the claimed attempt has no lease"
        await core.close()

    asyncio.run(scenario())


def test_a_build_runs_from_submission_to_success_and_its_log_reads_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = build_coordinator(config(tmp_path))
        await core.start()
        agent = await register(core)
        build_id = await core.builds.submit(PIPELINE)
        queued = await core.builds.get(build_id)
        assert queued.jobs[0].status is JobStatus.QUEUED

        (work,) = (await core.agents.poll(agent, free_slots=1, draining=False)).assignments
        attempt, token = work.attempt_id, work.lease_token
        assert not await core.attempts.start_step(agent, attempt, token, 0)
        assert await core.attempts.append_log(agent, attempt, token, 0, 0, b"hi\n") == (3, True)
        await core.attempts.finish_step(
            agent, attempt, token, 0, outcome=Outcome.SUCCEEDED, exit_code=0
        )
        ended = await core.attempts.finish(
            agent, attempt, token, outcome=Outcome.SUCCEEDED, reason="", message="", exit_code=0
        )
        assert ended.outcome is Outcome.SUCCEEDED

        done = await core.builds.get(build_id)
        assert done.status is BuildStatus.SUCCEEDED
        assert done.jobs[0].attempts[0].steps[0].log_length == 3
        chunks = [c async for c in core.follow.read(LogQuery(build_id, "j"))]
        assert [(c.step_name, c.offset, c.data) for c in chunks] == [("step-1", 0, b"hi\n")]
        assert [s.state for s in await core.agents.list()] == ["online"]
        await core.close()

    asyncio.run(scenario())


def test_a_restarted_coordinator_leases_what_still_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = build_coordinator(config(tmp_path))
        await first.start()
        agent = await register(first)
        await first.builds.submit(PIPELINE)
        (work,) = (await first.agents.poll(agent, free_slots=1, draining=False)).assignments
        await first.close()

        second = build_coordinator(config(tmp_path))
        await second.start()
        assert len(second.leases) == 1
        assert second.leases.check(agent.id, work.attempt_id, work.lease_token)
        assert [s.state for s in await second.agents.list()] == ["offline"]
        await second.close()

    asyncio.run(scenario())
