"""Wrong tokens get clear errors and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import Cluster, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store


def test_agent_with_wrong_join_token_stops_with_clear_error(cluster: Cluster) -> None:
    agent = cluster.start_agent("intruder", token="not-the-token", wait=False)
    code = agent.popen.wait(timeout=30)
    assert code != 0
    assert "refused this agent: wrong join token" in agent.log()
    assert cluster.json("agents") == []


def test_cli_with_wrong_client_token_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    path = write_pipeline(
        tmp_path,
        "ok.yml",
        "name: p\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'true'}]\n",
    )
    for args in (("run", str(path)), ("builds",), ("agents",), ("show", "1"), ("cancel", "1")):
        result = cluster.cli(*args, token="wrong")
        assert result.returncode == 2, args
        assert b"refused the client token" in result.stderr, args
    assert cluster.json("builds") == []
