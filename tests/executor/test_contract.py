"""What every executor must do (agent.executors.base.Executor), for Docker, shell and fake alike.

Real engines and processes, no mocks; the Docker cases need the engine and `conveyor/busybox`.
What only one executor does lives in test_docker.py, test_shell.py and test_fake.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from agent.executors.base import AttemptInfo, FileKind, StepControl, StepEnd, StepRequest
from tests.executor.steps import Backend, new_attempt, run, stop_after, tar_of


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_is_reported(backend: Backend, attempt: AttemptInfo, code: int) -> None:
    result, _ = run(backend.executor, attempt, f"exit {code}")
    assert (result.end, result.exit_code) == (StepEnd.EXITED, code)


def test_failing_command_stops_the_script(backend: Backend, attempt: AttemptInfo) -> None:
    result, output = run(backend.executor, attempt, "echo before; false; echo after")
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 1, b"before\n")


def test_steps_share_the_workspace_as_working_directory(
    backend: Backend, attempt: AttemptInfo
) -> None:
    script = "pwd > where.txt; echo scoop >> where.txt"
    first, _ = run(backend.executor, attempt, script, index=0)
    second, output = run(backend.executor, attempt, "cat where.txt", index=1)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert output == f"{backend.pwd(attempt)}\nscoop\n".encode()


def test_env_reaches_the_step_and_the_agents_does_not(
    backend: Backend, attempt: AttemptInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_AGENT_SECRET", "must-not-leak")
    env = {"FLAVOUR": "pumpkin", "ODD": "a b\n'c'"}
    script = 'printf "%s|%s|%s" "$FLAVOUR" "$ODD" "${CONVEYOR_AGENT_SECRET:-unset}"'
    _, output = run(backend.executor, attempt, script, env=env)
    assert output == b"pumpkin|a b\n'c'|unset"


def test_stdout_and_stderr_keep_their_order(backend: Backend, attempt: AttemptInfo) -> None:
    _, output = run(backend.executor, attempt, "echo a; echo b >&2; echo c; echo d >&2")
    assert output == b"a\nb\nc\nd\n"


def test_all_byte_values_arrive_exactly(backend: Backend, attempt: AttemptInfo) -> None:
    escapes = "".join(f"\\{value:03o}" for value in range(256))
    _, output = run(backend.executor, attempt, f"printf '{escapes}'")
    assert output == bytes(range(256))


def test_invalid_utf8_arrives_exactly(backend: Backend, attempt: AttemptInfo) -> None:
    _, output = run(backend.executor, attempt, r"printf 'ok \377\376 \303( \355\240\200 end\n'")
    assert output == b"ok \xff\xfe \xc3( \xed\xa0\x80 end\n"


def test_huge_line_without_newline_arrives_on_the_calling_thread(
    backend: Backend, attempt: AttemptInfo
) -> None:
    chunks: list[bytes] = []
    threads: set[threading.Thread] = set()

    def collect(chunk: bytes) -> None:
        threads.add(threading.current_thread())
        chunks.append(chunk)

    script = "head -c 4194304 /dev/zero | tr '\\0' x"
    step = StepRequest(index=0, name="big", image="conveyor/busybox", run=script, env={})
    result = backend.executor.run_step(attempt, step, collect, StepControl(threading.Event()))
    assert result.exit_code == 0
    assert b"".join(chunks) == b"x" * 4194304
    assert threads == {threading.current_thread()}


def test_stop_ends_the_step_quickly_and_leaves_nothing(
    backend: Backend, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=3.0)
    stopped_at = stop_after(control, 0.7)
    result, _ = run(backend.executor, attempt, "sleep 300", control=control)
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 143)  # SIGTERM, untrapped
    assert time.monotonic() - stopped_at[0] < 2.0
    assert backend.leftovers(attempt) == []


def test_stop_lets_the_script_handle_sigterm(backend: Backend, attempt: AttemptInfo) -> None:
    control = StepControl(stop=threading.Event())
    stop_after(control, 0.7)
    script = "trap 'echo got-term; exit 7' TERM; echo ready; sleep 300 & wait"
    result, output = run(backend.executor, attempt, script, control=control)
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 7)
    assert output == b"ready\ngot-term\n"


def test_stop_kills_a_script_ignoring_sigterm_after_the_grace(
    backend: Backend, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=0.5)
    started = time.monotonic()  # before the stop's timer starts, or the gap shortens the wait
    stop_after(control, 0.5)
    result, _ = run(backend.executor, attempt, "trap '' TERM; sleep 300", control=control)
    elapsed = time.monotonic() - started
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 137)
    assert 1.0 <= elapsed < 3.0


def test_stop_set_before_the_step_starts_runs_nothing(
    backend: Backend, attempt: AttemptInfo
) -> None:
    stop = threading.Event()
    stop.set()
    control = StepControl(stop=stop)
    result, output = run(backend.executor, attempt, "echo never > ran", control=control)
    assert (result.end, output) == (StepEnd.STOPPED, b"")
    assert backend.leftovers(attempt) == []
    with backend.executor.open_workspace(attempt) as workspace:
        assert workspace.names() == []


def test_deadline_kills_the_step(backend: Backend, attempt: AttemptInfo) -> None:
    # Long enough for a container to start and print; the kill must follow within 2 s.
    control = StepControl(stop=threading.Event(), deadline=time.monotonic() + 1.5)
    result, output = run(backend.executor, attempt, "echo started; sleep 300", control=control)
    assert control.deadline is not None
    assert time.monotonic() - control.deadline < 2.0
    assert (result.end, result.exit_code, output) == (StepEnd.TIMEOUT, 137, b"started\n")
    assert backend.leftovers(attempt) == []


def test_output_callback_errors_propagate_and_end_the_step(
    backend: Backend, attempt: AttemptInfo
) -> None:
    def explode(chunk: bytes) -> None:
        raise RuntimeError("spool full")

    step = StepRequest(0, "s", "conveyor/busybox", "echo hello; sleep 300", {})
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="spool full"):
        backend.executor.run_step(attempt, step, explode, StepControl(threading.Event()))
    assert time.monotonic() - started < 30  # never the step's 300 s
    assert backend.leftovers(attempt) == []


def test_prepare_attempt_starts_from_an_empty_workspace(
    backend: Backend, attempt: AttemptInfo
) -> None:
    run(backend.executor, attempt, "echo old > leftover.txt")
    backend.executor.prepare_attempt(attempt)
    _, output = run(backend.executor, attempt, "ls -A")
    assert output == b""


def test_cleanup_attempt_removes_the_workspace_idempotently(backend: Backend) -> None:
    info = new_attempt(backend.agent_name)
    backend.executor.prepare_attempt(info)
    run(backend.executor, info, "mkdir -p deep/er && echo x > deep/er/file")
    backend.executor.cleanup_attempt(info)
    backend.executor.cleanup_attempt(info)
    assert not backend.workspace_exists(info)


def test_remove_leftovers_removes_every_workspace_of_the_agent(backend: Backend) -> None:
    infos = [new_attempt(backend.agent_name), new_attempt(backend.agent_name)]
    for info in infos:
        backend.executor.prepare_attempt(info)
        run(backend.executor, info, "echo kept > file")
    backend.executor.remove_leftovers(backend.agent_name)
    assert [backend.workspace_exists(info) for info in infos] == [False, False]
    assert backend.executor.remove_leftovers(backend.agent_name) == 0


def test_concurrent_steps_of_different_attempts_stay_apart(backend: Backend) -> None:
    attempts = [new_attempt(backend.agent_name) for _ in range(4)]
    outputs: dict[int, bytes] = {}

    def one(info: AttemptInfo) -> None:
        backend.executor.prepare_attempt(info)
        try:
            run(backend.executor, info, f"echo {info.attempt_id} > id", index=0)
            _, outputs[info.attempt_id] = run(backend.executor, info, "cat id; ls", index=1)
        finally:
            backend.executor.cleanup_attempt(info)

    workers = [threading.Thread(target=one, args=(info,)) for info in attempts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert outputs == {info.attempt_id: f"{info.attempt_id}\nid\n".encode() for info in attempts}


def test_import_tar_unpacks_into_the_workspace(backend: Backend, attempt: AttemptInfo) -> None:
    data = tar_of({"src/main.c": b"int main;\n", "README": b"hi\n"})
    backend.executor.import_tar(attempt, [data[:700], data[700:]])
    _, output = run(backend.executor, attempt, "cat src/main.c README")
    assert output == b"int main;\nhi\n"


def test_open_workspace_lists_and_streams_files_and_links(
    backend: Backend, attempt: AttemptInfo
) -> None:
    script = "mkdir -p out && printf abc > out/a.txt && ln -s / out/root && ln -s out/a.txt link"
    result, output = run(backend.executor, attempt, script)
    assert (result.exit_code, output) == (0, b"")
    with backend.executor.open_workspace(attempt) as workspace:
        assert sorted(workspace.names()) == ["link", "out/a.txt", "out/root"]
        with workspace.read("out/a.txt") as entry:
            assert (entry.kind, entry.size, b"".join(entry.chunks)) == (FileKind.FILE, 3, b"abc")
        with workspace.read("link") as entry:
            assert (entry.kind, entry.link_target) == (FileKind.SYMLINK, "out/a.txt")
