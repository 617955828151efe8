"""What only the fake executor does: no process at all, and a refusal of the sh it cannot read.

The shared contract is in test_contract.py.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.executors.base import AttemptInfo, StepControl, StepEnd, StepRequest
from agent.executors.fake import FakeExecutor
from agent.executors.fakesh import PIPE_BYTES
from tests.executor.steps import new_attempt, run, stop_after


@pytest.fixture
def executor(tmp_path: Path) -> FakeExecutor:
    return FakeExecutor(tmp_path / "workspaces")


@pytest.fixture
def attempt(executor: FakeExecutor) -> Iterator[AttemptInfo]:
    info = new_attempt("pytest-fake")
    executor.prepare_attempt(info)
    yield info
    executor.cleanup_attempt(info)


def test_runs_no_process(
    executor: FakeExecutor, attempt: AttemptInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fake executor started a process")

    for module, name in ((subprocess, "Popen"), (os, "fork"), (os, "posix_spawn")):
        monkeypatch.setattr(module, name, refuse)
    result, output = run(executor, attempt, "echo hi | cat; sleep 0.1; ls")
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 0, b"hi\n")


def test_image_is_ignored_and_the_workspace_shows_as_slash_workspace(
    executor: FakeExecutor, attempt: AttemptInfo
) -> None:
    result, output = run(executor, attempt, 'pwd; echo "$HOME"', image="conveyor/nope:1")
    assert (result.end, output) == (StepEnd.EXITED, b"/workspace\n/workspace\n")


@pytest.mark.parametrize(
    ("script", "code", "says"),
    [
        ("echo before; frobnicate --now; echo after", 127, b"fake: frobnicate: not supported"),
        ("echo $(date)", 2, b"fake: command substitution is not supported"),
        ("for i in 1 2; do echo $i; done", 127, b"fake: for: not supported"),
        ("cat < input", 2, b"fake: '<' is not supported"),
        ("head -n 3 notes", 1, b"fake: head: only `head -c COUNT [FILE]` is supported"),
    ],
)
def test_unsupported_sh_fails_naming_what(
    executor: FakeExecutor, attempt: AttemptInfo, script: str, code: int, says: bytes
) -> None:
    result, output = run(executor, attempt, script)
    assert (result.end, result.exit_code) == (StepEnd.EXITED, code)
    assert says in output
    assert b"after" not in output


@pytest.mark.parametrize(
    "script",
    ["cat /etc/passwd", "echo x > ../escaped", "mkdir -p ../../escaped", "ln -s / root; ls root"],
)
def test_paths_outside_the_workspace_are_refused(
    executor: FakeExecutor, attempt: AttemptInfo, tmp_path: Path, script: str
) -> None:
    result, output = run(executor, attempt, script)
    assert result.exit_code == 1
    assert b"outside the workspace" in output
    assert not any(tmp_path.rglob("escaped"))


def test_lists_follow_sh_e(executor: FakeExecutor, attempt: AttemptInfo) -> None:
    script = (
        "false && echo no; false || echo rescued; true && echo yes\ntrue &&\n  false; echo never"
    )
    result, output = run(executor, attempt, script)
    assert (result.exit_code, output) == (1, b"rescued\nyes\n")


def test_redirects_pipes_and_devices(executor: FakeExecutor, attempt: AttemptInfo) -> None:
    script = (
        "echo one > f; echo two >> f; echo gone > /dev/null; cat f | tr o 0\n"
        "head -c 3 /dev/urandom > r; printf '%s %d%%\\n' size 3\n"
        "echo err >&2 2>/dev/null; echo lost 2>/dev/null >&2\n"
        "echo '# not a comment' # a comment\n"
        'printf "%s-" a b c; echo "${UNSET:-default} ${SET-x}"'
    )
    result, output = run(executor, attempt, script, env={"SET": ""})
    assert (result.exit_code, output) == (
        0,
        b"0ne\ntw0\nsize 3%\nerr\n# not a comment\na-b-c-default \n",
    )
    assert (executor.workspace(attempt) / "r").stat().st_size == 3


def test_a_lost_lease_kills_at_once_even_a_trapped_step(
    executor: FakeExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=0.0)
    stopped_at = stop_after(control, 0.3)
    script = "trap 'echo handled' TERM; sleep 300"
    result, output = run(executor, attempt, script, control=control)
    assert (result.end, result.exit_code, output) == (StepEnd.STOPPED, 137, b"")
    assert time.monotonic() - stopped_at[0] < 0.5


def test_untrapped_stop_ends_with_143(executor: FakeExecutor, attempt: AttemptInfo) -> None:
    control = StepControl(stop=threading.Event())
    stop_after(control, 0.2)
    result, output = run(executor, attempt, "echo up; sleep 300; echo never", control=control)
    assert (result.end, result.exit_code, output) == (StepEnd.STOPPED, 143, b"up\n")


def test_output_arrives_in_pieces_no_larger_than_a_pipe(
    executor: FakeExecutor, attempt: AttemptInfo
) -> None:
    chunks: list[bytes] = []
    step = StepRequest(0, "s", "", "head -c 200000 /dev/zero | tr '\\0' y", {})
    executor.run_step(attempt, step, chunks.append, StepControl(threading.Event()))
    assert b"".join(chunks) == b"y" * 200000
    assert max(len(chunk) for chunk in chunks) == PIPE_BYTES
