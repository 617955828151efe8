"""Register's bounds (DESIGN §6.8): a name, labels or capacity out of range is refused with
INVALID_ARGUMENT naming the field, nothing is stored, and `conveyor agents` keeps working."""

from __future__ import annotations

import grpc
import pytest

from conveyor import PROTOCOL_VERSION, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc
from tests.harness import AGENT_TOKEN, Cluster

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

HUGE_LABELS = {f"k{i}": "v" * 7000 for i in range(2000)}  # ~14 MB


@pytest.mark.parametrize(
    ("name", "labels", "capacity", "field"),
    [
        ("flood", HUGE_LABELS, 1, "labels"),
        ("long-value", {"pool": "v" * 257}, 1, "labels.pool"),
        ("bad-key", {"a b": "x"}, 1, "labels"),
        ("comma", {"pool": "a,b"}, 1, "labels.pool"),
        ("n" * 1024 * 1024, {}, 1, "name"),
        ("tab\tname", {}, 1, "name"),
        ("", {}, 1, "name"),
        ("greedy", {}, 2**31 - 1, "capacity"),
        ("negative", {}, -1, "capacity"),
    ],
)
def test_out_of_range_registrations_are_refused_naming_the_field(
    cluster: Cluster, name: str, labels: dict[str, str], capacity: int, field: str
) -> None:
    channel = wire.insecure_channel(cluster.address)
    try:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        request = agent_pb2.RegisterRequest(
            join_token=AGENT_TOKEN,
            name=name,
            labels=labels,
            capacity=capacity,
            protocol_version=PROTOCOL_VERSION,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Register(request, timeout=30)
    finally:
        channel.close()
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith(f"{field}:")
    assert cluster.json("agents") == []


def test_an_agent_asking_for_too_much_capacity_exits_with_the_reason(
    cluster: Cluster, unique: str
) -> None:
    agent = cluster.start_agent(f"big-{unique}", concurrency=300, wait=False)
    assert agent.popen.wait(30) == 2
    assert "capacity: 300, must be 1 to 256" in agent.log()
    assert "Traceback" not in agent.log()
