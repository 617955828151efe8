"""Executor fixtures: `backend` is each executor in turn (Docker needs the engine), and
`attempt` a prepared attempt of it, cleaned up afterwards. A module narrows the backends with
``pytest.mark.parametrize("backend", [...], indirect=True)``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from agent.executors.base import AttemptInfo
from agent.executors.docker import DockerExecutor, volume_name
from agent.executors.fake import FakeExecutor
from agent.executors.shell import ShellExecutor
from tests.executor.steps import Backend, new_attempt, processes_in

ALL_BACKENDS = [pytest.param("docker", marks=pytest.mark.docker), "shell", "fake"]


@pytest.fixture(scope="session")
def docker_client(docker_ready: None) -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


def _docker_backend(client: docker.DockerClient) -> Backend:
    def volume_exists(attempt: AttemptInfo) -> bool:
        return volume_name(attempt) in [volume.name for volume in client.volumes.list()]

    def containers(attempt: AttemptInfo) -> list[object]:
        label = f"conveyor.attempt={attempt.attempt_id}"
        return list(client.containers.list(all=True, filters={"label": label}))

    return Backend(
        kind="docker",
        executor=DockerExecutor(client),
        agent_name=f"pytest-{uuid.uuid4().hex[:12]}",
        pwd=lambda attempt: "/workspace",
        workspace_exists=volume_exists,
        leftovers=containers,
    )


def _shell_backend(root: Path) -> Backend:
    executor = ShellExecutor(root)

    def processes(attempt: AttemptInfo) -> list[object]:
        # SIGKILL is delivered asynchronously: give killed processes a moment to be gone.
        deadline = time.monotonic() + 5
        while (found := processes_in(executor.workspace(attempt))) and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(found)

    return Backend(
        kind="shell",
        executor=executor,
        agent_name="pytest-shell",
        pwd=lambda attempt: str(executor.workspace(attempt)),
        workspace_exists=lambda attempt: executor.workspace(attempt).exists(),
        leftovers=processes,
    )


def _fake_backend(root: Path) -> Backend:
    executor = FakeExecutor(root)
    return Backend(
        kind="fake",
        executor=executor,
        agent_name="pytest-fake",
        pwd=lambda attempt: "/workspace",
        workspace_exists=lambda attempt: executor.workspace(attempt).exists(),
        leftovers=lambda attempt: [],  # nothing of a step exists outside run_step's frame
    )


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind: str = request.param
    if kind == "docker":
        created = _docker_backend(request.getfixturevalue("docker_client"))
    elif kind == "shell":
        created = _shell_backend(tmp_path / "workspaces")
    else:
        created = _fake_backend(tmp_path / "workspaces")
    yield created
    created.executor.remove_leftovers(created.agent_name)


@pytest.fixture
def attempt(backend: Backend) -> Iterator[AttemptInfo]:
    info = new_attempt(backend.agent_name)
    backend.executor.prepare_attempt(info)
    yield info
    backend.executor.cleanup_attempt(info)
