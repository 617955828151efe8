"""ShellExecutor with real host processes; the same contract as the Docker executor's tests."""

from __future__ import annotations

import io
import os
import random
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agent.executors.base import (
    AttemptInfo,
    ExecutorError,
    FileKind,
    StepControl,
    StepEnd,
    StepRequest,
    StepResult,
)
from agent.executors.shell import WORKSPACE_VAR, ShellExecutor

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


@pytest.fixture
def executor(tmp_path: Path) -> ShellExecutor:
    return ShellExecutor(tmp_path / "workspaces")


def new_attempt() -> AttemptInfo:
    return AttemptInfo(
        attempt_id=random.randrange(10**12, 10**15),
        build_id=random.randrange(1, 10**9),
        job_name="build",
        agent_name="pytest-shell",
    )


@pytest.fixture
def attempt(executor: ShellExecutor) -> Iterator[AttemptInfo]:
    info = new_attempt()
    executor.prepare_attempt(info)
    yield info
    executor.cleanup_attempt(info)


def run(
    executor: ShellExecutor,
    attempt: AttemptInfo,
    script: str,
    *,
    index: int = 0,
    env: Mapping[str, str] | None = None,
    control: StepControl | None = None,
) -> tuple[StepResult, bytes]:
    chunks: list[bytes] = []
    step = StepRequest(index, f"step{index}", "ignored/image", script, env or {})
    result = executor.run_step(
        attempt, step, chunks.append, control or StepControl(stop=threading.Event())
    )
    return result, b"".join(chunks)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def ends_soon(pid: int, timeout_s: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: give the process a moment to be gone."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_is_reported(executor: ShellExecutor, attempt: AttemptInfo, code: int) -> None:
    result, _ = run(executor, attempt, f"exit {code}")
    assert (result.end, result.exit_code) == (StepEnd.EXITED, code)


def test_failing_command_stops_the_script(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    result, output = run(executor, attempt, "echo before; false; echo after")
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 1, b"before\n")


def test_steps_share_the_workspace_as_working_directory(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    first, _ = run(executor, attempt, "pwd > where.txt; echo scoop >> where.txt", index=0)
    second, output = run(executor, attempt, "cat where.txt", index=1)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert output == f"{executor.workspace(attempt)}\nscoop\n".encode()


def test_env_reaches_the_step_with_a_minimal_base(
    executor: ShellExecutor, attempt: AttemptInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_AGENT_SECRET", "must-not-leak")
    env = {"FLAVOUR": "pumpkin", "ODD": "a b\n'c'"}
    script = 'printf "%s|%s|%s|%s" "$FLAVOUR" "$ODD" "$HOME" "${CONVEYOR_AGENT_SECRET:-unset}"'
    _, output = run(executor, attempt, script, env=env)
    home = executor.workspace(attempt)
    assert output == f"pumpkin|a b\n'c'|{home}|unset".encode()


def test_stdout_and_stderr_keep_their_order(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    _, output = run(executor, attempt, "echo a; echo b >&2; echo c; echo d >&2")
    assert output == b"a\nb\nc\nd\n"


def test_all_byte_values_arrive_exactly(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    escapes = "".join(f"\\{value:03o}" for value in range(256))
    _, output = run(executor, attempt, f"printf '{escapes}'")
    assert output == bytes(range(256))


def test_huge_line_arrives_on_the_calling_thread(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    chunks: list[bytes] = []
    threads: set[threading.Thread] = set()

    def collect(chunk: bytes) -> None:
        threads.add(threading.current_thread())
        chunks.append(chunk)

    step = StepRequest(0, "big", "", "head -c 4194304 /dev/zero | tr '\\0' x", {})
    result = executor.run_step(attempt, step, collect, StepControl(stop=threading.Event()))
    assert result.exit_code == 0
    assert b"".join(chunks) == b"x" * 4194304
    assert threads == {threading.current_thread()}


def test_stop_ends_the_step_quickly(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    control = StepControl(stop=threading.Event(), grace_s=3.0)
    stopped_at: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.5)
        stopped_at.append(time.monotonic())
        control.stop.set()

    threading.Thread(target=stop_soon, daemon=True).start()
    result, _ = run(executor, attempt, "sleep 300", control=control)
    assert result.end is StepEnd.STOPPED
    assert time.monotonic() - stopped_at[0] < 2.0


def test_stop_lets_the_script_handle_sigterm(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    control = StepControl(stop=threading.Event())
    threading.Timer(0.5, control.stop.set).start()
    script = "trap 'echo got-term; exit 7' TERM; echo ready; sleep 300 & wait"
    result, output = run(executor, attempt, script, control=control)
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 7)
    assert output == b"ready\ngot-term\n"


def test_stop_kills_a_script_ignoring_sigterm_after_the_grace(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=0.5)
    threading.Timer(0.3, control.stop.set).start()
    result, _ = run(executor, attempt, "trap '' TERM; sleep 300", control=control)
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 137)


def test_stop_set_before_the_step_starts_runs_nothing(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    stop = threading.Event()
    stop.set()
    result, output = run(executor, attempt, "echo never > ran", control=StepControl(stop=stop))
    assert (result.end, output) == (StepEnd.STOPPED, b"")
    assert not (executor.workspace(attempt) / "ran").exists()


def test_deadline_kills_the_step(executor: ShellExecutor, attempt: AttemptInfo) -> None:
    control = StepControl(stop=threading.Event(), deadline=time.monotonic() + 0.5)
    result, output = run(executor, attempt, "echo started; sleep 300", control=control)
    assert (result.end, result.exit_code, output) == (StepEnd.TIMEOUT, 137, b"started\n")


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
    executor.remove_leftovers("pytest-shell")


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


def test_prepare_attempt_starts_from_an_empty_workspace(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    run(executor, attempt, "echo old > leftover.txt")
    executor.prepare_attempt(attempt)
    _, output = run(executor, attempt, "ls -A")
    assert output == b""


def test_cleanup_attempt_removes_the_workspace_idempotently(executor: ShellExecutor) -> None:
    info = new_attempt()
    executor.prepare_attempt(info)
    run(executor, info, "mkdir -p deep/er && echo x > deep/er/file")
    executor.cleanup_attempt(info)
    executor.cleanup_attempt(info)
    assert not executor.workspace(info).exists()


def test_remove_leftovers_kills_orphans_and_removes_workspaces(
    executor: ShellExecutor, tmp_path: Path
) -> None:
    infos = [new_attempt(), new_attempt()]
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
        assert executor.remove_leftovers("pytest-shell") == 1
        assert orphan.wait(5) == -9
        assert stranger.poll() is None
        assert list((tmp_path / "workspaces").iterdir()) == []
        assert executor.remove_leftovers("pytest-shell") == 0
    finally:
        stranger.kill()
        stranger.wait()


def test_concurrent_steps_of_different_attempts_stay_apart(executor: ShellExecutor) -> None:
    attempts = [new_attempt() for _ in range(4)]
    outputs: dict[int, bytes] = {}

    def one(info: AttemptInfo) -> None:
        executor.prepare_attempt(info)
        try:
            run(executor, info, f"echo {info.attempt_id} > id", index=0)
            _, outputs[info.attempt_id] = run(executor, info, "cat id; ls", index=1)
        finally:
            executor.cleanup_attempt(info)

    workers = [threading.Thread(target=one, args=(info,)) for info in attempts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert outputs == {info.attempt_id: f"{info.attempt_id}\nid\n".encode() for info in attempts}


def tar_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_import_tar_unpacks_into_the_workspace(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    data = tar_of({"src/main.c": b"int main;\n", "README": b"hi\n"})
    executor.import_tar(attempt, [data[:700], data[700:]])
    _, output = run(executor, attempt, "cat src/main.c README")
    assert output == b"int main;\nhi\n"


def test_import_tar_refuses_paths_leaving_the_workspace(
    executor: ShellExecutor, attempt: AttemptInfo, tmp_path: Path
) -> None:
    with pytest.raises(ExecutorError):
        executor.import_tar(attempt, [tar_of({"../../escaped": b"x"})])
    assert not any(tmp_path.rglob("escaped"))


def test_open_workspace_lists_and_streams_files_without_following_links(
    executor: ShellExecutor, attempt: AttemptInfo
) -> None:
    run(
        executor,
        attempt,
        "mkdir -p out && printf abc > out/a.txt && ln -s / out/root && ln -s out/a.txt link",
    )
    with executor.open_workspace(attempt) as workspace:
        assert sorted(workspace.names()) == ["link", "out/a.txt", "out/root"]
        with workspace.read("out/a.txt") as entry:
            assert (entry.kind, entry.size, b"".join(entry.chunks)) == (FileKind.FILE, 3, b"abc")
        with workspace.read("link") as entry:
            assert (entry.kind, entry.link_target) == (FileKind.SYMLINK, "out/a.txt")
        # Through a symlinked directory: never followed.
        with pytest.raises(ExecutorError), workspace.read("out/root/etc/passwd"):
            pass
        with pytest.raises(ExecutorError), workspace.read("../secret"):
            pass
