"""`conveyor builds --status/--name/--branch/--limit` and `GET /api/v1/builds?...`: the
coordinator filters (so `--limit` counts what passes), and wrong values are refused, exit 2 on
the command line and INVALID_ARGUMENT on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster


def _pipeline(name: str) -> str:
    return f"name: {name}\nimage: any\njobs:\n  only:\n    steps: [{{run: 'true'}}]\n"


@pytest.fixture
def control(cluster: Cluster) -> Iterator[control_pb2_grpc.ControlServiceStub]:
    channel = wire.insecure_channel(cluster.address)
    try:
        yield control_pb2_grpc.ControlServiceStub(channel)
    finally:
        channel.close()


def _submit(control: control_pb2_grpc.ControlServiceStub, name: str, branch: str) -> int:
    request = control_pb2.SubmitBuildRequest(
        pipeline_yaml=_pipeline(name), source_name="p.yml", branch=branch
    )
    reply = control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=60)
    return int(reply.build_id)


def _listed(cluster: Cluster, *args: str) -> list[int]:
    done = cluster.cli("builds", *args, "--json")
    assert done.returncode == 0, done.stderr.decode()
    return [doc["id"] for doc in json.loads(done.stdout)]


def test_builds_are_filtered_by_the_coordinator(
    cluster: Cluster, control: control_pb2_grpc.ControlServiceStub
) -> None:
    # No agent runs: every build stays queued but the one canceled.
    shop_main = _submit(control, "shop", "main")
    shop_dev = _submit(control, "shop", "dev")
    docs_main = _submit(control, "docs", "main")
    canceled = _submit(control, "shop", "main")
    assert cluster.cli("cancel", str(canceled)).returncode == 0
    others = [_submit(control, "other", "x") for _ in range(3)]

    assert _listed(cluster, "--name", "shop") == [canceled, shop_dev, shop_main]
    assert _listed(cluster, "--branch", "main") == [canceled, docs_main, shop_main]
    assert _listed(cluster, "--status", "canceled") == [canceled]
    assert _listed(
        cluster, "--status", "queued,canceled", "--name", "shop", "--branch", "main"
    ) == [
        canceled,
        shop_main,
    ]
    assert _listed(cluster, "--status", "failed", "--status", "canceled") == [canceled]
    # The newest three are someone else's: the limit counts only what the filter keeps.
    assert _listed(cluster, "--name", "shop", "--limit", "2") == [canceled, shop_dev]
    assert _listed(cluster, "--limit", "2") == others[:0:-1]

    table = cluster.cli("builds", "--name", "docs")
    assert table.returncode == 0, table.stderr.decode()
    rows = [line.split() for line in table.stdout.decode().splitlines()[1:]]
    assert [row[:3] for row in rows] == [[str(docs_main), "docs", "queued"]]

    base = f"http://{cluster.http_address}/api/v1"
    headers = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as api:
        answer = api.get("/builds", params={"status": "queued,canceled", "name": "shop"})
        assert answer.status_code == 200, answer.text
        assert [doc["id"] for doc in answer.json()] == [canceled, shop_dev, shop_main]
        params: Any = [("status", "canceled"), ("status", "queued"), ("branch", "dev")]
        assert [doc["id"] for doc in api.get("/builds", params=params).json()] == [shop_dev]
        refused = api.get("/builds", params={"status": "done"})
        assert refused.status_code == 400
        assert "unknown build state 'done'" in refused.json()["error"]
        spec = api.get("/openapi.json").json()
        names = {p["name"] for p in spec["paths"]["/builds"]["get"]["parameters"]}
        assert names == {"status", "name", "branch", "limit"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--status", "done"), "unknown build state 'done'"),
        (("--status", ","), "expected a build state"),
        (("--limit", "0"), "--limit: 0 is out of range (1..1000)"),
        (("--limit", "-3"), "--limit: -3 is out of range (1..1000)"),
    ],
)
@pytest.mark.any_store  # refused by the CLI or at the edge, before a query
def test_wrong_filters_are_usage_errors(
    cluster: Cluster, args: tuple[str, ...], message: str
) -> None:
    done = cluster.cli("builds", *args)
    assert done.returncode == 2
    assert message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_an_unknown_state_on_the_wire_is_invalid_argument(
    control: control_pb2_grpc.ControlServiceStub,
) -> None:
    request = control_pb2.ListBuildsRequest(statuses=["queued", "done"])
    with pytest.raises(grpc.RpcError) as info:
        control.ListBuilds(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=60)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "status: unknown build state 'done'" in str(info.value.details())
