"""Bounds on the wire (DESIGN §6.8): every number a request carries has a checked range.

Out of range is INVALID_ARGUMENT or OUT_OF_RANGE naming the field, never UNKNOWN, never a stored
change, never a traceback in the server's log. Speaks the protocol directly, as a hostile client.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    blobs_pb2,
    blobs_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    types_pb2,
)
from tests.harness import AGENT_TOKEN, CLIENT_TOKEN, Cluster, job, write_pipeline

# Every request here is refused at the edge, before the store is asked; what is read back (an
# empty listing, a log file, a lease) takes the paths every db test takes on both backends.
pytestmark = pytest.mark.any_store

NAP = (
    "name: nap\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n      - run: echo up; sleep 9\n"
)
REFUSED = (grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.INVALID_ARGUMENT)


def _refused(call: Callable[[], Any], field: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        result = call()
        if isinstance(result, Iterator):
            list(result)  # a stream fails on its first read
    error: Any = refused.value
    assert error.code() in REFUSED, (field, error.code(), error.details())
    assert field in error.details(), (field, error.details())


def _log(control: control_pb2_grpc.ControlServiceStub, build_id: int) -> bytes:
    request = control_pb2.ReadLogsRequest(build_id=build_id, job="nap")
    chunks = control.ReadLogs(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=10)
    return b"".join(chunk.data for chunk in chunks)


def test_out_of_range_numbers_are_refused_and_change_nothing(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    channel = wire.insecure_channel(cluster.address)
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    control = control_pb2_grpc.ControlServiceStub(channel)
    client = wire.bearer(CLIENT_TOKEN)
    try:
        reply = agent.Register(
            agent_pb2.RegisterRequest(
                join_token=AGENT_TOKEN,
                name=f"hostile-{unique}",
                capacity=1,
                protocol_version=PROTOCOL_VERSION,
            )
        )
        session = wire.bearer(reply.session_token)
        cluster.cli("run", str(write_pipeline(tmp_path, "nap.yml", NAP)), "--no-follow")
        work = agent.PollWork(agent_pb2.PollWorkRequest(free_slots=1), metadata=session, timeout=30)
        assignment = work.assignments[0]
        lease, build_id = assignment.lease, assignment.build_id
        agent.StartStep(agent_pb2.StartStepRequest(lease=lease, step_index=0), metadata=session)
        stored = b"0123456789ABCDEF"
        first = agent_pb2.AppendLogRequest(lease=lease, step_index=0, offset=0, data=stored)
        assert agent.AppendLog(first, metadata=session, timeout=10).accepted

        def append(index: int, offset: int, data: bytes) -> Callable[[], Any]:
            request = agent_pb2.AppendLogRequest(
                lease=lease, step_index=index, offset=offset, data=data
            )
            return lambda: agent.AppendLog(request, metadata=session, timeout=10)

        _refused(append(0, -4, b"OP"), "offset")
        _refused(append(0, 2**62, b"x"), "offset")
        _refused(append(7777, 0, b"x"), "step_index")
        _refused(append(-1, 0, b"x"), "step_index")

        def start(index: int) -> Callable[[], Any]:
            request = agent_pb2.StartStepRequest(lease=lease, step_index=index)
            return lambda: agent.StartStep(request, metadata=session, timeout=10)

        for index in (1, -1, 2**31 - 1):
            _refused(start(index), "step_index")
        lost = agent_pb2.FinishStepRequest(
            lease=lease, step_index=0, outcome=types_pb2.OUTCOME_SUCCEEDED, log_lost_bytes=-5
        )
        _refused(lambda: agent.FinishStep(lost, metadata=session, timeout=10), "log_lost_bytes")
        outside = agent_pb2.FinishStepRequest(
            lease=lease, step_index=3, outcome=types_pb2.OUTCOME_SUCCEEDED
        )
        _refused(lambda: agent.FinishStep(outside, metadata=session, timeout=10), "step_index")

        for slots in (-1, 10**6):
            poll = agent_pb2.PollWorkRequest(free_slots=slots)
            _refused(
                functools.partial(agent.PollWork, poll, metadata=session, timeout=10), "free_slots"
            )
        many = agent_pb2.RenewLeasesRequest(leases=[lease] * 1000)
        _refused(lambda: agent.RenewLeases(many, metadata=session, timeout=10), "leases")
        blobs = blobs_pb2_grpc.AgentBlobServiceStub(channel)
        for mode in (0o10000, 2**32 - 1):
            header = blobs_pb2.UploadHeader(lease=lease, name="x.bin", size=1, mode=mode)
            parts = [
                blobs_pb2.UploadChunk(header=header),
                blobs_pb2.UploadChunk(data=b"x"),
                blobs_pb2.UploadChunk(sha256=hashlib.sha256(b"x").hexdigest()),
            ]
            _refused(
                functools.partial(blobs.UploadArtifact, iter(parts), metadata=session, timeout=10),
                "mode",
            )
        renewed = agent.RenewLeases(
            agent_pb2.RenewLeasesRequest(leases=[lease]), metadata=session, timeout=10
        )
        assert [status.attempt_id for status in renewed.leases] == [lease.attempt_id]

        # Nothing stored changed: the bytes, the files, the step, the artifacts.
        assert _log(control, build_id) == stored
        attempt_dir = cluster.data_dir / "logs" / str(lease.attempt_id)
        assert sorted(p.name for p in attempt_dir.iterdir()) == ["0.log"]
        step = job(cluster.show(build_id), "nap")["steps"][0]
        assert step["status"] == "running"

        # Readers: negative or huge offsets are refused; an offset past the end reads nothing.
        def read(from_offset: int = 0, from_step: int = 0, attempt: int = 0) -> Callable[[], Any]:
            request = control_pb2.ReadLogsRequest(
                build_id=build_id,
                job="nap",
                from_offset=from_offset,
                from_step=from_step,
                attempt_number=attempt,
            )
            return lambda: control.ReadLogs(request, metadata=client, timeout=10)

        _refused(read(from_offset=-1), "from_offset")
        _refused(read(from_offset=2**62), "from_offset")
        _refused(read(from_step=-1), "from_step")
        _refused(read(attempt=-1), "attempt_number")
        assert list(read(from_offset=2**50)()) == []

        def watch(offset: int) -> Callable[[], Any]:
            resume = control_pb2.LogOffset(job="nap", attempt_number=1, step_index=0, offset=offset)
            request = control_pb2.WatchBuildRequest(
                build_id=build_id, include_logs=True, resume=[resume]
            )
            return lambda: control.WatchBuild(request, metadata=client, timeout=10)

        for offset in (-1, 2**62):
            _refused(watch(offset), "resume.offset")

        listing = control_pb2.ListBuildsRequest(limit=-1)
        _refused(lambda: control.ListBuilds(listing, metadata=client, timeout=10), "limit")

        def finish(
            reason: str, message: str, last_step: agent_pb2.FinishStepRequest | None = None
        ) -> Callable[[], Any]:
            request = agent_pb2.FinishAttemptRequest(
                lease=lease,
                outcome=types_pb2.OUTCOME_FAILED,
                reason=reason,
                message=message,
                last_step=last_step,
            )
            return lambda: agent.FinishAttempt(request, metadata=session, timeout=10)

        _refused(finish("r" * 1000, ""), "reason")
        _refused(finish("exit_code", "m" * (1024 * 1024)), "message")
        # The last step's report inside the finish: checked before anything is recorded.
        ended = types_pb2.OUTCOME_SUCCEEDED
        for index in (-1, 1, 2**31 - 1):
            step = agent_pb2.FinishStepRequest(step_index=index, outcome=ended)
            _refused(finish("exit_code", "", step), "step_index")
        lost = agent_pb2.FinishStepRequest(step_index=0, outcome=ended, log_lost_bytes=-1)
        _refused(finish("exit_code", "", lost), "log_lost_bytes")
        unset = agent_pb2.FinishStepRequest(step_index=0)
        _refused(finish("exit_code", "", unset), "outcome")
        step_status = job(cluster.show(build_id), "nap")["steps"][0]["status"]
        assert step_status == "running", step_status
        assert job(cluster.show(build_id), "nap")["status"] == "running"  # nothing recorded
        assert cluster.json("artifacts", str(build_id))["artifacts"] == []
    finally:
        channel.close()
    log = cluster.processes[0].log()
    assert "Traceback" not in log, log


ENV_CASES = {
    "equals_in_name": ({"A=B": "1"}, "env name"),
    "empty_name": ({"": "1"}, "env name"),
    "digit_first": ({"1A": "1"}, "env name"),
    "nul_in_value": ({"A": "x\0y"}, "env.A"),
    "too_many": ({f"V{i}": "1" for i in range(5000)}, "too many"),
    "huge_value": ({"BIG": "x" * (3 * 1024 * 1024)}, "env.BIG"),
    "long_name": ({"N" * 10_000: "1"}, "env name"),
}


def test_env_overrides_get_the_cli_rules_on_the_server(cluster: Cluster) -> None:
    channel = wire.insecure_channel(cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        for case, (env, field) in ENV_CASES.items():
            request = control_pb2.SubmitBuildRequest(pipeline_yaml=NAP, env=env)
            with pytest.raises(grpc.RpcError) as refused:
                control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=10)
            error: Any = refused.value
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (case, error.details())
            assert field in error.details(), (case, error.details())
        listing = control.ListBuilds(
            control_pb2.ListBuildsRequest(), metadata=wire.bearer(CLIENT_TOKEN), timeout=10
        )
        assert list(listing.builds) == []  # nothing was stored
        fine = control_pb2.SubmitBuildRequest(pipeline_yaml=NAP, env={"MY_VAR": "a=b c"})
        assert control.SubmitBuild(fine, metadata=wire.bearer(CLIENT_TOKEN), timeout=10).build_id
    finally:
        channel.close()


def test_a_lone_surrogate_is_refused_at_submission_by_the_server(cluster: Cluster) -> None:
    """The CLI checks pipelines offline too; this is what the server itself says."""
    text = NAP.replace("- run: echo up; sleep 9", '- run: "echo \\ud800"')
    channel = wire.insecure_channel(cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        request = control_pb2.SubmitBuildRequest(pipeline_yaml=text, source_name="bad.yml")
        with pytest.raises(grpc.RpcError) as refused:
            control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=10)
        error: Any = refused.value
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "bad.yml:6:" in error.details(), error.details()
        assert "jobs.nap.steps[0].run: invalid character U+D800" in error.details()
    finally:
        channel.close()
    assert cluster.json("builds") == []


REGISTRATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "huge_name": ({"name": "n" * 1024 * 1024}, "name"),
    "control_in_name": ({"name": "evil\x1b[2J"}, "name"),
    "empty_name": ({"name": ""}, "name"),
    "many_labels": ({"labels": {f"k{i}": "v" for i in range(5000)}}, "labels"),
    "huge_label_value": ({"labels": {"big": "x" * 1024 * 1024}}, "labels"),
    "label_value_with_equals": ({"labels": {"os": "a=b"}}, "labels"),
    "label_value_with_comma": ({"labels": {"os": "a,b"}}, "labels"),
    "bad_label_name": ({"labels": {"o s": "x"}}, "labels"),
    "huge_capacity": ({"capacity": 2**31 - 1}, "capacity"),
    "zero_capacity": ({"capacity": 0}, "capacity"),
    "negative_capacity": ({"capacity": -3}, "capacity"),
}


def test_registrations_out_of_bounds_are_refused_and_store_nothing(
    cluster: Cluster, unique: str
) -> None:
    channel = wire.insecure_channel(cluster.address)
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        for case, (fields, field) in REGISTRATIONS.items():
            request: dict[str, Any] = {
                "join_token": AGENT_TOKEN,
                "name": f"agent-{unique}",
                "capacity": 1,
                "protocol_version": PROTOCOL_VERSION,
                **fields,
            }
            with pytest.raises(grpc.RpcError) as refused:
                agent.Register(agent_pb2.RegisterRequest(**request), timeout=10)
            error: Any = refused.value
            assert error.code() in REFUSED, (case, error.code(), error.details()[:200])
            assert error.details().startswith(field), (case, error.details()[:200])
        listing = control.ListAgents(
            control_pb2.ListAgentsRequest(), metadata=wire.bearer(CLIENT_TOKEN), timeout=10
        )
        assert list(listing.agents) == []
    finally:
        channel.close()


def test_garbage_collection_refuses_a_negative_age(cluster: Cluster) -> None:
    """A negative age is a cutoff in the future: it would drop every build's artifacts."""
    channel = wire.insecure_channel(cluster.address)
    try:
        stub = blobs_pb2_grpc.BlobServiceStub(channel)
        request = blobs_pb2.CollectGarbageRequest(older_than_ms=-86_400_000)
        _refused(
            lambda: stub.CollectGarbage(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=10),
            "older_than",
        )
    finally:
        channel.close()


def test_an_agent_s_hold_reason_out_of_bounds_is_refused(cluster: Cluster, unique: str) -> None:
    channel = wire.insecure_channel(cluster.address)
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    try:
        joined = agent.Register(
            agent_pb2.RegisterRequest(
                join_token=AGENT_TOKEN,
                name=f"holder-{unique}",
                capacity=1,
                protocol_version=PROTOCOL_VERSION,
            ),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as refused:
            agent.PollWork(
                agent_pb2.PollWorkRequest(held="disk full: " + "d" * 1000),
                metadata=wire.bearer(joined.session_token),
                timeout=10,
            )
        error: Any = refused.value
        assert error.code() in REFUSED, (error.code(), error.details()[:200])
        assert error.details().startswith("held"), error.details()[:200]
    finally:
        channel.close()
