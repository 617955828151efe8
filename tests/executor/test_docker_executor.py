"""DockerExecutor against the real engine and the local `conveyor/busybox` image; no mocks."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING

import docker
import pytest
from docker.errors import DockerException, ImageNotFound

from agent.executors.base import AttemptInfo, StepControl, StepEnd, StepRequest, StepResult
from agent.executors.docker import DockerExecutor, attempt_labels, container_name, volume_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

pytestmark = pytest.mark.docker

IMAGE = "conveyor/busybox"
MISSING_IMAGE = "conveyor/does-not-exist:1"


@pytest.fixture(scope="module", autouse=True)
def client() -> Iterator[docker.DockerClient]:
    """The engine and the image, or a skip (a failure in CI, where they must exist)."""
    try:
        engine = docker.from_env()
        engine.ping()
        engine.images.get(IMAGE)
    except (DockerException, OSError) as exc:
        reason = f"Docker engine or image {IMAGE!r} unavailable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def agent_name(client: docker.DockerClient) -> Iterator[str]:
    name = f"pytest-{uuid.uuid4().hex[:12]}"
    yield name
    DockerExecutor(client).remove_leftovers(name)


@pytest.fixture(scope="module")
def executor(client: docker.DockerClient) -> DockerExecutor:
    return DockerExecutor(client)


def new_attempt(agent_name: str) -> AttemptInfo:
    return AttemptInfo(
        attempt_id=random.randrange(10**12, 10**15),
        build_id=random.randrange(1, 10**9),
        job_name="build",
        agent_name=agent_name,
    )


@pytest.fixture
def attempt(executor: DockerExecutor, agent_name: str) -> Iterator[AttemptInfo]:
    info = new_attempt(agent_name)
    executor.prepare_attempt(info)
    yield info
    executor.cleanup_attempt(info)


def run(
    executor: DockerExecutor,
    attempt: AttemptInfo,
    script: str,
    *,
    index: int = 0,
    env: Mapping[str, str] | None = None,
    image: str = IMAGE,
    control: StepControl | None = None,
) -> tuple[StepResult, bytes]:
    chunks: list[bytes] = []
    step = StepRequest(index=index, name=f"step{index}", image=image, run=script, env=env or {})
    result = executor.run_step(
        attempt, step, chunks.append, control or StepControl(stop=threading.Event())
    )
    return result, b"".join(chunks)


def containers_of(client: docker.DockerClient, attempt: AttemptInfo) -> list[object]:
    label = f"conveyor.attempt={attempt.attempt_id}"
    return list(client.containers.list(all=True, filters={"label": label}))


def volumes_of(client: docker.DockerClient, agent_name: str) -> list[object]:
    return list(client.volumes.list(filters={"label": f"conveyor.agent={agent_name}"}))


def start_leftover(client: docker.DockerClient, attempt: AttemptInfo, index: int) -> None:
    """A running container as a crashed agent would have left it."""
    client.containers.run(
        IMAGE,
        ["sleep", "300"],
        name=container_name(attempt, index),
        labels={**attempt_labels(attempt), "conveyor.step": str(index)},
        volumes={volume_name(attempt): {"bind": "/workspace", "mode": "rw"}},
        detach=True,
    )


@pytest.mark.parametrize("code", [0, 3])
def test_exit_code_is_reported(executor: DockerExecutor, attempt: AttemptInfo, code: int) -> None:
    result, _ = run(executor, attempt, f"exit {code}")
    assert result.end is StepEnd.EXITED
    assert result.exit_code == code


def test_failing_command_stops_the_script(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    result, output = run(executor, attempt, "echo before; false; echo after")
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 1, b"before\n")


def test_steps_share_the_workspace(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    first, _ = run(executor, attempt, "pwd > where.txt; echo scoop >> where.txt", index=0)
    second, output = run(executor, attempt, "cat where.txt", index=1)
    assert first.exit_code == 0
    assert second.exit_code == 0
    assert output == b"/workspace\nscoop\n"


def test_env_reaches_the_step(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    env = {"FLAVOUR": "pumpkin", "ODD": "a b\n'c'"}
    _, output = run(executor, attempt, 'printf "%s|%s" "$FLAVOUR" "$ODD"', env=env)
    assert output == b"pumpkin|a b\n'c'"


def test_stdout_and_stderr_keep_their_order(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    _, output = run(executor, attempt, "echo a; echo b >&2; echo c; echo d >&2")
    assert output == b"a\nb\nc\nd\n"


def test_all_byte_values_arrive_exactly(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    escapes = "".join(f"\\{value:03o}" for value in range(256))
    _, output = run(executor, attempt, f"printf '{escapes}'")
    assert output == bytes(range(256))


def test_invalid_utf8_arrives_exactly(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    _, output = run(executor, attempt, r"printf 'ok \377\376 \303( \355\240\200 end\n'")
    assert output == b"ok \xff\xfe \xc3( \xed\xa0\x80 end\n"


def test_huge_line_without_newline_arrives_on_the_calling_thread(
    executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    chunks: list[bytes] = []
    threads: set[threading.Thread] = set()

    def collect(chunk: bytes) -> None:
        threads.add(threading.current_thread())
        chunks.append(chunk)

    script = "head -c 1048576 /dev/zero | tr '\\0' x"
    step = StepRequest(index=0, name="big", image=IMAGE, run=script, env={})
    result = executor.run_step(attempt, step, collect, StepControl(stop=threading.Event()))
    assert result.exit_code == 0
    assert b"".join(chunks) == b"x" * 1048576
    assert threads == {threading.current_thread()}


def test_stop_ends_the_step_quickly_and_removes_the_container(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=3.0)
    stopped_at: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.7)
        stopped_at.append(time.monotonic())
        control.stop.set()

    threading.Thread(target=stop_soon, daemon=True).start()
    result, _ = run(executor, attempt, "sleep 300", control=control)
    assert result.end is StepEnd.STOPPED
    assert time.monotonic() - stopped_at[0] < 2.0
    assert containers_of(client, attempt) == []


def test_stop_lets_the_script_handle_sigterm(
    executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event())
    threading.Timer(0.7, control.stop.set).start()
    script = "trap 'echo got-term; exit 7' TERM; echo ready; sleep 300 & wait"
    result, output = run(executor, attempt, script, control=control)
    assert (result.end, result.exit_code) == (StepEnd.STOPPED, 7)
    assert output == b"ready\ngot-term\n"


def test_stop_kills_a_script_ignoring_sigterm_after_the_grace(
    executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=0.5)
    threading.Timer(0.5, control.stop.set).start()
    started = time.monotonic()
    result, _ = run(executor, attempt, "trap '' TERM; sleep 300", control=control)
    elapsed = time.monotonic() - started
    assert result.end is StepEnd.STOPPED
    assert result.exit_code == 137
    assert 1.0 <= elapsed < 3.0


def test_stop_set_before_the_step_starts_runs_nothing(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    stop = threading.Event()
    stop.set()
    result, output = run(executor, attempt, "echo never", control=StepControl(stop=stop))
    assert (result.end, output) == (StepEnd.STOPPED, b"")
    assert containers_of(client, attempt) == []


def test_deadline_kills_the_step(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    started = time.monotonic()
    control = StepControl(stop=threading.Event(), deadline=started + 1.0)
    result, _ = run(executor, attempt, "echo started; sleep 300", control=control)
    assert result.end is StepEnd.TIMEOUT
    assert time.monotonic() - started < 3.0
    assert containers_of(client, attempt) == []


def test_missing_image_fails_fast_naming_it(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    with pytest.raises(ImageNotFound):
        client.images.get(MISSING_IMAGE)
    started = time.monotonic()
    result, _ = run(executor, attempt, "true", image=MISSING_IMAGE)
    assert result.end is StepEnd.IMAGE_PULL_FAILED
    assert MISSING_IMAGE in result.message
    assert time.monotonic() - started < 10.0


def test_stale_container_with_the_same_name_is_replaced(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    start_leftover(client, attempt, index=0)
    result, output = run(executor, attempt, "echo fresh", index=0)
    assert (result.exit_code, output) == (0, b"fresh\n")
    assert containers_of(client, attempt) == []


def test_step_runs_without_privileges(executor: DockerExecutor, attempt: AttemptInfo) -> None:
    _, output = run(executor, attempt, "grep NoNewPrivs /proc/self/status; ls /var/run")
    assert b"NoNewPrivs:\t1" in output
    assert b"docker.sock" not in output


def test_prepare_attempt_labels_the_workspace(
    client: docker.DockerClient, attempt: AttemptInfo
) -> None:
    volume = client.volumes.get(volume_name(attempt))
    labels = volume.attrs["Labels"]
    assert labels == {
        "conveyor.agent": attempt.agent_name,
        "conveyor.attempt": str(attempt.attempt_id),
        "conveyor.build": str(attempt.build_id),
        "conveyor.job": attempt.job_name,
    }


def test_prepare_attempt_starts_from_an_empty_workspace(
    executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    run(executor, attempt, "echo old > leftover.txt")
    executor.prepare_attempt(attempt)
    _, output = run(executor, attempt, "ls -A")
    assert output == b""


def test_cleanup_attempt_removes_containers_and_workspace(
    client: docker.DockerClient, executor: DockerExecutor, agent_name: str
) -> None:
    info = new_attempt(agent_name)
    executor.prepare_attempt(info)
    start_leftover(client, info, index=2)
    assert len(containers_of(client, info)) == 1

    executor.cleanup_attempt(info)
    executor.cleanup_attempt(info)  # idempotent

    assert containers_of(client, info) == []
    names = [volume.name for volume in client.volumes.list()]
    assert volume_name(info) not in names


def test_remove_leftovers_removes_everything_of_the_agent(
    client: docker.DockerClient, executor: DockerExecutor
) -> None:
    agent = f"pytest-leftovers-{uuid.uuid4().hex[:12]}"
    attempts = [new_attempt(agent), new_attempt(agent)]
    for info in attempts:
        executor.prepare_attempt(info)
    start_leftover(client, attempts[0], index=0)
    start_leftover(client, attempts[0], index=1)
    start_leftover(client, attempts[1], index=0)
    assert len(volumes_of(client, agent)) == 2

    assert executor.remove_leftovers(agent) == 3
    assert executor.remove_leftovers(agent) == 0

    label = f"conveyor.agent={agent}"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert volumes_of(client, agent) == []


def test_silence_longer_than_the_client_timeout_is_fine(agent_name: str) -> None:
    impatient = DockerExecutor(docker.from_env(timeout=1))
    info = new_attempt(agent_name)
    impatient.prepare_attempt(info)
    try:
        result, output = run(impatient, info, "sleep 2; echo awake")
    finally:
        impatient.cleanup_attempt(info)
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 0, b"awake\n")


def test_concurrent_steps_of_different_attempts_stay_apart(
    executor: DockerExecutor, agent_name: str
) -> None:
    attempts = [new_attempt(agent_name) for _ in range(4)]
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
