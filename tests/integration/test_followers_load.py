"""A load test: a thousand clients following one printing build leave the farm responsive.

The followers (half WatchBuild, half ReadLogs -f) run in a child process; this process times
`ListBuilds` (what `conveyor builds` calls) meanwhile. The limits are generous: on a loaded
two-core machine ListBuilds answers in milliseconds here; when each follower read the build
from the store on each chunk, it took 2.5-3 s. Every follower must still see every byte, in
order, and the final state.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from pathlib import Path

import grpc
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from coordinator.config import MAX_STREAMS_PER_CLIENT
from tests.followers import Outcome, Plan, follow_main
from tests.harness import CLIENT_TOKEN, Cluster, write_pipeline

FOLLOWERS = 1000
LINES = 40
LINE_GAP_S = 0.5  # the step prints a line, then sleeps this long: 20 s in all
SAMPLES = 10
LIST_MEDIAN_MAX_S = 1.0
CLI_MAX_S = 15.0
OPEN_TIMEOUT_S = 120.0
END_TIMEOUT_S = 180.0
CALL_TIMEOUT_S = 60.0


def _pipeline(tmp_path: Path) -> tuple[Path, bytes]:
    lines = [f"line {i} of the followed step" for i in range(1, LINES + 1)]
    script = "; ".join(f"echo {line}; sleep {LINE_GAP_S}" for line in lines)
    text = (
        f"name: talk\nimage: conveyor/busybox\njobs:\n  talk:\n    steps:\n      - run: {script}\n"
    )
    return write_pipeline(tmp_path, "talk.yml", text), "".join(f"{x}\n" for x in lines).encode()


def _list_latencies(stub: control_pb2_grpc.ControlServiceStub) -> list[float]:
    samples = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        stub.ListBuilds(
            control_pb2.ListBuildsRequest(),
            metadata=wire.bearer(CLIENT_TOKEN),
            timeout=CALL_TIMEOUT_S,
        )
        samples.append(time.perf_counter() - started)
    return samples


def _check_stream_bound(address: str, build_id: int) -> str:
    """Fills this host's allowance of streams (the child holds FOLLOWERS of it); the next one
    is refused. Returns the refusal's message."""
    request = control_pb2.WatchBuildRequest(build_id=build_id)
    channel = wire.insecure_channel(address)  # closing it ends the streams held on it
    try:
        stub = control_pb2_grpc.ControlServiceStub(channel)
        held = []
        for _ in range(MAX_STREAMS_PER_CLIENT - FOLLOWERS):
            stream = iter(stub.WatchBuild(request, metadata=wire.bearer(CLIENT_TOKEN)))
            next(stream)  # the first snapshot: the stream is open and counted
            held.append(stream)
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(stub.WatchBuild(request, metadata=wire.bearer(CLIENT_TOKEN))))
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        return str(refused.value.details())
    finally:
        channel.close()


@pytest.mark.load
@pytest.mark.any_store  # the store reads it shares are the same on both backends
def test_a_thousand_followers_leave_the_farm_responsive_and_see_everything(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"talker-{unique}")
    path, expected = _pipeline(tmp_path)
    build_id = cluster.json("run", str(path), "--no-follow")["id"]
    context = multiprocessing.get_context("spawn")  # no gRPC state crosses a fork
    reports: multiprocessing.Queue[object] = context.Queue()
    plan = Plan(cluster.address, build_id, "talk", FOLLOWERS, expected)
    child = context.Process(target=follow_main, args=(plan, reports), daemon=True)
    child.start()
    channel = wire.insecure_channel(cluster.address)
    try:
        assert reports.get(timeout=OPEN_TIMEOUT_S) == FOLLOWERS
        stub = control_pb2_grpc.ControlServiceStub(channel)
        samples = _list_latencies(stub)
        median = statistics.median(samples)
        assert median < LIST_MEDIAN_MAX_S, f"ListBuilds took {median:.2f} s (median) under load"
        started = time.perf_counter()
        listed = cluster.cli("builds", timeout_s=CALL_TIMEOUT_S)
        cli_s = time.perf_counter() - started
        refusal = _check_stream_bound(cluster.address, build_id)
        outcome = reports.get(timeout=END_TIMEOUT_S)
    finally:
        channel.close()
        child.join(30)
        if child.is_alive():
            child.kill()
    assert listed.returncode == 0, listed.stderr.decode()
    assert cli_s < CLI_MAX_S, f"conveyor builds took {cli_s:.1f} s under load"
    assert f"MAX_STREAMS_PER_CLIENT = {MAX_STREAMS_PER_CLIENT}" in refusal, refusal
    assert isinstance(outcome, Outcome)
    assert outcome.problems == [], outcome.problems[:5]
    assert outcome.complete == FOLLOWERS
