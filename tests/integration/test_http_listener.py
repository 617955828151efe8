"""The coordinator's HTTP listener beside gRPC: metrics that follow the builds, health checks on
both ports, `--http off`, and a port in use."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import AGENT_TOKEN, CLI, CLIENT_TOKEN, Cluster, wait_for, write_pipeline

TWO_JOBS = """
name: two
image: conveyor/busybox
jobs:
  a:
    steps: [{run: "echo alpha"}]
  b:
    needs: [a]
    steps: [{run: "echo beta"}]
"""
START_TIMEOUT_S = 30


def scrape(cluster: Cluster) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = httpx.get(f"http://{cluster.http_address}/metrics", timeout=30.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("conveyor_"), family.name
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_follow_the_builds_that_run(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_agent("m1")
    before = scrape(cluster)
    assert value(before, "conveyor_agents", state="online") == 1
    path = write_pipeline(tmp_path, "two.yml", TWO_JOBS)
    for _ in range(2):
        result = cluster.cli("run", str(path), "--json")
        assert result.returncode == 0, result.stderr.decode()

    def grown() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        now = scrape(cluster)
        jobs = value(now, "conveyor_jobs_total", status="succeeded")
        return now if jobs == value(before, "conveyor_jobs_total", status="succeeded") + 4 else None

    after = wait_for(grown, START_TIMEOUT_S, "the jobs to be counted", every_s=0.5)
    succeeded = ("conveyor_builds_total", (("status", "succeeded"),))
    assert after[succeeded] == before.get(succeeded, 0.0) + 2
    assert value(after, "conveyor_attempts_total", outcome="succeeded") == 4
    assert value(after, "conveyor_job_duration_seconds_count", outcome="succeeded") == 4
    # "alpha\n" and "beta\n", twice, at least (the fake executor may add its own lines).
    assert value(after, "conveyor_log_received_bytes_total") >= 2 * len("alpha\nbeta\n")
    assert value(after, "conveyor_claim_seconds_count") >= 4
    assert value(after, "conveyor_queue_wait_seconds_count") == 4
    assert value(after, "conveyor_jobs_current", state="queued") == 0
    assert value(after, "conveyor_lease_expiries_total") == 0
    assert ("conveyor_artifact_stored_bytes", ()) in after


@pytest.mark.any_store  # the listeners, not the store
def test_health_on_both_ports(cluster: Cluster) -> None:
    base = f"http://{cluster.http_address}"
    assert httpx.get(f"{base}/healthz", timeout=30.0).json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz", timeout=30.0).json() == {"status": "ready"}
    with grpc.insecure_channel(cluster.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "conveyor.v1.ControlService", "conveyor.v1.AgentService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        try:
            stub.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=30)
            raise AssertionError("an unknown service was reported")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.any_store  # the listeners, not the store
def test_http_off_serves_grpc_alone(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, server_args=("--http", "off"))
    cluster.start_server()
    try:
        assert cluster.http_address == ""
        assert not (cluster.data_dir / "http.addr").exists()
        assert cluster.json("builds") == []
    finally:
        cluster.close()


@pytest.mark.any_store  # the port is taken before the store is opened
def test_an_http_port_in_use_is_refused_at_start(cluster: Cluster, tmp_path: Path) -> None:
    other = tmp_path / "other"
    command = [*CLI, "server", "--data-dir", str(other), "--listen", "127.0.0.1:0"]
    command += ["--http", cluster.http_address, "--agent-token", AGENT_TOKEN]
    command += ["--client-token", CLIENT_TOKEN]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if " ERROR " in line]
    assert f"cannot listen on {cluster.http_address} (--http)" in line
    assert "pass another --http" in line
    # Neither listener was left announced, and the first server still answers.
    assert not (other / "server.addr").exists() and not (other / "http.addr").exists()
    assert httpx.get(f"http://{cluster.http_address}/healthz", timeout=30.0).status_code == 200
    assert json.loads(cluster.cli("builds", "--json").stdout) == []


@pytest.mark.any_store  # the agent's own listener
def test_an_agent_serves_its_own_metrics(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_agent("m2", extra=("--metrics", "127.0.0.1:0"))
    addr_file = cluster.root / "agent-m2" / "metrics.addr"
    wait_for(addr_file.exists, START_TIMEOUT_S, "the agent's metrics address")
    url = f"http://{addr_file.read_text().strip()}/metrics"
    result = cluster.cli("run", str(write_pipeline(tmp_path, "two.yml", TWO_JOBS)), "--json")
    assert result.returncode == 0, result.stderr.decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(httpx.get(url, timeout=30.0).text)
        for sample in family.samples
    }
    assert samples[("conveyor_agent_steps_total", (("outcome", "succeeded"),))] == 2
    assert samples[("conveyor_agent_log_shipped_bytes_total", ())] >= len("alpha\nbeta\n")
    assert ("conveyor_agent_spool_bytes", ()) in samples
