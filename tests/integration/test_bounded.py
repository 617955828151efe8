"""Bounded everything: output floods starve nothing; slow readers cost the coordinator nothing.

The floods come from the fake executor, as fast as the agent can take them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster, job, wait_for, write_pipeline

# Log floods and slow readers go through the log files, not the database: the SQLite pass covers
# them.
pytestmark = pytest.mark.any_store

MIB = 1024 * 1024


def _rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_flood_of_output_starves_neither_leases_nor_other_jobs(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"busy-{unique}", concurrency=2)
    size = 120 * MIB
    text = (
        "name: flood\nimage: conveyor/busybox\njobs:\n"
        f"  flood:\n    steps:\n      - run: head -c {size} /dev/zero | tr '\\000' z\n"
        "  calm:\n    steps:\n"
        f"      - run: {'; '.join(f'echo {i}; sleep 0.2' for i in range(1, 11))}\n"
    )
    result = cluster.cli(
        "run", str(write_pipeline(tmp_path, "flood.yml", text)), "--json", timeout_s=180
    )
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    flood, calm = job(doc, "flood"), job(doc, "calm")
    # No lease was lost to the flood (a lost lease would mean a second attempt or agent_lost).
    assert (flood["status"], flood["attempts"]) == ("succeeded", 1)
    assert flood["steps"][0]["log_bytes"] == size
    calm_step = calm["steps"][0]
    assert (calm["status"], calm["attempts"]) == ("succeeded", 1)
    # Ten 0.2 s sleeps; the neighbour's flood may slow it a little, not by seconds.
    assert calm_step["finished_at_ms"] - calm_step["started_at_ms"] < 6000


@pytest.fixture
def measured_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster whose processes return freed buffers to the system at once (glibc's mmap threshold
    fixed at 128 KiB), so that their RSS follows the memory they hold, not the allocator's cache."""
    created = Cluster(tmp_path, executor="fake", env={"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)})
    created.start_server()
    try:
        yield created
    finally:
        created.close()


def test_slow_log_reader_keeps_coordinator_memory_bounded(
    measured_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = measured_cluster
    cluster.start_agent(f"writer-{unique}")
    size = 120 * MIB
    text = (
        "name: big\nimage: conveyor/busybox\njobs:\n"
        f"  big:\n    steps:\n      - run: sleep 1; head -c {size} /dev/urandom\n"
    )
    path = write_pipeline(tmp_path, "big.yml", text)
    # A first build with no reader sets up the writer's own working set (its 4 MiB chunks pass
    # through gRPC and protobuf as a few copies); what the second build adds is what the lagging
    # reader costs.
    warm_up = cluster.cli("run", str(path), "--json", timeout_s=120)
    assert warm_up.returncode == 0, warm_up.stderr.decode()
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    server_pid = cluster.processes[0].popen.pid
    channel = wire.insecure_channel(cluster.address)
    try:
        stub = control_pb2_grpc.ControlServiceStub(channel)
        request = control_pb2.ReadLogsRequest(build_id=build_id, job="big", follow=True)
        stream = iter(stub.ReadLogs(request, metadata=wire.bearer(CLIENT_TOKEN)))
        wait_for(
            lambda: job(cluster.show(build_id), "big")["status"] == "running",
            30,
            "the step to start",
        )
        baseline = _rss_bytes(server_pid)
        received = len(next(stream).data)
        peak = baseline
        # Read slowly while the step writes everything: the coordinator must not buffer for us.
        while job(cluster.show(build_id), "big")["status"] == "running":
            received += len(next(stream).data)
            peak = max(peak, _rss_bytes(server_pid))
            time.sleep(0.2)
        peak = max(peak, _rss_bytes(server_pid))
        received += sum(len(chunk.data) for chunk in stream)
    finally:
        channel.close()
    assert received == size
    # Had the coordinator buffered for the reader, it would hold most of the 120 MiB the reader
    # had not taken yet.
    grown = peak - baseline
    print(f"coordinator grew by {grown / MIB:.0f} MiB while the reader lagged")
    assert grown < 40 * MIB, f"coordinator grew by {grown / MIB:.0f} MiB"
