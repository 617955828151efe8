"""What a coordinator checks at start: its database file, its port and its data dir (one server
each)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import AGENT_TOKEN, CLI, CLIENT_TOKEN, Cluster

START_TIMEOUT_S = 30


def server(data_dir: Path, listen: str = "127.0.0.1:0") -> subprocess.CompletedProcess[str]:
    """A `conveyor server` expected to refuse to start (it would otherwise run until killed)."""
    command = [*CLI, "server", "--data-dir", str(data_dir), "--listen", listen]
    tokens = ["--agent-token", AGENT_TOKEN, "--client-token", CLIENT_TOKEN]
    return subprocess.run(
        [*command, *tokens], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )


def errors_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if " ERROR " in line]


def test_an_empty_database_file_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    (data_dir / "conveyor.db").write_bytes(b"")
    result = server(data_dir)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"{data_dir / 'conveyor.db'} is empty (0 bytes)" in line
    assert "restore it from a backup" in line
    assert (data_dir / "conveyor.db").stat().st_size == 0
    assert not (data_dir / "server.addr").exists()


def test_a_garbage_database_file_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    garbage = bytes(range(256)) * 16
    (data_dir / "conveyor.db").write_bytes(garbage)
    result = server(data_dir)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"{data_dir / 'conveyor.db'} is not a usable SQLite database" in line
    assert "restore it from a backup" in line
    assert (data_dir / "conveyor.db").read_bytes() == garbage


def test_a_second_server_on_a_data_dir_in_use_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    address = (cluster.data_dir / "server.addr").read_text()
    result = server(cluster.data_dir)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"data dir {cluster.data_dir} is in use by another coordinator" in line
    assert (cluster.data_dir / "server.addr").read_text() == address
    assert cluster.processes[0].popen.poll() is None
    assert cluster.json("agents") == []


def test_a_second_server_on_a_port_in_use_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    result = server(tmp_path / "other", listen=cluster.address)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"cannot listen on {cluster.address}: the address is in use" in line
    # Every call still reaches the one server (with SO_REUSEPORT some went to the second).
    assert cluster.processes[0].popen.poll() is None
    for _ in range(10):
        assert cluster.json("agents") == []
