"""Two processes claim one queue at once on one database: no job given twice, none lost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from conveyor.states import JobStatus
from coordinator.store import Store
from tests.unit.coordinator.test_store import SINGLE, submit

BUILDS = 120
LINUX_ONLY = SINGLE.replace("  only:\n", "  only:\n    labels: {os: linux}\n")


def test_concurrent_claims_give_every_job_exactly_once(database_url: str, tmp_path: Path) -> None:
    store = Store(database_url)
    try:
        agents = [
            store.agents.register(
                name=f"racer-{n}", labels={"os": "linux"}, capacity=99, session_hash=""
            ).id
            for n in range(2)
        ]
        # Half of the jobs ask for a label, so the claims also skip and match along the way.
        builds = [submit(store, LINUX_ONLY if n % 2 else SINGLE) for n in range(BUILDS)]
        go = tmp_path / "go"
        racers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.unit.coordinator.claim_racer",
                    database_url,
                    str(agent),
                    str(tmp_path / f"ready-{agent}"),
                    str(go),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for agent in agents
        ]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{a}").exists() for a in agents):
            assert time.monotonic() < deadline, "the racers did not start"
            assert all(r.poll() is None for r in racers), [r.communicate() for r in racers]
            time.sleep(0.01)
        go.touch()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err.decode()
            results.append([tuple(item) for item in json.loads(out)])

        given = [(build, job) for result in results for _, build, job, _ in result]
        assert len(given) == len(set(given)), "a job was given twice"
        assert sorted(given) == sorted((build, "only") for build in builds), "a job was lost"
        attempt_ids = [attempt for result in results for attempt, *_ in result]
        assert len(set(attempt_ids)) == BUILDS
        assert {number for result in results for *_, number in result} == {1}
        assert all(result for result in results), "one racer got nothing: they did not race"
        for build in builds:
            [job] = store.builds.get(build).jobs
            assert job.status is JobStatus.RUNNING
            [attempt] = job.attempts
            assert attempt.id in attempt_ids and len(attempt.steps) == 1
    finally:
        store.close()
