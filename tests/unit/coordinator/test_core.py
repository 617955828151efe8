"""The coordinator's domain API in-process, over a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from conveyor import PROTOCOL_VERSION
from coordinator.config import CoordinatorConfig
from coordinator.domain.coordinator import Coordinator

PIPELINE = "name: p\nimage: conveyor/busybox\njobs:\n  j:\n    steps: [{run: 'true'}]\n"


def test_a_poll_cancelled_during_its_claim_still_leases_what_was_claimed(tmp_path: Path) -> None:
    """A committed claim without a lease would never expire: its build would run forever."""

    async def scenario() -> None:
        core = Coordinator(CoordinatorConfig(data_dir=tmp_path, agent_token="a", client_token="c"))
        await core.start()
        agent, _ = await core.register(
            join_token="a",
            name="n",
            labels={},
            capacity=1,
            protocol_version=PROTOCOL_VERSION,
            running=(),
        )
        real_claim = core.store.attempts.claim

        def slow_claim(*args: object) -> object:
            time.sleep(0.5)  # the RPC is cancelled while the store thread commits
            return real_claim(*args)  # type: ignore[arg-type]

        core.store.attempts.claim = slow_claim  # type: ignore[method-assign]
        await core.submit(PIPELINE, "p.yml", {})
        poll = asyncio.create_task(core.poll(agent, free_slots=1, draining=False))
        await asyncio.sleep(0.1)
        poll.cancel()
        await asyncio.sleep(1.0)
        assert len(core.leases) == 1, "the claimed attempt has no lease"
        await core.close()

    asyncio.run(scenario())
