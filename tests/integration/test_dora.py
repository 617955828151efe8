"""`conveyor dora` on a real deployment history: three deployments of staging, the second one
failed, through a real coordinator and agent (fake executor) and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster, write_pipeline

PIPELINE = """
name: shop
image: conveyor/busybox
jobs:
  staging:
    environment: staging
    steps: [{run: "echo deploying; exit ${FAIL:-0}"}]
"""
DAY_MS = 86_400_000


def test_dora_figures_come_from_the_recorded_deployments(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"a-{unique}")
    path = write_pipeline(tmp_path, "shop.yml", PIPELINE)
    for fail in ("0", "1", "0"):
        result = cluster.cli("run", str(path), "--env", f"FAIL={fail}", "--json")
        assert result.returncode == (0 if fail == "0" else 1), result.stderr.decode()
    history = cluster.json("deployments", "staging")["deployments"]
    assert [d["status"] for d in history] == ["succeeded", "failed", "succeeded"]
    failed, restored = history[1], history[0]

    doc = cluster.json("dora", "--env", "staging", "--since", "30d")
    assert doc["environment"] == "staging"
    assert doc["deployments"] == 3
    assert doc["change_failure_rate"] == 1 / 3
    # Successful deployments per day of the window (which ends when the coordinator answers).
    assert abs(doc["deployment_frequency_per_day"] - 2 / 30) < 1e-6
    restore_s = (restored["finished_at_ms"] - failed["finished_at_ms"]) / 1000
    assert doc["time_to_restore_s"] == {"median": restore_s}
    # No commit time is recorded for a build without a git source: no lead time, not zero.
    assert doc["lead_time_s"] == {"median": None, "p90": None}
    assert abs(doc["since_ms"] - (history[0]["finished_at_ms"] - 30 * DAY_MS)) < 60_000

    everything = cluster.json("dora")
    assert (everything["environment"], everything["deployments"]) == (None, 3)
    table = cluster.cli("dora", "--env", "staging")
    assert table.returncode == 0, table.stderr.decode()
    assert "change failure rate" in table.stdout.decode()
    assert "33.3% (1 of 3)" in table.stdout.decode()

    unknown = cluster.cli("dora", "--env", "nowhere")
    assert unknown.returncode == 2
    assert "environment 'nowhere' does not exist" in unknown.stderr.decode()


def test_a_window_out_of_range_is_refused_on_the_wire(cluster: Cluster) -> None:
    channel = wire.insecure_channel(cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        for since_ms in (-1, 2**62):
            request = control_pb2.DeliveryFiguresRequest(since_ms=since_ms)
            with pytest.raises(grpc.RpcError) as refused:
                control.GetDeliveryFigures(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=10)
            error: Any = refused.value
            assert error.code() is grpc.StatusCode.OUT_OF_RANGE, error.details()
            assert "since_ms" in error.details()
        empty = control.GetDeliveryFigures(
            control_pb2.DeliveryFiguresRequest(), metadata=wire.bearer(CLIENT_TOKEN), timeout=10
        )
        assert empty.deployments == 0 and not empty.HasField("change_failure_rate")
    finally:
        channel.close()
