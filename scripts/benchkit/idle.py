"""idle farm: jobs arriving one at a time while many simulated agents wait in long-polls.

Every arrival may wake the waiting agents; what that costs the coordinator per job is the figure
(a farm spends most of its life like this, not draining a deep queue).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from benchkit import builds
from benchkit.figures import median
from benchkit.loadgen import LoadGenerator
from benchkit.procs import Farm, cpu_seconds

NOOP = builds.one_step("true", "idle")
# The generator serves until this many jobs or this long; the submitter ends it sooner.
SERVE_LIMIT_S = 600.0


@dataclass(frozen=True)
class Idle:
    agents: int
    jobs: int
    submit_to_final_s: float  # median
    cpu_per_job_ms: float  # coordinator CPU per job


def _submit_one_by_one(farm: Farm, jobs: int) -> list[float]:
    client = farm.client()
    try:
        return [builds.run_timed(client, NOOP) for _ in range(jobs)]
    finally:
        client.close()


async def _drive(farm: Farm, agents: int, jobs: int, settle_s: float) -> tuple[list[float], float]:
    generator = LoadGenerator(farm.address, agents)
    await generator.register()
    serving = asyncio.create_task(generator.drain(jobs, SERVE_LIMIT_S))
    try:
        # Every simulated agent reaches its long-poll before the first job arrives.
        await asyncio.sleep(settle_s)
        cpu_before = cpu_seconds(farm.coordinator_pid)
        latencies = await asyncio.to_thread(_submit_one_by_one, farm, jobs)
        cpu = cpu_seconds(farm.coordinator_pid) - cpu_before
        await serving
    finally:
        serving.cancel()
        await generator.close()
    return latencies, cpu


def measure(root: Path, agents: int, jobs: int, settle_s: float) -> Idle:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        latencies, cpu = asyncio.run(_drive(farm, agents, jobs, settle_s))
    finally:
        farm.stop()
    return Idle(agents, jobs, median(latencies), 1000 * cpu / jobs)
