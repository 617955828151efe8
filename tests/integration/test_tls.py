"""TLS on the gRPC listener: real coordinator, agent and CLI processes, `--tls auto` and the
operator's own certificate; plaintext clients and certificates from another CA are refused."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from conveyor import wire
from conveyor.v1 import control_pb2, control_pb2_grpc
from coordinator.tls import ensure_auto
from tests.harness import AGENT_TOKEN, CLI, CLIENT_TOKEN, Cluster, wait_for, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

ECHO = "name: p\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'echo over tls'}]\n"
HANDOFF = """
name: handoff
image: conveyor/busybox
jobs:
  make:
    steps: [{run: "mkdir -p out && echo sealed > out/box.txt"}]
    artifacts: [out/box.txt]
  open:
    needs: [make]
    steps: [{run: "cat out/box.txt"}]
"""


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[Cluster]:
    created = Cluster(tmp_path, executor="fake", tls=True)
    created.start_server()
    try:
        yield created
    finally:
        created.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # As a person runs it: without a GRPC_VERBOSITY this test process may have set.
        env={**{k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}, **(env or {})},
    )


@pytest.mark.docker
def test_a_build_runs_end_to_end_over_tls(tmp_path: Path, docker_ready: None) -> None:
    cluster = Cluster(tmp_path, executor="docker", tls=True)
    try:
        cluster.start_server()
        cluster.start_agent("secure")
        pipeline = write_pipeline(tmp_path, "handoff.yml", HANDOFF)
        result = cluster.cli("run", str(pipeline), "--json")
        assert result.returncode == 0, result.stderr.decode()
        doc = json.loads(result.stdout)
        assert doc["status"] == "succeeded", doc
        # Logs, artifacts (the agent's second, bulk connection) and downloads all went over TLS.
        assert cluster.cli("logs", str(doc["id"]), "open").stdout == b"sealed\n"
        download = cluster.cli("artifacts", str(doc["id"]), "--download", str(tmp_path / "dl"))
        assert download.returncode == 0, download.stderr.decode()
        assert (tmp_path / "dl" / "make" / "out" / "box.txt").read_text() == "sealed\n"
    finally:
        cluster.close()


def test_a_plaintext_client_is_refused_by_a_tls_server(tls_cluster: Cluster) -> None:
    channel = wire.insecure_channel(tls_cluster.address)
    stub = control_pb2_grpc.ControlServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListBuilds(
            control_pb2.ListBuildsRequest(), metadata=wire.bearer(CLIENT_TOKEN), timeout=20
        )
    channel.close()
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    # The CLI without a CA: a connection problem (exit 3), and what to do about it.
    result = _cli("builds", "--coordinator", tls_cluster.address, "--token", CLIENT_TOKEN)
    assert result.returncode == 3, result.stderr
    assert "if it serves TLS, pass --ca FILE" in result.stderr
    # With the CA the same call works, by address or by the name `localhost`.
    port = tls_cluster.address.rpartition(":")[2]
    for address in (tls_cluster.address, f"localhost:{port}"):
        ok = _cli("builds", "--coordinator", address, "--token", CLIENT_TOKEN,
                  "--ca", str(tls_cluster.ca_path), "--json")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == []


def test_a_certificate_from_another_ca_is_refused_with_words(
    tls_cluster: Cluster, tmp_path: Path
) -> None:
    other = ensure_auto(tmp_path / "elsewhere", "127.0.0.1:0").ca_path
    assert other is not None
    expected = f"the server's certificate is not signed by the CA in {other}"
    connection = ["--coordinator", tls_cluster.address, "--token", CLIENT_TOKEN]
    by_flag = _cli("builds", *connection, "--ca", str(other))
    by_env = _cli("builds", *connection, env={"CONVEYOR_CA": str(other)})
    for result in (by_flag, by_env):
        assert result.returncode == 3, result.stderr
        # One line that says it, not gRPC's native account of the handshake above it.
        assert result.stderr.splitlines() == [f"conveyor: the coordinator at "
                                              f"{tls_cluster.address}: {expected}"]  # fmt: skip
    # An agent stops at once with the same words instead of retrying forever.
    agent = tls_cluster.start_agent("doubter", wait=False, extra=("--ca", str(other)))
    assert agent.popen.wait(timeout=60) == 2
    assert expected in agent.log()
    assert tls_cluster.json("agents") == []


def test_the_operators_certificate_and_key(tmp_path: Path) -> None:
    made = ensure_auto(tmp_path / "pki", "127.0.0.1:0")
    assert made.ca_path is not None
    files = ("--tls-cert", str(made.cert_path), "--tls-key", str(made.key_path))
    cluster = Cluster(tmp_path, executor="fake", server_args=files)
    try:
        cluster.start_server()
        connection = ["--coordinator", cluster.address, "--token", CLIENT_TOKEN]
        ok = _cli("agents", *connection, "--ca", str(made.ca_path), "--json")
        assert ok.returncode == 0, ok.stderr
        assert _cli("agents", *connection).returncode == 3
    finally:
        cluster.close()
    for args, words in (
        (("--tls-cert", str(made.cert_path)), "--tls-cert and --tls-key go together"),
        (("--tls", "auto", *files), "--tls auto makes its own certificate"),
        (
            ("--tls-cert", str(made.cert_path), "--tls-key", str(made.ca_path)),
            "not an unencrypted PEM private key",
        ),
    ):
        started = _cli(
            "server", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "bad"), *args
        )
        assert started.returncode == 2, started.stderr
        assert words in started.stderr


def test_tls_auto_in_the_default_data_dir_needs_no_flags_on_the_same_machine(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    # The harness's data dir is then the default one, ~/.conveyor/server.
    cluster = Cluster(home / ".conveyor", executor="fake", tls=True, env={"HOME": str(home)})
    # The harness gives the server its tokens; where a default server keeps them, the clients
    # on its machine find them.
    cluster.data_dir.mkdir(parents=True)
    (cluster.data_dir / "agent-token").write_text(AGENT_TOKEN + "\n")
    (cluster.data_dir / "client-token").write_text(CLIENT_TOKEN + "\n")
    try:
        server = cluster.start_server()
        tls_dir = home / ".conveyor" / "server" / "tls"
        ca_pem = (tls_dir / "ca.pem").read_bytes()
        for key in ("ca-key.pem", "server-key.pem"):
            assert stat.S_IMODE((tls_dir / key).stat().st_mode) == 0o600
        # No address, token or CA: the agent and the CLI find the local server's.
        agent = cluster._spawn("agent-local", ["agent", "--name", "local", "--executor", "fake"])
        pipeline = write_pipeline(tmp_path, "echo.yml", ECHO)
        env = {"HOME": str(home)}
        first = _cli("run", str(pipeline), "--json", env=env)
        assert first.returncode == 0, first.stderr + agent.log()
        assert json.loads(first.stdout)["status"] == "succeeded"

        # A restart keeps the CA: the agent, which read it before, still trusts the server.
        server.stop()
        cluster.start_server()
        assert (tls_dir / "ca.pem").read_bytes() == ca_pem
        wait_for(
            lambda: any(a["state"] == "online" for a in cluster.json("agents")),
            60,
            "the agent to come back after the restart",
        )
        second = _cli("run", str(pipeline), "--json", env=env)
        assert second.returncode == 0, second.stderr + agent.log()
        assert json.loads(second.stdout)["status"] == "succeeded"
        assert "not signed by the CA" not in agent.log()
    finally:
        cluster.close()


def test_the_http_listener_serves_tls_with_the_same_certificate(tls_cluster: Cluster) -> None:
    base = f"https://{tls_cluster.http_address}"
    trusted = ssl.create_default_context(cafile=str(tls_cluster.ca_path))
    with httpx.Client(verify=trusted, timeout=20) as client:
        assert client.get(f"{base}/healthz").status_code == 200
        listed = client.get(
            f"{base}/api/v1/builds", headers={"Authorization": f"Bearer {CLIENT_TOKEN}"}
        )
        assert (listed.status_code, listed.json()) == (200, [])
    # Plaintext HTTP to the TLS port is not served, and a client without the CA refuses it.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{tls_cluster.http_address}/healthz", timeout=20).raise_for_status()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{base}/healthz", timeout=20)
