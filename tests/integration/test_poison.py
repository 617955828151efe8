"""No job can poison a claim: one whose stored form cannot be sent to an agent, or cannot even be
read, fails by itself (reason `error`, saying why), and the agents go on with the other jobs.

The bad rows are written into the database directly, as data an earlier version (which accepted
a lone surrogate in a pipeline) or a damaged database would hold: submission refuses them now.
"""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy

from tests.harness import Cluster, job, write_pipeline

THREE = (
    "name: three\nimage: conveyor/busybox\njobs:\n"
    "  unsendable:\n    steps: [{run: echo one}]\n"
    "  unreadable:\n    steps: [{run: echo two}]\n"
    "  fine:\n    steps: [{run: echo three}]\n"
    "  unlabelled:\n    steps: [{run: echo four}]\n"
)


def test_a_job_that_cannot_be_sent_fails_alone_and_blames_no_agent(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "three.yml", THREE)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    url = cluster.db_url or f"sqlite:///{cluster.data_dir / 'conveyor.db'}"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as db:
            jobs = sqlalchemy.table(
                "jobs",
                sqlalchemy.column("build_id"),
                sqlalchemy.column("name"),
                sqlalchemy.column("spec_json"),
                sqlalchemy.column("labels_json"),
            )
            (spec_json,) = db.execute(
                sqlalchemy.select(jobs.c.spec_json).where(jobs.c.name == "unsendable")
            ).one()
            poisoned = spec_json.replace("echo one", "echo \\ud800")  # JSON for a lone surrogate
            assert poisoned != spec_json
            for name, value in (("unsendable", poisoned), ("unreadable", '{"steps": [{')):
                db.execute(
                    sqlalchemy.update(jobs)
                    .where(jobs.c.build_id == build_id, jobs.c.name == name)
                    .values(spec_json=value)
                )
            db.execute(
                sqlalchemy.update(jobs)
                .where(jobs.c.build_id == build_id, jobs.c.name == "unlabelled")
                .values(labels_json="not json")
            )
    finally:
        engine.dispose()
    cluster.start_agent(f"innocent-{unique}", concurrency=3)
    doc = cluster.wait_build(build_id, lambda d: d["status"] == "failed", 60, "the build to end")
    unsendable, unreadable, fine = (job(doc, n) for n in ("unsendable", "unreadable", "fine"))
    assert (fine["status"], fine["attempts"]) == ("succeeded", 1)
    assert (unsendable["status"], unsendable["reason"]) == ("failed", "error"), unsendable
    assert "cannot be sent to an agent" in unsendable["message"], unsendable
    assert "steps[0].run" in unsendable["message"], unsendable
    assert unsendable["attempts"] == 1  # failed once, at its claim: not re-queued, no agent_lost
    assert (unreadable["status"], unreadable["reason"]) == ("failed", "error"), unreadable
    assert "cannot be read" in unreadable["message"], unreadable
    unlabelled = job(doc, "unlabelled")
    assert (unlabelled["status"], unlabelled["reason"]) == ("failed", "error"), unlabelled
    assert "labels cannot be read" in unlabelled["message"], unlabelled
    assert doc["status"] == "failed"
    server_log = cluster.processes[0].log()
    assert "agent_lost" not in json.dumps(doc)
    assert "Traceback" not in server_log, server_log
