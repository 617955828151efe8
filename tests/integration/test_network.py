"""Network cuts between one agent and the coordinator, through a TCP proxy the test controls.

Only the long cut needs Docker: it counts the job's live containers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.faults import ContainerSampler, TcpProxy
from tests.harness import Cluster, job, wait_for, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

LINES = 40


def _numbered(count: int) -> bytes:
    return b"".join(f"{i}\n".encode() for i in range(1, count + 1))


def _counting_pipeline(tmp_path: Path, pause: str, retry: str = "", prelude: str = "") -> Path:
    # Unrolled rather than a loop: the fake executor reads no loops.
    count = "; ".join(f"echo {i}; sleep {pause}" for i in range(1, LINES + 1))
    text = (
        "name: count\nimage: conveyor/busybox\njobs:\n  count:\n"
        f"{retry}"
        "    steps:\n"
        f"      - run: {prelude}{count}\n"
    )
    return write_pipeline(tmp_path, "count.yml", text)


def _submit(cluster: Cluster, path: Path) -> int:
    result = cluster.cli("run", str(path), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


@pytest.mark.parametrize("mode", ["blackhole", "drop", "reset"])
def test_short_cut_loses_no_log_byte(
    patient_cluster: Cluster, unique: str, tmp_path: Path, mode: str
) -> None:
    cluster = patient_cluster
    proxy = TcpProxy(cluster.address)
    try:
        cluster.start_agent(f"cut-{unique}", via=proxy.address)
        build_id = _submit(cluster, _counting_pipeline(tmp_path, "0.1"))
        wait_for(
            lambda: cluster.cli("logs", str(build_id), "count").stdout.startswith(b"1\n"),
            30,
            "the count to start",
        )
        proxy.set_mode(mode)
        time.sleep(1.5)
        proxy.set_mode("pass")
        doc = cluster.wait_build(
            build_id,
            lambda d: d["status"] != "running" and d["status"] != "queued",
            60,
            "the build to end",
        )
    finally:
        proxy.close()
    count = job(doc, "count")
    assert (doc["status"], count["attempts"]) == ("succeeded", 1), doc
    assert cluster.cli("logs", str(build_id), "count").stdout == _numbered(LINES)


@pytest.mark.docker
def test_long_cut_agent_stops_before_job_moves(
    docker_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = docker_cluster
    proxy = TcpProxy(cluster.address)
    cut_name = f"isolated-{unique}"
    try:
        # A long grace and a step that ignores SIGTERM: losing the lease must still kill at once.
        cut_agent = cluster.start_agent(cut_name, via=proxy.address, extra=["--stop-grace", "30"])
        path = _counting_pipeline(
            tmp_path,
            "0.2",
            retry="    retry: {max: 1, when: [agent_lost]}\n",
            prelude="trap '' TERM; ",
        )
        build_id = _submit(cluster, path)
        wait_for(
            lambda: cluster.cli("logs", str(build_id), "count").stdout.startswith(b"1\n"),
            30,
            "the count to start on the isolated agent",
        )
        with ContainerSampler(
            lambda labels: (
                labels.get("conveyor.build") == str(build_id)
                and labels.get("conveyor.agent") in cluster.agent_names
            )
        ) as sampler:
            proxy.set_mode("blackhole")
            cluster.start_agent(f"healthy-{unique}")
            doc = cluster.wait_build(
                build_id,
                lambda d: d["status"] == "succeeded",
                60,
                "the job to finish on the healthy agent",
            )
            proxy.set_mode("pass")
        assert sampler.samples > 20
        assert sampler.max_running == 1, "two live containers for one job"
    finally:
        proxy.close()
    count = job(doc, "count")
    assert (count["attempts"], count["agent"]) == (2, f"healthy-{unique}")
    first = cluster.cli("logs", str(build_id), "count", "--attempt", "1").stdout
    assert _numbered(LINES)[: len(first)] == first  # a prefix, never garbage
    assert cluster.cli("logs", str(build_id), "count").stdout == _numbered(LINES)
    assert "stopping it before the coordinator gives the job to another agent" in cut_agent.log()
    assert cluster.containers_of_build(build_id) == []


def test_spool_overflow_is_reported_not_silent(
    patient_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = patient_cluster
    proxy = TcpProxy(cluster.address)
    size = 200 * 1024
    try:
        cluster.start_agent(
            f"small-spool-{unique}", via=proxy.address, extra=["--spool-limit", "0.05"]
        )
        text = (
            "name: flood\nimage: conveyor/busybox\njobs:\n  flood:\n    steps:\n"
            f"      - run: echo start; sleep 4; head -c {size} /dev/zero | tr '\\000' y;"
            " sleep 1\n"
        )
        build_id = _submit(cluster, write_pipeline(tmp_path, "flood.yml", text))
        wait_for(
            lambda: cluster.cli("logs", str(build_id), "flood").stdout == b"start\n",
            30,
            "the step to start",
        )
        proxy.set_mode("blackhole")
        time.sleep(6)  # the flood comes about 4 s after "start", inside the cut
        proxy.set_mode("pass")
        doc = cluster.wait_build(build_id, lambda d: d["status"] == "succeeded", 60, "the build")
    finally:
        proxy.close()
    flood = job(doc, "flood")
    step = flood["steps"][0]
    assert step["log_lost_bytes"] > 0
    assert step["log_bytes"] + step["log_lost_bytes"] == len(b"start\n") + size
    assert "log truncated" in (flood["message"] or "")
    stored = cluster.cli("logs", str(build_id), "flood").stdout
    assert stored == (b"start\n" + b"y" * size)[: len(stored)]
    assert len(stored) == step["log_bytes"]
