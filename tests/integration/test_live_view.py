"""The live view of a followed build, as a terminal shows it: the real `conveyor` command on a
pseudo-terminal against a real coordinator and a shell agent, its screen rendered by pyte.

Steps that must still be running when the screen is read wait for a file the test creates
once it has seen what it looks for, so no assertion races the build.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CLI, CLIENT_TOKEN, Cluster, wait_for, write_pipeline
from tests.terminal_screen import Terminal

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

SGR = re.compile(rb"\x1b\[[0-9;]*m")
# A log line's prefix as the live view colours it: the code, then "job/step | ".
PREFIX = re.compile(rb"\x1b\[([0-9;]+)m([a-z]+)/[a-z0-9-]+ \| ")
WAIT = "while [ ! -e '{gate}' ]; do sleep 0.1; done"

PIPELINE = """
name: live
image: any
jobs:
  fast:
    labels: {{executor: shell}}
    steps:
      - name: bar
        run: printf 'loading 10%%\\rloading 55%%\\rloading 100%%\\n'
  flaky:
    labels: {{executor: shell}}
    retry: {{max: 1, when: [exit_code]}}
    steps:
      - name: count
        run: |
          n=$(cat '{counter}' 2>/dev/null || echo 0)
          echo $((n + 1)) > '{counter}'
          echo "flaky-attempt-$((n + 1))"
          test "$n" -ge 1
  slow:
    labels: {{executor: shell}}
    steps:
      - name: hold
        run: echo slow-started; {wait}; echo slow-done
"""

FOLDED = """
name: folded
image: any
jobs:
  quiet:
    labels: {executor: shell}
    steps:
      - name: chatty
        run: for i in $(seq 1 300); do echo "quiet-line-$i"; done
  loud:
    labels: {executor: shell}
    needs: [quiet]
    steps:
      - name: broken
        run: for i in $(seq 1 250); do echo "loud-line-$i"; done; exit 4
"""

GATED = """
name: gated
image: any
jobs:
  held:
    labels: {{executor: shell}}
    steps:
      - name: hold
        run: echo held-started; {wait}; echo held-done
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("live") / "cluster", executor="shell")
    created.root.mkdir()
    created.start_server()
    created.start_agent("host", concurrency=3)
    try:
        yield created
    finally:
        created.close()


def _terminal(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> Terminal:
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    command = [*CLI, *args, "--coordinator", cluster.address, "--token", CLIENT_TOKEN]
    return Terminal(command, {**base, **(env or {})})


def _summary_row(text: str, job: str) -> str | None:
    return next((line for line in text.splitlines() if line.startswith(f"  {job} ")), None)


def _state(text: str, job: str) -> str:
    row = _summary_row(text, job)
    return row.split()[1] if row else ""


def test_the_summary_shows_jobs_live_with_coloured_prefixes(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    text = PIPELINE.format(counter=tmp_path / "counter", wait=WAIT.format(gate=gate))
    term = _terminal(cluster, "run", str(write_pipeline(tmp_path, "live.yml", text)))
    try:
        # Mid-build: the slow job runs while the others ended, all in the summary under the logs.
        term.wait_until(
            lambda t: (
                _state(t.text(), "slow") == "running"
                and "step 1/1 hold" in (_summary_row(t.text(), "slow") or "")
                and _state(t.text(), "flaky") == "succeeded"
                and _state(t.text(), "fast") == "succeeded"
            ),
            "the summary with slow running and the others ended",
        )
        screen = term.text()
        assert re.search(r"^build \d+ live: running  2/3 jobs done", screen, re.M), screen
        for job, state in (("fast", "succeeded"), ("flaky", "succeeded"), ("slow", "running")):
            row = _summary_row(screen, job)
            assert row is not None and row.split()[1] == state, (job, screen)
        assert "attempt 2" in (_summary_row(screen, "flaky") or ""), screen
        assert "step 1/1 hold on host" in (_summary_row(screen, "slow") or ""), screen
        # The summary is below the log lines: nothing but its rows after its first line.
        lines = screen.rstrip().splitlines()
        head = next(i for i, line in enumerate(lines) if " live: running" in line)
        assert all(line.startswith("  ") for line in lines[head + 1 :]), screen
        gate.touch()
        code, errors = term.finish()
    finally:
        term.close()
    assert code == 0 and not errors, errors
    screen = term.text()
    # The retry is announced with the reason the coordinator gave for the first attempt's end.
    assert re.search(r"\d\d:\d\d:\d\d flaky: attempt 2 after exit code 1$", screen, re.M), screen
    # A carriage-return progress bar shows its last state behind an intact prefix.
    assert "fast/bar | loading 100%" in screen.splitlines(), screen
    assert b"loading 10%" not in term.raw and b"loading 55%" not in term.raw
    # Each job's prefix carries one colour of its own.
    codes: dict[bytes, set[bytes]] = {}
    for found in PREFIX.finditer(term.raw):
        codes.setdefault(found.group(2), set()).add(found.group(1))
    assert set(codes) == {b"fast", b"flaky", b"slow"}, term.raw
    assert all(len(seen) == 1 for seen in codes.values()), codes
    assert len({next(iter(seen)) for seen in codes.values()}) == 3, codes
    # At the end the summary gives way to the final table.
    assert re.search(r"^build \d+ \(live\): succeeded$", screen, re.M), screen
    assert not re.search(r"^build \d+ live: ", screen, re.M), screen


@pytest.mark.parametrize(
    ("args", "env"),
    [((), {"NO_COLOR": "1"}), (("--color", "never"), {})],
    ids=["NO_COLOR", "never"],
)
def test_no_colour_codes_with_no_color_or_never(
    cluster: Cluster, tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    path = write_pipeline(tmp_path, "folded.yml", FOLDED)
    term = _terminal(cluster, "run", str(path), "--logs", "none", *args, env=env)
    try:
        code, errors = term.finish()
    finally:
        term.close()
    assert code == 1 and not errors, errors
    assert SGR.search(term.raw) is None, term.raw
    # Still the live view (a redrawn summary), only without colours.
    assert re.search(r"^build \d+ \(folded\): failed$", term.text(), re.M), term.text()
    assert "loud/broken: failed (exit 4)" in term.text(), term.text()


def test_logs_failed_folds_a_succeeded_step_and_shows_a_failed_one(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = write_pipeline(tmp_path, "folded.yml", FOLDED)
    term = _terminal(cluster, "run", str(path), "--logs", "failed")
    try:
        code, errors = term.finish()
    finally:
        term.close()
    assert code == 1 and not errors, errors
    raw = SGR.sub(b"", term.raw)
    assert b"quiet-line-" not in raw, raw
    assert b"quiet/chatty | \xe2\x80\xa6 300 lines" in raw, raw
    # The failed step's lines, the last 200 of its 250, with the dropped ones counted.
    assert b"loud/broken | \xe2\x80\xa6 50 earlier lines not kept" in raw, raw
    assert b"loud-line-50\r\n" not in raw and b"loud/broken | loud-line-51\r\n" in raw, raw
    assert b"loud/broken | loud-line-250\r\n" in raw, raw


def test_logs_applies_to_plain_lines_and_color_always_colours_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    path = str(write_pipeline(tmp_path, "folded.yml", FOLDED))
    plain = cluster.cli("run", path, "--logs", "failed")
    out = plain.stdout
    assert plain.returncode == 1, plain.stderr.decode()
    assert b"\x1b" not in out, out
    assert b"quiet-line-" not in out and "quiet/chatty | … 300 lines\n".encode() in out, out
    assert b"loud/broken | loud-line-250\n" in out, out
    coloured = cluster.cli("run", path, "--logs", "all", "--color", "always")
    assert coloured.returncode == 1, coloured.stderr.decode()
    assert re.search(rb"\x1b\[[0-9;]+mquiet/chatty \| \x1b\[0mquiet-line-300\n", coloured.stdout)


def _follower(cluster: Cluster, how: str, path: Path) -> list[str]:
    """The command line that follows the build of `path` as `how` says (submitting it first,
    and for a retry letting its first attempt fail)."""
    if how == "run":
        return ["run", str(path)]
    submitted = cluster.cli("run", str(path), "--no-follow", "--json")
    assert submitted.returncode == 0, submitted.stderr.decode()
    build = str(json.loads(submitted.stdout)["id"])
    if how == "retry":
        cluster.wait_build(int(build), lambda d: d["status"] == "failed", 60, "the first failure")
        return ["retry", build, "--follow"]
    return ["logs", build, "held", "--follow"] if how == "logs" else ["show", build, "--follow"]


@pytest.mark.parametrize("how", ["run", "retry", "logs", "show"])
def test_ctrl_c_stops_following_and_the_build_goes_on(
    cluster: Cluster, tmp_path: Path, how: str
) -> None:
    gate, first = tmp_path / "gate", tmp_path / "first"
    # For the retry, the first attempt fails at once; the second one holds.
    wait = WAIT.format(gate=gate)
    if how == "retry":
        wait = f"[ -e '{first}' ] || {{ touch '{first}'; exit 1; }}; {wait}"
    path = write_pipeline(tmp_path, "gated.yml", GATED.format(wait=wait))
    term = _terminal(cluster, *_follower(cluster, how, path))
    try:
        term.wait_until(
            lambda t: "held-started" in t.text() and (how != "retry" or first.exists()),
            "the step's first line",
        )
        term.interrupt()
        code, errors = term.finish()
    finally:
        term.close()
    found = re.search(r"stopped following build (\d+); it is still running\.", errors)
    assert code == 130 and found is not None, (code, errors)
    build = int(found.group(1))
    assert f"follow again: conveyor show {build} --follow" in errors, errors
    assert f"cancel it:    conveyor cancel {build}" in errors, errors
    assert "Traceback" not in errors, errors
    assert cluster.show(build)["status"] == "running"
    gate.touch()
    done = cluster.wait_build(build, lambda d: d["status"] != "running", 60, "the build's end")
    assert done["status"] == "succeeded", done


def test_ctrl_c_while_connecting_exits_130_without_a_traceback(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "gated.yml", GATED.format(wait="true"))
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    address = f"127.0.0.1:{silent.getsockname()[1]}"
    command = [*CLI, "run", str(path), "--coordinator", address, "--token", CLIENT_TOKEN]
    term = Terminal(command, dict(os.environ))
    try:
        wait_for(lambda: accepted, 60, "the CLI to connect")
        term.interrupt()
        code, errors = term.finish()
    finally:
        term.close()
        silent.close()
        for connection in accepted:
            connection.close()
    assert code == 130, errors
    assert "Traceback" not in errors, errors


def test_show_follow_follows_until_the_end(cluster: Cluster, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    path = write_pipeline(tmp_path, "gated.yml", GATED.format(wait=WAIT.format(gate=gate)))
    submitted = cluster.cli("run", str(path), "--no-follow")
    out = submitted.stdout.decode()
    found = re.search(
        r"build (\d+) submitted; follow it with: conveyor show (\d+) --follow "
        rf"--coordinator {re.escape(cluster.address)}$",
        out,
    )
    assert found is not None and found.group(1) == found.group(2), out
    term = _terminal(cluster, "show", found.group(1), "--follow")
    try:
        term.wait_until(
            lambda t: _state(t.text(), "held") == "running",
            "the held job running in the summary",
        )
        gate.touch()
        code, errors = term.finish()
    finally:
        term.close()
    assert code == 0 and not errors, errors
    assert "held/hold | held-done" in term.text(), term.text()
    assert re.search(r"^build \d+ \(gated\): succeeded$", term.text(), re.M), term.text()


DEPLOYED = """
name: deployed
image: any
jobs:
  held:
    labels: {{executor: shell}}
    environment: staging
    steps:
      - name: hold
        run: echo held-started; {wait}; echo held-done
"""


def test_rollback_follows_in_the_live_view_and_ctrl_c_leaves_it_running(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    path = write_pipeline(tmp_path, "deployed.yml", DEPLOYED.format(wait=WAIT.format(gate=gate)))
    gate.touch()
    for _ in range(2):
        deployed = cluster.cli("run", str(path))
        assert deployed.returncode == 0, deployed.stderr.decode()
    first = cluster.json("deployments", "staging")["deployments"][-1]["id"]
    gate.unlink()
    term = _terminal(cluster, "rollback", "staging", "--to", str(first), "--color", "always")
    try:
        term.wait_until(
            lambda t: "held-started" in t.text() and _state(t.text(), "held") == "running",
            "the rollback's step and its job in the summary",
        )
        term.interrupt()
        code, errors = term.finish()
    finally:
        term.close()
    found = re.search(r"stopped following build (\d+); it is still running\.", errors)
    assert code == 130 and found is not None, (code, errors)
    assert "Traceback" not in errors, errors
    build = int(found.group(1))
    assert cluster.show(build)["status"] == "running"
    gate.touch()
    done = cluster.wait_build(build, lambda d: d["status"] != "running", 60, "the build's end")
    assert done["status"] == "succeeded", done


def test_rollback_no_follow_names_the_command_that_follows(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    path = write_pipeline(tmp_path, "deployed.yml", DEPLOYED.format(wait=WAIT.format(gate=gate)))
    for _ in range(2):
        assert cluster.cli("run", str(path)).returncode == 0
    first = cluster.json("deployments", "staging")["deployments"][-1]["id"]
    queued = cluster.cli("rollback", "staging", "--to", str(first), "--no-follow")
    out = queued.stdout.decode()
    found = re.search(r"^build (\d+) redeploys", out)
    assert queued.returncode == 0 and found is not None, (out, queued.stderr.decode())
    # The hint carries the connection flags of the command line (here the harness's
    # --coordinator), never its token.
    hint = (
        f"follow it with: conveyor show {found.group(1)} --follow --coordinator {cluster.address}"
    )
    assert out.rstrip().endswith(hint), out
    assert CLIENT_TOKEN not in out
