"""Tokens from files: the server, the agent and the CLI take them with `--*-token-file`, so no
token need appear on a command line (which every user of the machine can read)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness import AGENT_TOKEN, CLI, CLIENT_TOKEN, START_TIMEOUT_S, Cluster, write_pipeline

pytestmark = pytest.mark.any_store

PIPELINE = "name: p\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'echo ok'}]\n"


def _command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_server_agent_and_cli_take_their_tokens_from_files(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, executor="fake", token_files=True)
    try:
        server = cluster.start_server()
        agent = cluster.start_agent("filed")
        result = cluster.cli("run", str(write_pipeline(tmp_path, "p.yml", PIPELINE)), "--json")
        assert result.returncode == 0, result.stderr.decode()
        assert json.loads(result.stdout)["status"] == "succeeded"
        for process in (server, agent):
            line = _command_line(process.popen.pid)
            assert b"-token-file" in line
            assert AGENT_TOKEN.encode() not in line and CLIENT_TOKEN.encode() not in line
        # The file's token is the one checked: another file is refused.
        wrong_file = tmp_path / "wrong"
        wrong_file.write_text("not-the-token\n")
        wrong = subprocess.run(
            [*CLI, "builds", "--coordinator", cluster.address, "--token-file", str(wrong_file)],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert wrong.returncode == 2
        assert b"refused the client token" in wrong.stderr
    finally:
        cluster.close()


def test_unreadable_or_empty_token_files_are_usage_errors(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.write_text("\n")
    cases = [
        (["builds", "--coordinator", "127.0.0.1:1"], f"--token-file {missing}: cannot read it"),
        (["agent", "--coordinator", "127.0.0.1:1", "--work-dir", str(tmp_path / "w"),
          "--executor", "fake"], f"--token-file {empty}: the file is empty"),
        (["server", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "s")],
         f"--client-token-file {empty}: the file is empty"),
    ]  # fmt: skip
    for args, expected in cases:
        flag, path = expected.split(":")[0].split(" ")
        result = subprocess.run(
            [*CLI, *args, flag, path],
            capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
        )  # fmt: skip
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr, result.stderr


def test_a_token_and_a_token_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("x\n")
    result = subprocess.run(
        [*CLI, "builds", "--token", "x", "--token-file", str(tmp_path / "t")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
