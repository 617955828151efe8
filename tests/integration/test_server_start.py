"""What a coordinator checks at start: its database file, its port and its data dir (one server
each), and that it keeps its files private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.harness import AGENT_TOKEN, CLI, CLIENT_TOKEN, Cluster, write_pipeline
from tests.sqlite_damage import damage_table

START_TIMEOUT_S = 30


def server(
    data_dir: Path, listen: str = "127.0.0.1:0", http: str = "127.0.0.1:0"
) -> subprocess.CompletedProcess[str]:
    """A `conveyor server` expected to refuse to start (it would otherwise run until killed)."""
    command = [*CLI, "server", "--data-dir", str(data_dir), "--listen", listen, "--http", http]
    tokens = ["--agent-token", AGENT_TOKEN, "--client-token", CLIENT_TOKEN]
    return subprocess.run(
        [*command, *tokens], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )


def errors_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if " ERROR " in line]


@pytest.mark.sqlite_only  # SQLite's file in the data dir
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


@pytest.mark.sqlite_only  # SQLite's file in the data dir
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


@pytest.mark.any_store  # the data dir's lock is taken before the store is opened
def test_a_second_server_on_a_data_dir_in_use_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    address = (cluster.data_dir / "server.addr").read_text()
    result = server(cluster.data_dir)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"data dir {cluster.data_dir} is in use by another coordinator" in line
    assert (cluster.data_dir / "server.addr").read_text() == address
    assert cluster.processes[0].popen.poll() is None
    assert cluster.json("agents") == []


@pytest.mark.any_store  # the port is taken before the store is opened
def test_a_second_server_on_a_port_in_use_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    result = server(tmp_path / "other", listen=cluster.address)
    assert result.returncode == 2, result.stderr
    (line,) = errors_of(result)
    assert f"cannot listen on {cluster.address}: the address is in use" in line
    assert "Failed to add port" not in result.stderr  # no second, native line from gRPC
    # Every call still reaches the one server (with SO_REUSEPORT some went to the second).
    assert cluster.processes[0].popen.poll() is None
    for _ in range(10):
        assert cluster.json("agents") == []


@pytest.mark.any_store  # the data dir's files (the SQLite file among them on SQLite)
def test_the_data_dir_and_everything_in_it_are_private_after_a_build(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"a-{unique}")
    source = tmp_path / "src"
    source.mkdir()
    (source / "input.txt").write_text("data\n")
    text = "name: private\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: echo hi}]\n"
    path = write_pipeline(tmp_path, "private.yml", text)
    result = cluster.cli("run", str(path), "--source", str(source), "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]
    cluster.wait_build(build_id, lambda d: d["status"] == "succeeded", 60, "the build")

    data_dir = cluster.data_dir
    expected = {"logs", "blobs", "server.lock", "server.addr"}
    if cluster.db_url is None:
        expected |= {"conveyor.db"}
    assert expected <= {p.name for p in data_dir.iterdir()}
    assert any((data_dir / "logs").rglob("*.log"))
    assert any(p.is_file() for p in (data_dir / "blobs" / "sha256").rglob("*"))
    modes = {data_dir: stat.S_IMODE(data_dir.stat().st_mode)}
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            entry = Path(root) / name
            modes[entry] = stat.S_IMODE(entry.lstat().st_mode)
    wrong = {
        str(p.relative_to(data_dir.parent)): oct(m)
        for p, m in modes.items()
        if m != (0o700 if p.is_dir() else 0o600)
    }
    assert wrong == {}


@pytest.mark.sqlite_only  # damages SQLite's file on disk
def test_a_database_damaged_while_the_server_runs_is_named_in_one_line(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    assert cluster.db_url is None, "a SQLite-only test: run it with CONVEYOR_TEST_DB=sqlite"
    cluster.start_agent(f"a-{unique}")
    text = "name: hurt\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: echo hi}]\n"
    path = write_pipeline(tmp_path, "hurt.yml", text)
    result = cluster.cli("run", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id = json.loads(result.stdout)["id"]

    database = cluster.data_dir / "conveyor.db"
    damage_table(database, "jobs")
    shown = cluster.cli("show", str(build_id))
    assert shown.returncode == 1, shown.stdout.decode()
    (line,) = shown.stderr.decode().strip().splitlines()
    assert str(database) in line and "is damaged" in line, line
    assert "restore the database from a backup" in line
    assert cluster.processes[0].popen.poll() is None
    log = cluster.processes[0].log()
    assert "Traceback" not in log and "is damaged" in log
