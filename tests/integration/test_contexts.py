"""Contexts and `--data-dir` against a real coordinator: with `--tls auto` and a token it made
itself, a client on its machine finds address, token and CA through `--data-dir`, or through a
context made from those files; `version` names the context. Through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conveyor import PROTOCOL_VERSION, __version__
from tests.harness import CLI, Cluster, wait_for

# The store is not what this exercises: the SQLite pass covers it.
pytestmark = pytest.mark.any_store


class OwnTokenCluster(Cluster):
    """A server that makes and keeps its own client token in its data dir (the default)."""

    def server_argv(self) -> list[str]:
        argv = super().server_argv()
        at = argv.index("--client-token")
        return argv[:at] + argv[at + 2 :]


def _conveyor(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with nothing but its arguments and the test's config (no local server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(HOME=str(home), CONVEYOR_CONFIG=str(home / "config.toml"))
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_data_dir_and_contexts_reach_a_tls_server(tmp_path: Path) -> None:
    cluster = OwnTokenCluster(tmp_path, tls=True)
    cluster.start_server()
    home = tmp_path / "home"
    home.mkdir()
    try:
        data = str(cluster.data_dir)
        found = _conveyor(home, "builds", "--json", "--data-dir", data)
        assert found.returncode == 0, found.stderr
        assert not json.loads(found.stdout)  # reached, trusted, authorised: no builds yet

        # Without it the client has nothing to go on: no local server, no context.
        alone = _conveyor(home, "builds")
        assert alone.returncode == 2 and "no client token" in alone.stderr, alone.stderr

        added = _conveyor(
            home,
            "context",
            "add",
            "farm",
            "--coordinator",
            cluster.address,
            "--token-file",
            str(cluster.data_dir / "client-token"),
            "--ca",
            str(cluster.ca_path),
            "--use",
        )
        assert added.returncode == 0, added.stderr
        config = (home / "config.toml").read_text()
        token = (cluster.data_dir / "client-token").read_text().strip()
        assert token not in config  # the path only, never the token

        doc = json.loads(_conveyor(home, "version", "--json").stdout)
        assert doc["coordinator"] == {
            "address": cluster.address,
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "context": "farm",
        }
        shown = _conveyor(home, "version").stdout.splitlines()
        assert shown[1] == (
            f"coordinator at {cluster.address} (context farm): conveyor {__version__} "
            f"(protocol {PROTOCOL_VERSION})"
        )
        listed = _conveyor(home, "context", "list", "--json")
        assert json.loads(listed.stdout)["current"] == "farm"
    finally:
        cluster.close()


def test_a_data_dir_without_a_server_is_named(tmp_path: Path) -> None:
    result = _conveyor(tmp_path, "builds", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"--data-dir {tmp_path}: no coordinator's files there" in result.stderr


@pytest.mark.parametrize(
    "flags",
    [["--data-dir", "{dir}"], ["--data-dir={dir}"], ["--context", "nowhere"]],
)
def test_connection_flags_before_the_command_are_the_command_s(
    tmp_path: Path, flags: list[str]
) -> None:
    # As `docker --context` or `kubectl --context` take them: before the command's name.
    given = [flag.format(dir=tmp_path) for flag in flags]
    before = _conveyor(tmp_path, *given, "builds", "--limit", "3")
    after = _conveyor(tmp_path, "builds", "--limit", "3", *given)
    assert before.returncode == after.returncode == 2, (before.stderr, after.stderr)
    assert before.stderr == after.stderr
    assert "--data-dir" in before.stderr or "--context names context" in before.stderr


class OwnTokensCluster(OwnTokenCluster):
    """A server that makes and keeps both its tokens in its data dir."""

    def server_argv(self) -> list[str]:
        argv = super().server_argv()
        at = argv.index("--agent-token")
        return argv[:at] + argv[at + 2 :]


def test_an_agent_on_the_server_s_machine_finds_it_by_data_dir(tmp_path: Path) -> None:
    cluster = OwnTokensCluster(tmp_path, tls=True)
    cluster.start_server()
    home = tmp_path / "home"
    home.mkdir()
    data = str(cluster.data_dir)
    try:
        cluster.agent_names.add("host")
        agent = cluster._spawn(
            "agent-host",
            [
                *("agent", "--data-dir", data, "--name", "host", "--executor", "shell"),
                *("--work-dir", str(tmp_path / "agent-host")),
            ],
        )

        def registered() -> bool:
            assert agent.popen.poll() is None, agent.log()
            listed = _conveyor(home, "agents", "--json", "--data-dir", data)
            return any(a["name"] == "host" for a in json.loads(listed.stdout or "[]"))

        wait_for(registered, 60, "the agent to register through --data-dir")
    finally:
        cluster.close()
