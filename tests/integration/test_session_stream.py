"""An agent's per-event calls (renewals, step events, logs, finishes) travel on its one session
stream, counted by the coordinator per call and transport; a stream cut mid-job loses nothing;
against an older coordinator without the stream, the same calls go unary."""

from __future__ import annotations

import itertools
import json
import queue
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc, types_pb2
from tests.faults import TcpProxy
from tests.harness import AGENT_TOKEN, Cluster, job, wait_for, write_pipeline
from tests.older_coordinator import SESSION, OlderCoordinator

pytestmark = pytest.mark.any_store  # the transport, not the store

EVENTS = ("StartStep", "AppendLog", "FinishStep", "FinishAttempt")
TWO_STEPS = """
name: two-steps
image: conveyor/busybox
jobs:
  only:
    steps:
      - {name: one, run: echo first}
      - {name: two, run: echo second}
"""
LINES = 40
REFUSED = (grpc.StatusCode.OUT_OF_RANGE.value[0], grpc.StatusCode.INVALID_ARGUMENT.value[0])


def requests(cluster: Cluster) -> dict[tuple[str, str], float]:
    """conveyor_agent_requests_total by (call, transport)."""
    response = httpx.get(f"http://{cluster.http_address}/metrics", timeout=30.0)
    counts = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "conveyor_agent_requests_total":
                counts[(sample.labels["call"], sample.labels["transport"])] = sample.value
    return counts


def _submit(cluster: Cluster, path: Path) -> int:
    result = cluster.cli("run", str(path), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


def _ended(cluster: Cluster, build_id: int) -> dict[str, object]:
    doc: dict[str, object] = cluster.wait_build(
        build_id, lambda d: d["status"] not in ("running", "queued"), 60, "the build to end"
    )
    return doc


def test_step_events_travel_on_the_session_stream(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"streamer-{unique}")
    build_id = _submit(cluster, write_pipeline(tmp_path, "two.yml", TWO_STEPS))
    doc = _ended(cluster, build_id)
    assert doc["status"] == "succeeded", doc
    assert cluster.cli("logs", str(build_id), "only", "--step", "one").stdout == b"first\n"
    assert cluster.cli("logs", str(build_id), "only", "--step", "two").stdout == b"second\n"
    steps = job(doc, "only")["steps"]
    assert [(s["status"], s["exit_code"], s["log_bytes"]) for s in steps] == [
        ("succeeded", 0, len(b"first\n")),
        ("succeeded", 0, len(b"second\n")),
    ], steps
    counts = requests(cluster)
    assert counts.get(("StartStep", "stream")) == 2, counts
    # The step that ran last ends inside the attempt's finish: one call less per job.
    assert counts.get(("FinishStep", "stream")) == 1, counts
    assert counts.get(("FinishAttempt", "stream")) == 1, counts
    assert counts.get(("AppendLog", "stream"), 0) >= 2, counts
    for call in (*EVENTS, "RenewLeases"):
        assert counts.get((call, "unary"), 0) == 0, counts


def test_an_agent_falls_back_to_unary_calls_with_an_older_coordinator(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    """Against a coordinator that has no session stream (and cannot take a step's end inside
    the attempt's finish), every event goes by its own unary call, and nothing is lost."""
    older = OlderCoordinator(cluster.address)
    try:
        agent = cluster.start_agent(f"older-{unique}", via=older.address)
        build_id = _submit(cluster, write_pipeline(tmp_path, "two.yml", TWO_STEPS))
        doc = _ended(cluster, build_id)
        agent_log = agent.log()
    finally:
        older.close()
    assert doc["status"] == "succeeded", doc
    assert cluster.cli("logs", str(build_id), "only", "--step", "one").stdout == b"first\n"
    assert cluster.cli("logs", str(build_id), "only", "--step", "two").stdout == b"second\n"
    assert [s["status"] for s in job(doc, "only")["steps"]] == ["succeeded", "succeeded"], doc
    assert SESSION in older.refused  # it did try the stream first
    assert "no session stream; using unary calls" in agent_log
    counts = requests(cluster)
    assert counts.get(("StartStep", "unary")) == 2, counts
    # Each step's end by its own call: this coordinator takes none inside the finish.
    assert counts.get(("FinishStep", "unary")) == 2, counts
    assert counts.get(("FinishAttempt", "unary")) == 1, counts
    assert counts.get(("AppendLog", "unary"), 0) >= 2, counts
    for call in EVENTS:
        assert counts.get((call, "stream"), 0) == 0, counts


def _counting_pipeline(tmp_path: Path) -> Path:
    # Unrolled rather than a loop: the fake executor reads no loops.
    count = "; ".join(f"echo {i}; sleep 0.1" for i in range(1, LINES + 1))
    text = (
        f"name: count\nimage: conveyor/busybox\njobs:\n  count:\n    steps:\n      - run: {count}\n"
    )
    return write_pipeline(tmp_path, "count.yml", text)


def test_a_stream_cut_mid_job_loses_nothing(
    patient_cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster = patient_cluster
    proxy = TcpProxy(cluster.address)
    try:
        cluster.start_agent(f"cut-{unique}", via=proxy.address)
        build_id = _submit(cluster, _counting_pipeline(tmp_path))
        wait_for(
            lambda: cluster.cli("logs", str(build_id), "count").stdout.startswith(b"1\n"),
            30,
            "the count to start",
        )
        before = requests(cluster)
        proxy.set_mode("reset")  # the agent's connection, and so its stream, dies mid-step
        time.sleep(1.0)
        proxy.set_mode("pass")
        doc = _ended(cluster, build_id)
    finally:
        proxy.close()
    assert (doc["status"], job(doc, "count")["attempts"]) == ("succeeded", 1), doc
    assert cluster.cli("logs", str(build_id), "count").stdout == b"".join(
        f"{i}\n".encode() for i in range(1, LINES + 1)
    )
    after = requests(cluster)
    # What came after the cut came on a new stream: the old one died with its connection.
    assert after[("AppendLog", "stream")] > before[("AppendLog", "stream")], (before, after)
    # The one step ended inside the attempt's finish.
    assert after.get(("FinishStep", "stream"), 0) == 0, after
    assert after.get(("FinishAttempt", "stream")) == 1, after
    assert job(doc, "count")["steps"][0]["status"] == "succeeded", doc
    for call in (*EVENTS, "RenewLeases"):
        assert after.get((call, "unary"), 0) == 0, after


NAP = (
    "name: nap\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n      - run: echo up; sleep 9\n"
)


class _Stream:
    """A raw Session stream, spoken as a hostile client would: one request, then its reply."""

    def __init__(self, stub: agent_pb2_grpc.AgentServiceStub, metadata: wire.Metadata) -> None:
        self._outbox: queue.Queue[agent_pb2.AgentMessage | None] = queue.Queue()
        self._replies = stub.Session(iter(self._outbox.get, None), metadata=metadata, timeout=60)
        self._ids = itertools.count(1)

    def ask(self, **request: Any) -> agent_pb2.CoordinatorMessage:
        message = agent_pb2.AgentMessage(id=next(self._ids), **request)
        self._outbox.put(message)
        reply: agent_pb2.CoordinatorMessage = next(self._replies)  # type: ignore[call-overload]
        assert reply.id == message.id
        return reply

    def ask_all(self, requests: list[dict[str, Any]]) -> list[agent_pb2.CoordinatorMessage]:
        """Sends every request before reading any reply; the replies in the requests' order."""
        messages = [agent_pb2.AgentMessage(id=next(self._ids), **r) for r in requests]
        for message in messages:
            self._outbox.put(message)
        replies = {}
        for _ in messages:
            reply: agent_pb2.CoordinatorMessage = next(self._replies)  # type: ignore[call-overload]
            replies[reply.id] = reply
        return [replies[message.id] for message in messages]

    def close(self) -> None:
        self._outbox.put(None)
        self._replies.cancel()  # type: ignore[no-untyped-call]


def test_a_refused_request_is_its_own_reply_and_the_stream_goes_on(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    channel = wire.insecure_channel(cluster.address)
    agent = agent_pb2_grpc.AgentServiceStub(channel)
    try:
        registered = agent.Register(
            agent_pb2.RegisterRequest(
                join_token=AGENT_TOKEN,
                name=f"raw-{unique}",
                capacity=1,
                protocol_version=PROTOCOL_VERSION,
            )
        )
        stranger = _Stream(agent, wire.bearer("not-a-session"))
        with pytest.raises(grpc.RpcError) as refused:
            stranger.ask(start_step=agent_pb2.StartStepRequest())
        error: Any = refused.value
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

        session = wire.bearer(registered.session_token)
        cluster.cli("run", str(write_pipeline(tmp_path, "nap.yml", NAP)), "--no-follow")
        work = agent.PollWork(agent_pb2.PollWorkRequest(free_slots=1), metadata=session, timeout=30)
        lease = work.assignments[0].lease
        stream = _Stream(agent, session)
        out_of_range = stream.ask(start_step=agent_pb2.StartStepRequest(lease=lease, step_index=5))
        assert out_of_range.error.code in REFUSED, out_of_range
        assert "step_index" in out_of_range.error.details
        assert stream.ask().error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        stale = types_pb2.Lease(attempt_id=lease.attempt_id, lease_token="stale")
        fenced = stream.ask(start_step=agent_pb2.StartStepRequest(lease=stale, step_index=0))
        assert fenced.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0], fenced
        started = stream.ask(start_step=agent_pb2.StartStepRequest(lease=lease, step_index=0))
        assert started.WhichOneof("reply") == "start_step", started
        data = agent_pb2.AppendLogRequest(lease=lease, step_index=0, offset=0, data=b"up\n")
        assert stream.ask(append_log=data).append_log.held_length == 3
        assert stream.ask(append_log=data).append_log.held_length == 3  # a resend: no duplicate
        # Chunks sent one after another without waiting (as the agent's shipper does) are
        # stored in the order sent, however the coordinator's file threads take them.
        pieces = [bytes([97 + i % 26]) * 65536 + b"\n" for i in range(24)]
        offsets = list(itertools.accumulate((len(p) for p in pieces), initial=3))
        appends = [
            {"append_log": agent_pb2.AppendLogRequest(
                lease=lease, step_index=0, offset=offset, data=piece)}
            for offset, piece in zip(offsets, pieces, strict=False)
        ]  # fmt: skip
        replies = [reply.append_log for reply in stream.ask_all(appends)]
        assert all(reply.accepted for reply in replies), replies
        assert [reply.held_length for reply in replies] == offsets[1:]
        stream.close()
        build_id = json.loads(cluster.cli("builds", "--json").stdout)[0]["id"]
        assert cluster.cli("logs", str(build_id), "nap").stdout == b"up\n" + b"".join(pieces)
    finally:
        channel.close()
    log = cluster.processes[0].log()
    assert "Traceback" not in log, log
