"""A list of builds stays small whatever the builds hold.

ListBuilds used to carry every job of every build listed: a few valid pipelines with many
labelled jobs (under every bound of the format, thanks to a YAML alias) pushed the answer past
the message limit, and then `conveyor builds` failed for everyone.
"""

from __future__ import annotations

import json

import grpc
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster

# What a list carries is the edge's choice; the rows read are any listing's.
pytestmark = pytest.mark.any_store

BUILDS = 18  # at about 1 MiB of jobs each, together past the 16 MiB message limit
JOBS = 200
LABELS = 40


def _heavy_pipeline() -> str:
    labels = "".join(f"\n      k{i:02d}{'k' * 60}: {'v' * 63}" for i in range(LABELS))
    first = f"  j000:\n    labels: &many{labels}\n"
    first += "    steps: [{run: 'true'}]\n"
    rest = "".join(
        f"  j{j:03d}:\n    labels: *many\n    steps: [{{run: 'true'}}]\n" for j in range(1, JOBS)
    )
    return "name: heavy\nimage: conveyor/busybox\njobs:\n" + first + rest


def test_builds_lists_many_heavy_builds(cluster: Cluster) -> None:
    text = _heavy_pipeline()
    channel = wire.insecure_channel(cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        for _ in range(BUILDS):
            request = control_pb2.SubmitBuildRequest(pipeline_yaml=text, source_name="heavy.yml")
            control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=60)
        one = control.GetBuild(
            control_pb2.GetBuildRequest(build_id=1), metadata=wire.bearer(CLIENT_TOKEN), timeout=60
        )
        assert one.ByteSize() * BUILDS > wire.MAX_MESSAGE_BYTES  # what the old answer carried
        try:
            listing = control.ListBuilds(
                control_pb2.ListBuildsRequest(limit=100),
                metadata=wire.bearer(CLIENT_TOKEN),
                timeout=60,
            )
        except grpc.RpcError as error:
            raise AssertionError(f"ListBuilds failed: {error}") from None
    finally:
        channel.close()
    assert [b.job_count for b in listing.builds] == [JOBS] * BUILDS
    assert listing.ByteSize() < 64 * 1024

    table = cluster.cli("builds", "--limit", "100")
    assert table.returncode == 0, table.stderr.decode()
    rows = [line.split() for line in table.stdout.decode().splitlines()[1:]]
    assert [(row[0], row[1], row[3]) for row in rows] == [
        (str(i), "heavy", str(JOBS)) for i in range(BUILDS, 0, -1)
    ]
    listed = json.loads(cluster.cli("builds", "--limit", "100", "--json").stdout)
    assert [b["id"] for b in listed] == list(range(BUILDS, 0, -1))
    assert all("jobs" not in b for b in listed)
