"""A real `conveyor server` on databases of other versions: upgraded in place, or refused clearly.

The upgrade case uses tests/fixtures/baseline-datadir, written by the code before migrations
(ca625a3; see its README), and checks through the CLI that today's server shows exactly what the
old one did, then runs old queued jobs and new builds on it.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from conveyor.times import with_times
from coordinator.store.engine import make_engine
from coordinator.store.schema import head_revision
from tests.harness import CLI, Cluster, job, write_pipeline

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "baseline-datadir"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
REFUSAL_TIMEOUT_S = 30.0

NEW_BUILD = """\
name: after-upgrade
image: conveyor/busybox
jobs:
  make:
    steps:
      - run: echo new > new.txt; echo made
    artifacts: [new.txt]
  use:
    needs: [make]
    steps:
      - run: cat new.txt
"""


def baseline_cluster(root: Path) -> Cluster:
    """A cluster whose server data dir is a copy of the fixture (SQLite, whatever the backend)."""
    cluster = Cluster(root, db_url=None)
    shutil.copytree(FIXTURE, cluster.data_dir, ignore=shutil.ignore_patterns("*.md", "*.json"))
    return cluster


def refused(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    """Runs the server expecting it to refuse the database and exit."""
    return subprocess.run(
        [*CLI, *cluster.server_argv()],
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT_S,
        check=False,
    )


def without_waiting_words(doc: dict[str, Any]) -> dict[str, Any]:
    """A queued job's reason and message describe the agents online now, not stored data."""
    jobs = [
        {**j, "reason": None, "message": None} if j["status"] == "queued" else j
        for j in doc["jobs"]
    ]
    return {**doc, "jobs": jobs}


# Builds made before builds had a context were all `conveyor run` builds of no known branch,
# none was a rollback, and all came with the server's own token (named `admin`).
CONTEXT_OF_OLD_BUILDS = {
    "event": "manual",
    "branch": None,
    "tag": None,
    "redeploys": None,
    "started_by": "admin",
    "trigger": None,
    "error": None,
}


# What the old builds' jobs needed, as their pipelines said (the fixture's documents predate
# `needs` in the job document; the stored rows always had it).
NEEDS_OF_OLD_JOBS = {("1", "use"): ["make"], ("2", "after"): ["broken"]}


def as_upgraded(doc: dict[str, Any]) -> dict[str, Any]:
    """An old build's document as a newer Conveyor shows it: the same, plus what it adds (an
    ISO 8601 field beside each time)."""
    upgraded = {**doc, **CONTEXT_OF_OLD_BUILDS}
    if "jobs" in doc:
        upgraded["jobs"] = [
            {**job, "needs": NEEDS_OF_OLD_JOBS.get((str(doc["id"]), job["name"]), [])}
            for job in doc["jobs"]
        ]
    return with_times(upgraded)


# The baseline is a SQLite data dir: the PostgreSQL pass would only run it again as it is.
@pytest.mark.sqlite_only
def test_a_data_dir_from_before_migrations_is_upgraded_in_place(
    tmp_path: Path, unique: str
) -> None:
    cluster = baseline_cluster(tmp_path)
    cluster.start_server()
    try:
        builds = [as_upgraded(doc) for doc in EXPECTED["builds"]]
        assert cluster.json("builds", "--limit", "100") == builds
        for build_id, doc in EXPECTED["show"].items():
            build = without_waiting_words(cluster.show(int(build_id)))
            assert build == without_waiting_words(as_upgraded(doc))
            assert cluster.json("artifacts", build_id) == EXPECTED["artifacts"][build_id]
        for key, data in EXPECTED["logs"].items():
            build_id, job_name, attempt, step = key.split("/")
            shown = cluster.cli("logs", build_id, job_name, "--attempt", attempt, "--step", step)
            assert shown.returncode == 0, shown.stderr.decode()
            assert shown.stdout == base64.b64decode(data), key
        assert [a["name"] for a in cluster.json("agents")] == ["fixture-agent"]
        downloaded = cluster.cli("artifacts", "1", "--download", str(tmp_path / "got"))
        assert downloaded.returncode == 0, downloaded.stderr.decode()
        assert (tmp_path / "got" / "make" / "scoop.txt").read_bytes() == b"pumpkin\n"

        # The jobs left queued run, in their order, once an agent that matches them appears...
        cluster.start_agent(f"later-{unique}", labels="executor=shell,pool=later", executor="shell")
        for build_id in (5, 6, 7):
            cluster.wait_build(build_id, lambda d: d["status"] == "succeeded", 30, "old queue")
        started = [cluster.show(b)["jobs"][0]["steps"][0]["started_at_ms"] for b in (5, 6, 7)]
        assert started == sorted(started)
        # ...and new builds, with artifacts between jobs, run as on a fresh server.
        pipeline = write_pipeline(tmp_path, "new.yml", NEW_BUILD.replace("    steps:", LABEL))
        ran = cluster.cli("run", str(pipeline), "--json")
        assert ran.returncode == 0, ran.stderr.decode() + ran.stdout.decode()
        doc = json.loads(ran.stdout)
        assert doc["id"] == 8
        assert [job(doc, name)["status"] for name in ("make", "use")] == ["succeeded"] * 2
        assert cluster.cli("logs", "8", "use").stdout == b"new\n"
        retried = cluster.cli("retry", "2", "--follow")
        assert retried.returncode == 1  # it still exits 3, now as attempt 2
        assert job(cluster.show(2), "broken")["attempts"] == 2
    finally:
        cluster.close()
    with sqlite3.connect(cluster.data_dir / "conveyor.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


LABEL = "    labels: {executor: shell, pool: later}\n    steps:"


@pytest.mark.sqlite_only
def test_an_unversioned_database_the_baseline_does_not_match_is_refused(tmp_path: Path) -> None:
    cluster = baseline_cluster(tmp_path)
    with sqlite3.connect(cluster.data_dir / "conveyor.db") as db:
        db.execute("ALTER TABLE agents DROP COLUMN mode")  # as databases of older commits lack it
    result = refused(cluster)
    assert result.returncode == 2, result.stderr
    [line] = [text for text in result.stderr.splitlines() if "ERROR" in text]
    assert "has no schema version and is not the first versioned schema" in line
    assert "agents.mode is missing" in line
    assert "start with another data dir or an empty database" in line
    assert "Traceback" not in result.stderr
    with sqlite3.connect(cluster.data_dir / "conveyor.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert "alembic_version" not in tables  # refused means untouched
        assert db.execute("SELECT COUNT(*) FROM builds").fetchone() == (7,)


def _database_url(cluster: Cluster) -> str:
    return cluster.db_url or f"sqlite:///{cluster.data_dir / 'conveyor.db'}"


def test_a_fresh_database_is_made_at_the_newest_revision(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.start_server()
    cluster.close()
    engine = make_engine(_database_url(cluster))
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [tuple(row) for row in versions] == [(head_revision(),)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("revision", ["0999_from_the_future"])
def test_a_database_from_a_newer_conveyor_is_refused(tmp_path: Path, revision: str) -> None:
    cluster = Cluster(tmp_path)
    cluster.start_server()
    cluster.close()
    engine = make_engine(_database_url(cluster))
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()
    result = refused(cluster)
    assert result.returncode == 2, result.stderr
    assert f"was made by a newer Conveyor (revision {revision}); upgrade Conveyor" in result.stderr
    assert "Traceback" not in result.stderr
