"""Artifacts as the agent reports them: one name once per attempt, and globs that match nothing
are said in the job's log. The duplicate test speaks the agent protocol itself."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import grpc
import pytest

from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc, blobs_pb2, blobs_pb2_grpc, types_pb2
from tests.harness import AGENT_TOKEN, Cluster, job, write_pipeline

KEEPER = (
    "name: keeper\nimage: conveyor/busybox\njobs:\n  keep:\n    steps: [{run: 'true'}]\n"
    "    artifacts: [out.txt]\n"
)


def _upload(
    stub: blobs_pb2_grpc.AgentBlobServiceStub,
    session: wire.Metadata,
    lease: types_pb2.Lease,
    name: str,
    data: bytes,
) -> str:
    header = blobs_pb2.UploadHeader(lease=lease, name=name, size=len(data), mode=0o644)
    messages = [
        blobs_pb2.UploadChunk(header=header),
        blobs_pb2.UploadChunk(data=data),
        blobs_pb2.UploadChunk(sha256=hashlib.sha256(data).hexdigest()),
    ]
    reply = stub.UploadArtifact(iter(messages), metadata=session, timeout=30)
    digest: str = reply.sha256
    return digest


def test_a_second_upload_of_a_name_is_refused_unless_identical(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    channel = wire.insecure_channel(cluster.address)
    try:
        agents = agent_pb2_grpc.AgentServiceStub(channel)
        blobs = blobs_pb2_grpc.AgentBlobServiceStub(channel)
        joined = agents.Register(
            agent_pb2.RegisterRequest(
                join_token=AGENT_TOKEN,
                name=f"uploader-{unique}",
                capacity=1,
                protocol_version=PROTOCOL_VERSION,
            ),
            timeout=10,
        )
        session = wire.bearer(joined.session_token)
        path = write_pipeline(tmp_path, "keeper.yml", KEEPER)
        build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
        work = agents.PollWork(
            agent_pb2.PollWorkRequest(free_slots=1), metadata=session, timeout=30
        )
        lease = work.assignments[0].lease
        first = _upload(blobs, session, lease, "out.txt", b"first\n")
        assert _upload(blobs, session, lease, "out.txt", b"first\n") == first  # resent: fine
        with pytest.raises(grpc.RpcError) as refused:
            _upload(blobs, session, lease, "out.txt", b"second, different\n")
        assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS
        assert "artifact 'out.txt' was already uploaded by this attempt" in (
            refused.value.details() or ""
        )
        finish = agent_pb2.FinishAttemptRequest(lease=lease, outcome=types_pb2.OUTCOME_SUCCEEDED)
        agents.FinishAttempt(finish, metadata=session, timeout=10)
    finally:
        channel.close()
    listing = cluster.json("artifacts", str(build_id))
    assert [(a["name"], a["sha256"]) for a in listing["artifacts"]] == [("out.txt", first)]
    # The refused file left no blob behind (blobs live at blobs/sha256/ab/cdef...).
    refused_digest = hashlib.sha256(b"second, different\n").hexdigest()
    assert (cluster.data_dir / "blobs" / "sha256" / first[:2] / first[2:]).is_file()
    assert (
        not (cluster.data_dir / "blobs" / "sha256" / refused_digest[:2])
        .joinpath(refused_digest[2:])
        .exists()
    )


PARTLY = """
name: partly
image: conveyor/busybox
jobs:
  make:
    steps:
      - run: echo made > made.txt
      - name: last
        run: echo last step
    artifacts: [made.txt, "dist/**", missing.bin]
"""


def test_an_artifact_glob_that_matches_nothing_is_said_in_the_jobs_log(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"maker-{unique}")
    result = cluster.cli("run", str(write_pipeline(tmp_path, "partly.yml", PARTLY)), "--json")
    assert result.returncode == 0, result.stderr.decode()
    doc = json.loads(result.stdout)
    build = str(doc["id"])
    log = cluster.cli("logs", build, "make", "--step", "last").stdout
    assert log == (
        b"last step\n"
        b"conveyor: artifact pattern 'dist/**' matched no file\n"
        b"conveyor: artifact pattern 'missing.bin' matched no file\n"
    )
    last = job(doc, "make")["steps"][-1]
    assert last["log_bytes"] == len(log)
    listing = cluster.json("artifacts", build)
    assert [a["name"] for a in listing["artifacts"]] == ["made.txt"]
