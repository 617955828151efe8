"""`conveyor exec`: a pipeline run on this machine with no coordinator, through the agent's
executors, with `run`'s output and exit codes; real shell processes and real Docker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness import CLI, job, write_pipeline
from tests.terminal_screen import Terminal

# No coordinator is started or reached: the store is not involved.
pytestmark = pytest.mark.any_store

# `test` comes first in the file but needs `build`: the DAG, not the file, orders them.
TWO_JOBS = """
name: shop
jobs:
  test:
    needs: [build]
    labels: {executor: shell}
    steps:
      - run: cat scoop.txt && echo "flavour $FLAVOUR"; cat source.txt
  build:
    labels: {executor: shell}
    steps:
      - name: make
        run: |
          cat source.txt
          echo pumpkin > scoop.txt
    artifacts: [scoop.txt]
"""

FAILING = """
name: broken
jobs:
  first:
    steps:
      - run: echo before; exit 3
      - run: echo never
  after:
    needs: [first]
    steps: [{run: echo never}]
"""

THREE_JOBS = """
name: three
jobs:
  a:
    steps: [{run: echo a-ran}]
  b:
    needs: [a]
    steps: [{run: echo b-ran}]
  c:
    steps: [{run: echo c-ran}]
"""


def _exec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # An address nothing listens on: any call to a coordinator would fail.
    return subprocess.run(
        [*CLI, "exec", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
        env={"CONVEYOR_ADDR": "127.0.0.1:1", "PATH": "/usr/bin:/bin", "HOME": str(cwd or "/")},
    )


def _doc(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_two_jobs_pass_an_artifact_on_the_shell_executor(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "source.txt").write_text("from the source dir\n")
    path = write_pipeline(tmp_path, "shop.yml", TWO_JOBS)
    args = (str(path), "--executor", "shell", "--source", str(source), "--env", "FLAVOUR=mint")
    done = _exec(*args)
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    # The log lines `run` prints, job/step-prefixed, in DAG order; then the final table.
    logs = [line for line in lines if " | " in line]
    assert logs == [
        "build/make | from the source dir",
        "test/step-1 | pumpkin",
        "test/step-1 | flavour mint",
        "test/step-1 | from the source dir",
    ]
    assert any(line.startswith("JOB") and "STATUS" in line for line in lines)
    doc = _doc(_exec(*args, "--json"))
    assert doc["status"] == "succeeded"
    assert [(j["name"], j["status"]) for j in doc["jobs"]] == [
        ("test", "succeeded"),
        ("build", "succeeded"),
    ]


def test_a_failing_step_fails_the_build_with_exit_1(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "broken.yml", FAILING)
    done = _exec(str(path), "--executor", "shell", "--json")
    assert done.returncode == 1, done.stderr
    # The agent's and its watchdog's own accounts stay out of exec's output (`-v` shows them).
    assert done.stderr == ""
    doc = _doc(done)
    first, after = job(doc, "first"), job(doc, "after")
    assert (doc["status"], first["status"], first["exit_code"]) == ("failed", "failed", 3)
    assert [s["status"] for s in first["steps"]] == ["failed", "skipped"]
    assert (after["status"], after["reason"]) == ("skipped", "dependency_failed")


def test_an_invalid_file_exits_2_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"name: bad\njobs:\n  ok:\n    steps: [{{run: touch {marker}}}]\n  typo:\n    step: []\n"
    path = write_pipeline(tmp_path, "bad.yml", text)
    done = _exec(str(path), "--executor", "shell")
    assert done.returncode == 2
    assert f"{path}:6:5: jobs.typo.step: unknown key 'step'" in done.stderr
    assert done.stdout == ""
    assert not marker.exists()


def test_job_runs_that_job_and_what_it_needs_only(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "three.yml", THREE_JOBS)
    done = _exec(str(path), "--executor", "shell", "--job", "b")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "a/step-1 | a-ran" in done.stdout and "b/step-1 | b-ran" in done.stdout
    assert "c-ran" not in done.stdout
    unknown = _exec(str(path), "--executor", "shell", "--job", "bb")
    assert unknown.returncode == 2
    assert "--job 'bb': no such job in pipeline 'three' (did you mean 'b'?)" in unknown.stderr


def test_gates_and_secrets_are_refused_up_front_unless_given(tmp_path: Path) -> None:
    text = (
        "name: gated\njobs:\n  gate:\n    approval: {prompt: Ship it}\n"
        "  ship:\n    needs: [gate]\n    secrets: [TOKEN]\n"
        '    steps: [{run: echo "token $TOKEN"}]\n'
    )
    path = write_pipeline(tmp_path, "gated.yml", text)
    gated = _exec(str(path), "--executor", "shell")
    assert gated.returncode == 2 and "'gate' is an approval gate" in gated.stderr
    secretless = _exec(str(path), "--executor", "shell", "--approve-all")
    assert secretless.returncode == 2 and "--secret TOKEN=VALUE" in secretless.stderr
    done = _exec(
        str(path), "--executor", "shell", "--approve-all", "--secret", "TOKEN=s3cr3t-v4lue"
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "ship/step-1 | token " in done.stdout and "s3cr3t-v4lue" not in done.stdout


@pytest.mark.docker
def test_docker_runs_an_imageless_pipeline_passing_an_artifact(
    tmp_path: Path, docker_ready: None
) -> None:
    text = (
        "name: boxes\njobs:\n  make:\n    steps: [{run: 'echo boxed > out.txt'}]\n"
        "    artifacts: [out.txt]\n  use:\n    needs: [make]\n"
        "    steps: [{run: 'cat out.txt'}, {run: 'exit 4'}]\n"
    )
    path = write_pipeline(tmp_path, "boxes.yml", text)
    done = _exec(str(path))
    assert done.returncode == 1, done.stderr + done.stdout
    assert "use/step-1 | boxed" in done.stdout.splitlines()
    assert (
        "make/step-1 | conveyor: no image named; using this agent's default conveyor/busybox"
        in (done.stdout)
    )
    assert "use/step-2: failed (exit 4)" in done.stdout
    # Nothing of it outlives it: not its steps' containers, nor the networks an agent keeps
    # ready for its next attempts (no later exec has its name to remove them).
    agent = re.search(r" (exec-\d+) ", done.stdout)
    assert agent is not None, done.stdout
    engine = docker.from_env()
    try:
        mine: dict[str, str | list[str] | bool] = {"label": f"conveyor.agent={agent.group(1)}"}
        assert engine.containers.list(all=True, filters=mine) == []
        assert engine.networks.list(filters=mine) == []
    finally:
        engine.close()


def test_ctrl_c_stops_the_running_step_and_exits_130(tmp_path: Path) -> None:
    text = (
        "name: s\njobs:\n  slow:\n    steps: [{run: 'echo start; sleep 300'}, {run: echo never}]\n"
        "  after:\n    needs: [slow]\n    steps: [{run: echo never}]\n"
    )
    path = write_pipeline(tmp_path, "slow.yml", text)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    argv = [*CLI, "exec", str(path), "--executor", "shell"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the step has started once its first line is shown
            seen.append(line)
            if line == "slow/step-1 | start\n":
                break
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(seen) + rest
    assert "never" not in rest
    table = {line.split()[0]: line.split()[1] for line in rest.splitlines()[-2:]}
    assert table == {"slow": "canceled", "after": "canceled"}


HELD = """
name: held
jobs:
  hold:
    steps:
      - run: echo hold-started; while [ ! -e '{gate}' ]; do sleep 0.1; done; echo hold-done
"""


@pytest.mark.parametrize("colour", ["never", "always"])
def test_on_a_terminal_exec_shows_run_s_live_view_and_takes_color(
    tmp_path: Path, colour: str
) -> None:
    gate = tmp_path / "gate"
    path = write_pipeline(tmp_path, "held.yml", HELD.format(gate=gate))
    command = [*CLI, "exec", str(path), "--executor", "shell", "--color", colour]
    term = Terminal(command, {k: v for k, v in os.environ.items() if k != "NO_COLOR"})
    try:
        term.wait_until(
            lambda t: (
                any(line.startswith("  hold ") for line in t.text().splitlines())
                and "hold-started" in t.text()
            ),
            "the jobs' summary below the step's first line",
        )
        gate.touch()
        code, errors = term.finish()
    finally:
        term.close()
    assert code == 0, (code, errors, term.text())
    assert "hold-done" in term.text(), term.text()
    assert (re.search(rb"\x1b\[[0-9;]*m", term.raw) is not None) is (colour == "always")


@pytest.mark.parametrize("command", ["exec", "run"])
def test_a_source_that_is_no_directory_is_named_once(tmp_path: Path, command: str) -> None:
    path = write_pipeline(tmp_path, "held.yml", HELD.format(gate=tmp_path / "gate"))
    not_a_dir = tmp_path / "file"
    not_a_dir.touch()
    # `run` checks its input before it calls the coordinator: none needs to answer.
    nowhere = ["--coordinator", "127.0.0.1:9", "--token", "t"] if command == "run" else []
    done = subprocess.run(
        [*CLI, command, str(path), "--source", str(not_a_dir), *nowhere],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"conveyor: --source {not_a_dir}: not a directory\n"
