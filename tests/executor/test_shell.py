"""What only the shell executor does: host processes in a host workspace, and their cleanup.

The shared contract is in test_contract.py.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import SHELL_READ_BYTES
from agent.executors.base import AttemptInfo, StepControl, StepEnd, StepRequest
from agent.executors.shell import WORKSPACE_VAR, ShellExecutor
from tests.executor.steps import ends_soon, new_attempt, run

AGENT = "pytest-shell"


@pytest.fixture
def executor(tmp_path: Path) -> ShellExecutor:
    return ShellExecutor(tmp_path / "workspaces")


@pytest.fixture
def attempt(executor: ShellExecutor) -> Iterator[AttemptInfo]:
    info = new_attempt(AGENT)
    executor.prepare_attempt(info)
    yield info
    executor.cleanup_attempt(info)


def test_env_has_a_minimal_base_with_the_workspace_as_home(
    executor: ShellExecutor, attempt: AttemptInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_AGENT_SECRET", "must-not-leak")
    env = {"FLAVOUR": "pumpkin", "ODD": "a b\n'c'"}
    script = 'printf "%s|%s|%s|%s" "$FLAVOUR" "$ODD" "$HOME" "${CONVEYOR_AGENT_SECRET:-unset}"'
    _, output = run(executor, attempt, script, env=env)
    home = executor.workspace(attempt)
    assert output == f"pumpkin|a b\n'c'|{home}|unset".encode()


def test_background_processes_do_not_outlive_the_step(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    result, output = run(executor, attempt, "sleep 300 >/dev/null 2>&1 & echo $!")
    assert result.exit_code == 0
    assert ends_soon(int(output))


def test_a_process_holding_the_output_open_does_not_hang_the_step(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    # setsid leaves the step's process group, so only the reader's give-up ends the step.
    result, output = run(executor, attempt, "setsid sleep 300 & echo spawned")
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 0, b"spawned\n")
    executor.remove_leftovers(AGENT)


def test_image_is_ignored(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    step = StepRequest(0, "s", "conveyor/does-not-exist:1", "echo fine", {})
    chunks: list[bytes] = []
    result = executor.run_step(attempt, step, chunks.append, StepControl(threading.Event()))
    assert (result.end, b"".join(chunks)) == (StepEnd.EXITED, b"fine\n")


def test_output_callback_errors_propagate_after_the_process_is_gone(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    pids: list[int] = []

    def explode(chunk: bytes) -> None:
        pids.append(int(chunk.split()[0]))
        raise RuntimeError("spool full")

    step = StepRequest(0, "s", "", "echo $$; sleep 300", {})
    with pytest.raises(RuntimeError, match="spool full"):
        executor.run_step(attempt, step, explode, StepControl(threading.Event()))
    assert ends_soon(pids[0])


def test_remove_leftovers_kills_orphans_and_removes_workspaces(
    executor: ShellExecutor, tmp_path: Path
) -> None:
    infos = [new_attempt(AGENT), new_attempt(AGENT)]
    for info in infos:
        executor.prepare_attempt(info)
    # An orphan a crashed agent left behind: its own session, the step's environment marker.
    orphan = subprocess.Popen(
        ["sleep", "300"],
        env={WORKSPACE_VAR: str(executor.workspace(infos[0]))},
        start_new_session=True,
    )
    stranger = subprocess.Popen(["sleep", "300"], env={WORKSPACE_VAR: str(tmp_path / "other")})
    try:
        assert executor.remove_leftovers(AGENT) == 1
        assert orphan.wait(5) == -9
        assert stranger.poll() is None
        assert list((tmp_path / "workspaces").iterdir()) == []
        assert executor.remove_leftovers(AGENT) == 0
    finally:
        stranger.kill()
        stranger.wait()


def test_output_pipe_holds_a_whole_read(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    # A 64 KiB pipe would make a step printing fast cost a read, a spool write and a wake-up of
    # the log shipper per 64 KiB.
    script = "python3 -c 'import fcntl; print(fcntl.fcntl(1, fcntl.F_GETPIPE_SZ))'"
    _, output = run(executor, attempt, script)
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert int(output) == min(SHELL_READ_BYTES, limit)
