"""Two coordinators' stores on one database race for one deploy lock: one holder at a time,
the oldest build first, every deployment once (SQLite's writer lock or PostgreSQL's rows)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

from coordinator.store import Store
from tests.unit.coordinator.test_deploy_store import ONLY_DEPLOY
from tests.unit.coordinator.test_store import submit

BUILDS = 10


def test_two_coordinators_never_hold_one_lock_together(database_url: str, tmp_path: Path) -> None:
    store = Store(database_url)
    try:
        agents = [
            store.agents.register(name=f"racer-{n}", labels={}, capacity=99, session_hash="").id
            for n in range(2)
        ]
        builds = [submit(store, ONLY_DEPLOY) for _ in range(BUILDS)]
        go = tmp_path / "go"
        racers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.unit.coordinator.lock_racer",
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
        ran = []
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err.decode()
            ran += [tuple(item) for item in json.loads(out)]
        spans = sorted(ran, key=lambda item: item[1])
        overlaps = sum(1 for a, b in itertools.pairwise(spans) if b[1] < a[2])
        figures = f"{BUILDS} builds, 2 coordinators, {len(ran)} deployments, {overlaps} overlaps"
        print(f"lock race: {figures}")
        assert overlaps == 0, spans
        assert [build for build, *_ in spans] == builds
        assert len(store.deployments.deployments("production", 100)) == BUILDS
    finally:
        store.close()
