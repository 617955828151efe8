"""Human output on a terminal: coloured statuses with columns that line up as shown (the
escape codes take no room), and no escape codes at all when piped or with NO_COLOR. The real
`conveyor` command runs on a pseudo-terminal against a real coordinator."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time

import pytest

from tests.harness import CLI, CLIENT_TOKEN, Cluster, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PTY_TIMEOUT_S = 60.0

PIPELINE = """
name: {name}
image: conveyor/busybox
jobs:
  a:
    steps: [{{run: 'echo hi'}}]
  a-much-longer-job-name:
    steps: [{{run: 'exit 3'}}]
"""


def _in_pty(cluster: Cluster, *args: str, no_color: bool = False) -> str:
    """What the command wrote to a terminal (its stdout is the pty's slave side)."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = "1"
    command = [*CLI, *args, "--coordinator", cluster.address, "--token", CLIENT_TOKEN]
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + PTY_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command exited and closed its side
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(PTY_TIMEOUT_S) == 0, process.stderr.read() if process.stderr else ""
    finally:
        os.close(master)
        if process.stderr:
            process.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def _table(text: str, first_header: str) -> tuple[str, list[str]]:
    """The header line starting with `first_header` and the lines below it."""
    lines = ANSI.sub("", text).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header + " "))
    return lines[start], lines[start + 1 :]


def _assert_column(header: str, rows: list[str], column: str, values: dict[str, str]) -> None:
    """Each row whose first cell is a key of `values` holds that value where `column` starts."""
    at = header.index(column)
    seen = set()
    for row in rows:
        key = row.split(" ", 1)[0]
        if key in values:
            assert row[at:].startswith(values[key] + " ") or row[at:] == values[key], (
                column,
                header,
                row,
            )
            assert row[at - 1] == " ", (column, header, row)
            seen.add(key)
    assert seen == set(values), (seen, header, rows)


@pytest.fixture(scope="module")
def builds(shared_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """Two finished builds, each with a succeeded and a failed job."""
    root = tmp_path_factory.mktemp("pipelines")
    ids = []
    for name in ("short", "a-rather-longer-build-name"):
        path = write_pipeline(root, f"{name}.yml", PIPELINE.format(name=name))
        result = shared_cluster.cli("run", str(path), "--json")
        assert result.returncode == 1, result.stderr.decode()
        ids.append(int(json.loads(result.stdout)["id"]))
    return ids


def test_show_on_a_terminal_is_coloured_and_aligned(
    shared_cluster: Cluster, builds: list[int]
) -> None:
    raw = _in_pty(shared_cluster, "show", str(builds[1]))
    assert re.search(r"\x1b\[[0-9;]*32m(succeeded)\x1b\[0m", raw), repr(raw)
    assert re.search(r"\x1b\[[0-9;]*31m(failed)\x1b\[0m", raw), repr(raw)
    header, rows = _table(raw, "JOB")
    statuses = {"a": "succeeded", "a-much-longer-job-name": "failed"}
    _assert_column(header, rows, "STATUS", statuses)
    _assert_column(header, rows, "ATTEMPTS", {"a": "1", "a-much-longer-job-name": "1"})
    _assert_column(header, rows, "EXIT", {"a": "0", "a-much-longer-job-name": "3"})


def test_builds_and_agents_on_a_terminal_line_up(
    shared_cluster: Cluster, builds: list[int]
) -> None:
    raw = _in_pty(shared_cluster, "builds")
    assert "\x1b[" in raw, repr(raw)
    header, rows = _table(raw, "ID")
    ids = [str(b) for b in builds]
    names = dict(zip(ids, ["short", "a-rather-longer-build-name"], strict=True))
    _assert_column(header, rows, "NAME", names)
    _assert_column(header, rows, "STATUS", dict.fromkeys(ids, "failed"))
    _assert_column(header, rows, "JOBS", dict.fromkeys(ids, "2"))

    raw = _in_pty(shared_cluster, "agents")
    assert re.search(r"\x1b\[[0-9;]*32m(online)\x1b\[0m", raw), repr(raw)
    header, rows = _table(raw, "NAME")
    agents = shared_cluster.json("agents")
    _assert_column(header, rows, "STATE", {a["name"]: "online" for a in agents})
    running = {a["name"]: f"{a['running']}/{a['capacity']}" for a in agents}
    _assert_column(header, rows, "RUNNING", running)


def test_no_escape_codes_when_piped_or_with_no_color(
    shared_cluster: Cluster, builds: list[int]
) -> None:
    for args in (["show", str(builds[0])], ["builds"], ["agents"]):
        piped = shared_cluster.cli(*args)
        assert piped.returncode == 0, piped.stderr.decode()
        assert b"\x1b" not in piped.stdout, (args, piped.stdout)
        on_terminal = _in_pty(shared_cluster, *args, no_color=True)
        assert "\x1b" not in on_terminal, (args, on_terminal)
        assert "STATUS" in on_terminal or "STATE" in on_terminal, on_terminal
    # Without times that move on between two calls, the two are the same text.
    shown = ["show", str(builds[0])]
    assert (
        _in_pty(shared_cluster, *shown, no_color=True) == shared_cluster.cli(*shown).stdout.decode()
    )
