"""An agent restarted under the same name cleans up after its previous life, which is fenced off.

The restart's cleanup is about containers (Docker); the fencing tests speak the protocol
themselves and start no agent at all."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc, types_pb2
from tests.harness import AGENT_TOKEN, Cluster, job, wait_for, write_pipeline

NAP = (
    "name: nap\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n      - run: echo up; sleep 9\n"
)


@pytest.mark.docker
def test_restarted_agent_removes_leftovers_and_old_attempt_ends(
    docker_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = docker_cluster
    name = f"phoenix-{unique}"
    first_life = cluster.start_agent(name)
    path = write_pipeline(tmp_path, "nap.yml", NAP)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "nap").stdout == b"up\n", 30, "the step to start"
    )
    first_life.kill()
    assert len(cluster.containers_of_build(build_id)) == 1  # orphaned, still running
    restarted_at = time.monotonic()
    cluster.start_agent(name)
    doc = cluster.wait_build(
        build_id, lambda d: d["status"] == "failed", 10, "the old attempt to end"
    )
    # Ended on re-registration, well before the 4 s lease would have expired.
    assert time.monotonic() - restarted_at < 4
    nap = job(doc, "nap")
    assert (nap["reason"], nap["attempts"]) == ("agent_lost", 1)
    assert "restarted" in nap["message"]
    assert cluster.containers_of_build(build_id) == []


def _register(
    stub: agent_pb2_grpc.AgentServiceStub, name: str, credential: str = ""
) -> agent_pb2.RegisterResponse:
    reply: agent_pb2.RegisterResponse = stub.Register(
        agent_pb2.RegisterRequest(
            join_token=AGENT_TOKEN,
            name=name,
            capacity=1,
            protocol_version=PROTOCOL_VERSION,
            agent_credential=credential,
        )
    )
    return reply


def _session(stub: agent_pb2_grpc.AgentServiceStub, name: str) -> wire.Metadata:
    return wire.bearer(_register(stub, name).session_token)


def test_late_writes_of_a_previous_life_are_refused(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    """Speaks the agent protocol directly: the old session and the old lease are both dead."""
    name = f"ghost-{unique}"
    channel = wire.insecure_channel(cluster.address)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    try:
        first = _register(stub, name)
        old_session = wire.bearer(first.session_token)
        path = write_pipeline(tmp_path, "nap.yml", NAP)
        cluster.cli("run", str(path), "--no-follow")
        work = stub.PollWork(
            agent_pb2.PollWorkRequest(free_slots=1), metadata=old_session, timeout=30
        )
        assert len(work.assignments) == 1
        lease = work.assignments[0].lease
        append = agent_pb2.AppendLogRequest(lease=lease, step_index=0, offset=0, data=b"alive\n")
        assert stub.AppendLog(append, metadata=old_session, timeout=10).accepted

        # The restart: the same agent (its credential), nothing re-presented.
        new_session = wire.bearer(_register(stub, name, first.agent_credential).session_token)
        for session, code in (
            (old_session, grpc.StatusCode.UNAUTHENTICATED),
            (new_session, grpc.StatusCode.FAILED_PRECONDITION),
        ):
            late = agent_pb2.AppendLogRequest(lease=lease, step_index=0, offset=6, data=b"late\n")
            with pytest.raises(grpc.RpcError) as refused:
                stub.AppendLog(late, metadata=session, timeout=10)
            assert refused.value.code() is code
        finish = agent_pb2.FinishAttemptRequest(lease=lease, outcome=types_pb2.OUTCOME_SUCCEEDED)
        with pytest.raises(grpc.RpcError) as refused:
            stub.FinishAttempt(finish, metadata=new_session, timeout=10)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        channel.close()
    build = cluster.json("builds")[0]
    doc = cluster.show(build["id"])
    assert job(doc, "nap")["reason"] == "agent_lost"
    assert cluster.cli("logs", str(doc["id"]), "nap").stdout == b"alive\n"


def test_repeated_finish_returns_the_stored_answer(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    channel = wire.insecure_channel(cluster.address)
    stub = agent_pb2_grpc.AgentServiceStub(channel)
    try:
        session = _session(stub, f"repeater-{unique}")
        cluster.cli("run", str(write_pipeline(tmp_path, "nap.yml", NAP)), "--no-follow")
        work = stub.PollWork(agent_pb2.PollWorkRequest(free_slots=1), metadata=session, timeout=30)
        lease = work.assignments[0].lease
        finish = agent_pb2.FinishAttemptRequest(
            lease=lease,
            outcome=types_pb2.OUTCOME_FAILED,
            reason="exit_code",
            exit_code=5,
            has_exit_code=True,
            message="step exited with code 5",
        )
        first = stub.FinishAttempt(finish, metadata=session, timeout=10)
        again = stub.FinishAttempt(finish, metadata=session, timeout=10)
        assert first == again
        assert (again.recorded_outcome, again.recorded_reason) == (
            types_pb2.OUTCOME_FAILED,
            "exit_code",
        )
        changed = agent_pb2.FinishAttemptRequest(lease=lease, outcome=types_pb2.OUTCOME_SUCCEEDED)
        with pytest.raises(grpc.RpcError) as refused:
            stub.FinishAttempt(changed, metadata=session, timeout=10)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    finally:
        channel.close()
    doc = cluster.show(cluster.json("builds")[0]["id"])
    nap = job(doc, "nap")
    assert (nap["status"], nap["attempts"], nap["exit_code"]) == ("failed", 1, 5)
