"""The real watchdog process (`python -m agent.watchdog`) kills what it holds once renewals stop.

This test's process plays the agent: after its last order it does nothing at all, as a frozen
agent would, so whatever is killed was killed by the watchdog process alone.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import IO

import docker
import pytest
from docker.errors import NotFound

from agent.watchdog import DOCKER, PGID
from agent.watchdog_link import WatchdogLink
from tests.harness import wait_for

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

KILL_TIMEOUT_S = 30.0


class _Spawner:
    """Starts the watchdog as the agent does, keeping its process for the test to look at."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def __call__(self) -> IO[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent.watchdog"], stdin=subprocess.PIPE, start_new_session=True
        )
        self.processes.append(process)
        assert process.stdin is not None
        return process.stdin


@pytest.fixture
def spawner() -> Iterator[_Spawner]:
    created = _Spawner()
    yield created
    for process in created.processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A step's stand-in: a process group whose leader and child both sleep."""
    process = subprocess.Popen(["sh", "-c", "sleep 300 & wait"], start_new_session=True)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_a_process_group_lives_while_renewed_and_dies_when_renewals_stop(
    spawner: _Spawner, sleeper: subprocess.Popen[bytes]
) -> None:
    link = WatchdogLink(spawner)
    lapses: list[int] = []
    link.hold(1, (PGID, str(sleeper.pid)))
    # Renewed for longer than one deadline lasts: the group must survive all of it.
    renew_until = time.monotonic() + 4.0
    while time.monotonic() < renew_until:
        link.arm(1, time.monotonic() + 3.0, lambda: lapses.append(1))
        time.sleep(0.2)
    assert sleeper.poll() is None, "killed although renewed"
    assert not lapses
    # Renewals stop, as they do when the agent is frozen.
    wait_for(lambda: sleeper.poll() is not None, KILL_TIMEOUT_S, "the watchdog to kill the group")
    assert sleeper.returncode == -9
    assert link.lapsed(1) and lapses == [1]
    link.close()
    spawner.processes[0].wait(KILL_TIMEOUT_S)


def test_when_the_agent_is_gone_the_watchdog_kills_at_the_deadline_and_exits(
    spawner: _Spawner, sleeper: subprocess.Popen[bytes]
) -> None:
    link = WatchdogLink(spawner)
    link.arm(1, time.monotonic() + 1.0, lambda: None)
    link.hold(1, (PGID, str(sleeper.pid)))
    link.close()  # as the agent's death closes the pipe
    wait_for(lambda: sleeper.poll() is not None, KILL_TIMEOUT_S, "the watchdog to kill the group")
    assert sleeper.returncode == -9
    assert spawner.processes[0].wait(KILL_TIMEOUT_S) == 0


@pytest.mark.docker
@pytest.mark.parametrize("started", [True, False], ids=["running", "created"])
def test_a_container_is_killed_and_removed_when_its_lease_lapses(
    spawner: _Spawner, docker_ready: None, started: bool
) -> None:
    client = docker.from_env()
    # A created container refuses a kill (it does not run yet): it must be removed all the same.
    container = client.containers.create(
        "conveyor/busybox", ["sleep", "300"], name=f"conveyor-watchdog-test-{uuid.uuid4().hex[:8]}"
    )
    if started:
        container.start()
    container_id = str(container.id)

    def removed() -> bool:
        try:
            client.containers.get(container_id)
        except NotFound:
            return True
        return False

    try:
        link = WatchdogLink(spawner)
        link.hold(1, (DOCKER, container_id))
        link.arm(1, time.monotonic() + 0.5, lambda: None)
        wait_for(removed, KILL_TIMEOUT_S, "the watchdog to remove the container")
        link.close()
    finally:
        if not removed():
            container.remove(force=True)
