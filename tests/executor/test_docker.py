"""What only the Docker executor does: images, container names and labels, privileges, volumes.

Against the real engine and the local `conveyor/busybox` image; the shared contract is in
test_contract.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import ImageNotFound

from agent.config import Isolation
from agent.executors.base import AttemptInfo, StepControl, StepEnd
from agent.executors.docker import DockerExecutor, attempt_labels, container_name, volume_name
from tests.executor.steps import IMAGE, new_attempt, run
from tests.harness import wait_for

pytestmark = pytest.mark.docker

MISSING_IMAGE = "conveyor/does-not-exist:1"


@pytest.fixture(scope="module")
def client(docker_client: docker.DockerClient) -> docker.DockerClient:
    return docker_client


@pytest.fixture(scope="module")
def executor(client: docker.DockerClient) -> DockerExecutor:
    return DockerExecutor(client)


@pytest.fixture(scope="module")
def agent_name(executor: DockerExecutor) -> Iterator[str]:
    name = f"pytest-{uuid.uuid4().hex[:12]}"
    yield name
    # The executor that ran the attempts: it waits for the spare networks it is making.
    executor.remove_leftovers(name)


@pytest.fixture
def attempt(executor: DockerExecutor, agent_name: str) -> Iterator[AttemptInfo]:
    info = new_attempt(agent_name)
    executor.prepare_attempt(info)
    yield info
    executor.cleanup_attempt(info)


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


def test_step_container_carries_the_attempt_labels_and_a_fixed_name(
    client: docker.DockerClient, executor: DockerExecutor, attempt: AttemptInfo
) -> None:
    control = StepControl(stop=threading.Event(), grace_s=0.5)
    runner = threading.Thread(
        target=lambda: run(executor, attempt, "sleep 300", index=2, control=control), daemon=True
    )
    runner.start()
    try:
        found = wait_for(lambda: containers_of(client, attempt), 30, "the step's container")
    finally:
        control.stop.set()
        runner.join(30)
    (container,) = found
    assert container.name == container_name(attempt, 2)
    ours = {
        "conveyor.agent": attempt.agent_name,
        "conveyor.build": str(attempt.build_id),
        "conveyor.job": attempt.job_name,
        "conveyor.attempt": str(attempt.attempt_id),
        "conveyor.step": "2",
    }
    # The image may bring labels of its own.
    assert {key: container.labels.get(key) for key in ours} == ours
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
    # No network of its own: making one takes several calls, each under the 1 s timeout.
    impatient = DockerExecutor(docker.from_env(timeout=1), isolation=Isolation(network="none"))
    info = new_attempt(agent_name)
    impatient.prepare_attempt(info)
    try:
        result, output = run(impatient, info, "sleep 2; echo awake")
    finally:
        impatient.cleanup_attempt(info)
    assert (result.end, result.exit_code, output) == (StepEnd.EXITED, 0, b"awake\n")
