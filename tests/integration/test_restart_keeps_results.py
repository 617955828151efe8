"""Work finished while the coordinator was away is reported when it is back, never run again.

Steps run on the shell executor so that they can leave a mark outside their workspace: every run
of a step appends a line to a file, and each line must appear exactly once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.harness import Cluster, job, wait_for, write_pipeline

BUILDS = 3
# Longer than the agent's give-up time (0.75 of the 4 s TTL): before the fix the agent dropped
# the finished attempts by then.
OUTAGE_S = 4.5

PIPELINE = """
name: outage
image: any
jobs:
  work:
    labels: {executor: shell}
    retry: {max: 2, when: [agent_lost]}
    steps:
      - name: first
        run: |
          echo "$MARK first" >> "{ran}"
          while [ ! -e "{go}" ]; do sleep 0.05; done
      - name: second
        run: echo "$MARK second" >> "{ran}"
"""


def test_steps_finished_during_a_coordinator_restart_are_not_run_again(
    tmp_path: Path,
) -> None:
    cluster = Cluster(tmp_path, executor="shell")
    server = cluster.start_server()
    try:
        cluster.start_agent("host", concurrency=BUILDS)
        ran, go = tmp_path / "ran.txt", tmp_path / "go"
        pipeline = write_pipeline(
            tmp_path, "outage.yml", PIPELINE.replace("{ran}", str(ran)).replace("{go}", str(go))
        )
        marks = [f"build-{n}" for n in range(BUILDS)]
        ids = [
            cluster.json("run", str(pipeline), "--no-follow", "--env", f"MARK={mark}")["id"]
            for mark in marks
        ]
        wait_for(
            lambda: ran.exists() and len(ran.read_text().splitlines()) == BUILDS,
            60,
            "every first step to run",
        )
        # The first steps finish while the coordinator goes away (it refuses new calls once it
        # is stopping), and well before the agent would stop a step it cannot renew.
        server.signal(signal.SIGTERM)
        wait_for(lambda: "coordinator stopping" in server.log(), 30, "the coordinator to stop")
        go.touch()
        server.popen.wait(30)
        time.sleep(OUTAGE_S)
        cluster.start_server()
        for build_id in ids:
            doc = cluster.wait_build(
                build_id, lambda d: d["status"] in ("succeeded", "failed"), 90, "the build to end"
            )
            assert doc["status"] == "succeeded", doc
            assert job(doc, "work")["attempts"] == 1, doc
        lines = ran.read_text().splitlines()
        expected = [f"{mark} {step}" for mark in marks for step in ("first", "second")]
        assert sorted(lines) == sorted(expected), lines
    finally:
        cluster.close()
