"""An agent whose work dir fills up says so, frees the space, and takes no work until there is
room again, so that jobs go to healthy agents.

The full disk is real: a 2 MiB tmpfs mounted as the agent's work dir (which needs root), most of
it taken by a filler file the test removes to make room again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Cluster, Process, job, wait_for, write_pipeline
from tests.tmpfs import small_filesystem

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

DISK = "2m"
# Left free next to the filler: more than the agent's minimum on a disk this small (5% of it),
# far less than the output of a step.
LEFT_FREE_BYTES = 600 * 1024
OUTPUT_BYTES = 8 * 1000 * 1000

PIPELINE = """
name: chatty
image: conveyor/busybox
jobs:
  talk:
    labels: {LABELS}
    steps:
      - name: talk
        run: head -c {BYTES} /dev/zero | tr '\\0' x; echo; echo done
"""


def _pipeline(directory: Path, name: str, labels: str, output_bytes: int) -> Path:
    text = PIPELINE.replace("{LABELS}", labels).replace("{BYTES}", str(output_bytes))
    return write_pipeline(directory, name, text)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs at the work dir of the agent named `full`."""
    with small_filesystem(tmp_path / "agent-full", DISK) as mount_point:
        yield mount_point


def _fill(disk: Path, leave_free: int) -> Path:
    filler = disk / "filler"
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, free - leave_free))
    return filler


def _agent(cluster: Cluster, name: str) -> dict[str, Any]:
    agent: dict[str, Any] = next(a for a in cluster.json("agents") if a["name"] == name)
    return agent


def _spool_fds(process: Process, spool: Path) -> list[str]:
    """The agent's open descriptors on anything in its spool dir (deleted files included)."""
    fds = Path(f"/proc/{process.popen.pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:  # closed meanwhile
            continue
    return [t for t in targets if t.startswith(str(spool))]


def _final(cluster: Cluster, build_id: int) -> dict[str, Any]:
    return cluster.wait_build(
        build_id, lambda d: d["status"] in ("succeeded", "failed", "canceled"), 120, "its end"
    )


def _labels(executor: str, own: str) -> str:
    return f"{{{own}, executor: shell}}" if executor == "shell" else f"{{{own}}}"


@pytest.mark.parametrize("executor", [pytest.param("docker", marks=pytest.mark.docker), "shell"])
def test_full_spool_disk_fails_the_attempt_truthfully_and_holds_the_agent(
    tmp_path: Path, small_disk: Path, executor: str, request: pytest.FixtureRequest
) -> None:
    if executor == "docker":
        request.getfixturevalue("docker_ready")
    cluster = Cluster(tmp_path, executor=executor)
    cluster.start_server()
    try:
        agent = cluster.start_agent("full", labels="disk=small")
        filler = _fill(small_disk, LEFT_FREE_BYTES)
        labels = _labels(executor, "disk: small")
        pipeline = _pipeline(tmp_path, "chatty.yml", labels, OUTPUT_BYTES)
        build_id = cluster.json("run", str(pipeline), "--no-follow")["id"]

        doc = _final(cluster, build_id)
        talk = job(doc, "talk")
        assert doc["status"] == "failed", doc
        assert "agent spool disk full" in talk["message"], talk
        assert str(small_disk / "spool") in talk["message"], talk
        # The stored prefix is what the step document says was stored.
        stored = cluster.cli("logs", str(build_id), "talk").stdout
        assert 0 < len(stored) < OUTPUT_BYTES
        assert set(stored) == {ord("x")}
        assert talk["steps"][0]["log_bytes"] == len(stored), talk
        # The spool's space is freed: no descriptor keeps a deleted spool file alive.
        wait_for(lambda: not _spool_fds(agent, small_disk / "spool"), 30, "spool fds closed")

        held = wait_for(
            lambda: (state := _agent(cluster, "full")["state"]).startswith("disk full") and state,
            30,
            "the agent to say its disk is full",
        )
        assert str(small_disk) in held

        filler.unlink()
        wait_for(lambda: _agent(cluster, "full")["state"] == "online", 30, "the agent to resume")
        quiet = _pipeline(tmp_path, "quiet.yml", labels, 1000)
        after = _final(cluster, cluster.json("run", str(quiet), "--no-follow")["id"])
        assert after["status"] == "succeeded", after
    finally:
        cluster.close()


@pytest.mark.docker
def test_jobs_go_to_the_healthy_agent_while_one_has_a_full_disk(
    tmp_path: Path, small_disk: Path, docker_ready: None
) -> None:
    cluster = Cluster(tmp_path, executor="docker")
    cluster.start_server()
    try:
        cluster.start_agent("full", labels="disk=small,pool=any")
        cluster.start_agent("healthy", labels="pool=any")
        # First the full agent meets its full disk in a job only it may take.
        filler = _fill(small_disk, LEFT_FREE_BYTES)
        pinned = _pipeline(tmp_path, "pinned.yml", "{disk: small}", OUTPUT_BYTES)
        first = _final(cluster, cluster.json("run", str(pinned), "--no-follow")["id"])
        assert "agent spool disk full" in job(first, "talk")["message"], first
        wait_for(
            lambda: _agent(cluster, "full")["state"].startswith("disk full"),
            30,
            "the full agent to stop taking work",
        )

        anywhere = _pipeline(tmp_path, "anywhere.yml", "{pool: any}", OUTPUT_BYTES)
        ids = [cluster.json("run", str(anywhere), "--no-follow")["id"] for _ in range(6)]
        for build_id in ids:
            doc = _final(cluster, build_id)
            assert doc["status"] == "succeeded", doc
            assert job(doc, "talk")["agent"] == "healthy", doc
        filler.unlink()
        wait_for(lambda: _agent(cluster, "full")["state"] == "online", 30, "the agent to resume")
    finally:
        cluster.close()
