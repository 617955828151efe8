"""A frozen agent never runs beside its replacement (DESIGN §7 invariant 5).

The agent is stopped with SIGSTOP for twice the lease TTL while its step runs. None of its
threads run then; only its watchdog process can kill the step before the coordinator hands the
job to the spare agent. Sampling what runs (containers, host processes) every ~100 ms shows at
most one live copy of the step at any moment, and the frozen copy gone before the spare's
starts. After SIGCONT the frozen agent must not spoil the result the spare reports.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from agent.executors.shell import WORKSPACE_VAR
from tests.harness import Cluster, Process, job, wait_for, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

TTL_S = 4.0  # the harness's --lease-ttl
SAMPLE_EVERY_S = 0.1
# The first attempt's copy sleeps long enough that it would still run when the spare's starts,
# were it not killed. The spare's (the second attempt) needs only to be seen running by the
# sampler: it need not wait out the first's sleep as well.
STEP = (
    'echo started; if [ "$CONVEYOR_ATTEMPT" = 1 ]; then sleep 20; else sleep 5; fi; echo finished'
)


def _pipeline(labels: str) -> str:
    return (
        "name: frozen\nimage: conveyor/busybox\njobs:\n  work:\n"
        + (f"    labels: {labels}\n" if labels else "")
        + "    retry: {max: 1, when: [agent_lost]}\n"
        + f"    steps:\n      - run: {STEP}\n"
    )


# What the agent logs when it learns that its attempt is no longer its own.
GAVE_UP = ("lease lapsed", "lease not renewed", "the lease is lost", "no longer ours")

# Which of the named agents run a live copy of the build's step now.
Sampler = Callable[[], set[str]]


def _docker_sampler(build_id: int, names: list[str]) -> Sampler:
    client = docker.from_env()

    def running_step_agents() -> set[str]:
        found = client.containers.list(
            sparse=True,
            filters={"label": [f"conveyor.build={build_id}", "conveyor.step"], "status": "running"},
        )
        # Other farms may share the Docker host (and their build ids): only this test's agents.
        agents = {c.attrs["Labels"]["conveyor.agent"] for c in found}
        return agents & set(names)

    return running_step_agents


def _live(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _shell_sampler(cluster: Cluster, names: list[str]) -> Sampler:
    """Agents with a live step process, by the workspace marker in its environment."""
    markers = {
        name: f"{WORKSPACE_VAR}={cluster.root / f'agent-{name}' / 'workspaces'}{os.sep}".encode()
        for name in names
    }

    def running_step_agents() -> set[str]:
        owners: set[str] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            for name, marker in markers.items():
                if any(item.startswith(marker) for item in environ) and _live(entry.name):
                    owners.add(name)
        return owners

    return running_step_agents


def _sample_while_frozen(agent: Process, sample: Sampler) -> list[tuple[float, set[str]]]:
    """SIGSTOPs `agent` for twice the TTL, sampling throughout; then SIGCONTs it."""
    samples: list[tuple[float, set[str]]] = []
    agent.signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        while (now := time.monotonic()) - stopped_at < 2 * TTL_S:
            samples.append((now - stopped_at, sample()))
            time.sleep(SAMPLE_EVERY_S)
    finally:
        agent.signal(signal.SIGCONT)
    return samples


def _frozen_agent_never_overlaps(
    cluster: Cluster, tmp_path: Path, labels: str, sampler: Callable[[int, list[str]], Sampler]
) -> None:
    suffix = uuid.uuid4().hex[:6]
    frozen, spare = f"frozen-{suffix}", f"spare-{suffix}"
    agent = cluster.start_agent(frozen)
    path = write_pipeline(tmp_path, "frozen.yml", _pipeline(labels))
    submitted = cluster.cli("run", str(path), "--no-follow", "--json")
    assert submitted.returncode == 0, submitted.stderr.decode()
    build_id = json.loads(submitted.stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "work").stdout == b"started\n",
        60,
        "the step to start on the agent that will be frozen",
    )
    cluster.start_agent(spare)
    sample = sampler(build_id, [frozen, spare])
    assert sample() == {frozen}

    samples = _sample_while_frozen(agent, sample)

    overlaps = [(t, owners) for t, owners in samples if len(owners) > 1]
    assert not overlaps, f"two live copies of the step at once: {overlaps[:5]}"
    with_frozen = [t for t, owners in samples if frozen in owners]
    with_spare = [t for t, owners in samples if spare in owners]
    assert with_frozen, "the step did not run before the freeze"
    assert frozen not in samples[-1][1], "the frozen copy outlived twice its lease"
    # The spare's copy may start a little after the freeze ends on a slow machine: look on.
    if not with_spare:
        wait_for(lambda: spare in sample(), 60, "the spare to run the step")
    else:
        assert with_frozen[-1] < with_spare[0]

    doc = cluster.wait_build(
        build_id, lambda d: d["status"] != "running", 120, "the spare to finish the build"
    )
    work = job(doc, "work")
    assert (doc["status"], work["status"], work["agent"], work["attempts"]) == (
        "succeeded",
        "succeeded",
        spare,
        2,
    ), doc
    assert agent.popen.poll() is None, "the frozen agent died instead of carrying on"
    wait_for(
        lambda: any(words in agent.log() for words in GAVE_UP),
        30,
        "the resumed agent to give up its attempt",
    )
    assert f"build {build_id} job work attempt 1: finished" not in agent.log()


@pytest.mark.docker
def test_a_frozen_docker_agent_never_runs_beside_its_replacement(
    docker_cluster: Cluster, tmp_path: Path
) -> None:
    _frozen_agent_never_overlaps(docker_cluster, tmp_path, "", _docker_sampler)


@pytest.fixture
def shell_cluster(tmp_path: Path) -> Iterator[Cluster]:
    created = Cluster(tmp_path / "shell", executor="shell")
    created.root.mkdir()
    created.start_server()
    try:
        yield created
    finally:
        created.close()


def test_a_frozen_shell_agent_never_runs_beside_its_replacement(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    def sampler(_build_id: int, names: list[str]) -> Sampler:
        return _shell_sampler(shell_cluster, names)

    _frozen_agent_never_overlaps(shell_cluster, tmp_path, "{executor: shell}", sampler)
