"""Step isolation in Docker, seen from outside: `docker inspect` of running steps, a memory hog,
a process flood, networks between jobs, privileged jobs and `user:`.

Everything here is container to container or read through the engine's API; the test itself
never connects to an address inside a Docker network.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline

# Docker limits and networks: the paths through the store are the same on both backends.
pytestmark = [pytest.mark.docker, pytest.mark.any_store]

MIB = 1024 * 1024
MEMORY_MB = 32
PIDS = 64
# CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, NET_BIND_SERVICE as a CapEff mask.
KEPT_CAPS_MASK = "00000000000004fb"
KEPT_CAPS = sorted(
    ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "NET_BIND_SERVICE"]
)
LIMITS = ("--memory", f"{MEMORY_MB}m", "--cpus", "0.5", "--pids-limit", str(PIDS))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, docker_ready: None) -> Iterator[Cluster]:
    """A coordinator and one bounded Docker agent (pool=iso, two jobs at once)."""
    created = Cluster(tmp_path_factory.mktemp("isolation"), executor="docker")
    created.start_server()
    created.start_agent(f"iso-{uuid.uuid4().hex[:6]}", labels="pool=iso", concurrency=2,
                        extra=LIMITS)  # fmt: skip
    try:
        yield created
    finally:
        created.close()


def submit(farm: Cluster, tmp_path: Path, text: str, *env: str) -> int:
    path = write_pipeline(tmp_path, f"p-{uuid.uuid4().hex[:6]}.yml", text)
    args = [arg for pair in (("--env", item) for item in env) for arg in pair]
    result = farm.cli("run", str(path), *args, "--no-follow", "--json")
    assert result.returncode == 0, result.stderr.decode()
    build_id: int = json.loads(result.stdout)["id"]
    return build_id


def finished(farm: Cluster, build_id: int, timeout_s: float = 90) -> dict[str, Any]:
    return farm.wait_build(build_id, lambda d: d["status"] not in ("queued", "running"),
                           timeout_s, f"build {build_id} to end")  # fmt: skip


def logs(farm: Cluster, build_id: int, job_name: str, step: str | None = None) -> str:
    args = ["logs", str(build_id), job_name, *(("--step", step) if step else ())]
    return farm.cli(*args).stdout.decode(errors="replace")


def running_container(farm: Cluster, build_id: int, job_name: str = "") -> Any:
    def found() -> Any:
        for container in farm.containers_of_build(build_id):
            labels = container.attrs["Labels"]
            if job_name and labels.get("conveyor.job") != job_name:
                continue
            full = docker.from_env().containers.get(container.id)
            if full.status == "running":
                return full
        return None

    return wait_for(found, 60, f"a running container of build {build_id}")


def attempt_network(container: Any) -> tuple[str, str]:
    """The name and address of the network a step container is on (per attempt: its holder's)."""
    mode = container.attrs["HostConfig"]["NetworkMode"]
    if mode.startswith("container:"):
        container = docker.from_env().containers.get(mode.partition(":")[2])
    ((name, network),) = container.attrs["NetworkSettings"]["Networks"].items()
    return name, network["IPAddress"]


def one_job(steps: str, labels: str = "pool: iso", extra: str = "") -> str:
    return (
        "name: iso\nimage: conveyor/busybox\njobs:\n  work:\n"
        f"    labels: {{{labels}}}\n{extra}    steps:\n{steps}"
    )


def test_running_step_shows_the_agents_limits_and_dropped_capabilities(
    farm: Cluster, tmp_path: Path
) -> None:
    steps = "      - run: grep CapEff /proc/self/status; echo ready; sleep 120\n"
    build_id = submit(farm, tmp_path, one_job(steps))
    container = running_container(farm, build_id)
    host = container.attrs["HostConfig"]
    assert host["PidsLimit"] == PIDS
    assert host["Memory"] == MEMORY_MB * MIB
    assert host["MemorySwap"] == MEMORY_MB * MIB  # no swap on top of the limit
    assert host["NanoCpus"] == 500_000_000
    assert host["CapDrop"] == ["ALL"]
    assert sorted(host["CapAdd"]) == KEPT_CAPS
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False
    network, _ = attempt_network(container)
    assert network.startswith("conveyor-net-"), network
    wait_for(lambda: "ready" in logs(farm, build_id, "work"), 30, "the step's output")
    assert f"CapEff:\t{KEPT_CAPS_MASK}" in logs(farm, build_id, "work")

    assert farm.cli("cancel", str(build_id)).returncode == 0
    finished(farm, build_id)
    client = docker.from_env()
    wait_for(lambda: not client.networks.list(names=[network]), 30, "the network to go")


def test_memory_hog_ends_oom_killed(farm: Cluster, tmp_path: Path) -> None:
    # Bounded: 64 MB held by the shell against a 32 MiB limit.
    hog = "      - run: x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived ${#x}\n"
    doc = finished(farm, submit(farm, tmp_path, one_job(hog)))
    work = job(doc, "work")
    assert (doc["status"], work["status"], work["reason"]) == ("failed", "failed", "oom_killed")
    assert "out of memory" in work["message"] and "--memory" in work["message"], work["message"]
    assert "survived" not in logs(farm, doc["id"], "work")


def test_process_flood_stops_at_the_pids_limit_and_the_agent_runs_the_next_job(
    farm: Cluster, tmp_path: Path
) -> None:
    # The flood runs in a subshell, whose failure to fork ends only itself; `exec` needs no
    # new process, so the step stays up (holding its processes) for the count.
    flood = (
        "      - run: |\n"
        "          (i=0; while [ $i -lt 500 ]; do sleep 120 & i=$((i+1)); done) || true\n"
        "          echo flood stopped\n"
        "          exec sleep 120\n"
    )
    build_id = submit(farm, tmp_path, one_job(flood))
    wait_for(lambda: "flood stopped" in logs(farm, build_id, "work"), 60, "the flood to stop")
    assert "can't fork" in logs(farm, build_id, "work")
    processes = running_container(farm, build_id).top()["Processes"]
    assert PIDS // 2 < len(processes) <= PIDS

    assert farm.cli("cancel", str(build_id)).returncode == 0
    finished(farm, build_id)
    agent = next(p for p in farm.processes if p.name.startswith("agent-iso-"))
    assert agent.popen.poll() is None, agent.log()
    doc = finished(farm, submit(farm, tmp_path, one_job("      - run: echo next\n")))
    assert doc["status"] == "succeeded"
    assert "next" in logs(farm, doc["id"], "work")


LISTENER = one_job("      - run: echo listening; nc -l -p 7000 && echo got a connection\n",
                   labels="pool: {pool}")  # fmt: skip
CALLER = one_job(
    "      - run: if echo hi | nc -w 3 $TARGET 7000; then echo reached; "
    "else echo unreachable; fi\n",
    labels="pool: {pool}",
)


def reaches_other_job(farm: Cluster, tmp_path: Path, pool: str) -> bool:
    """Whether a job's step reaches another job's listening step (both on the same host)."""
    listener = submit(farm, tmp_path, LISTENER.replace("{pool}", pool))
    container = running_container(farm, listener)
    wait_for(lambda: "listening" in logs(farm, listener, "work"), 30, "the listener")
    _, address = attempt_network(container)
    caller = finished(farm, submit(farm, tmp_path, CALLER.replace("{pool}", pool),
                                   f"TARGET={address}"))  # fmt: skip
    output = logs(farm, caller["id"], "work")
    assert "reached" in output or "unreachable" in output, output
    farm.cli("cancel", str(listener))
    finished(farm, listener)
    return "unreachable" not in output


def test_jobs_on_one_host_cannot_reach_each_other(farm: Cluster, tmp_path: Path) -> None:
    assert not reaches_other_job(farm, tmp_path, "iso")


def test_with_network_bridge_they_can_which_the_test_would_see(
    farm: Cluster, tmp_path: Path
) -> None:
    name = f"bridge-{uuid.uuid4().hex[:6]}"
    farm.start_agent(name, labels="pool=bridge", concurrency=2, extra=("--network", "bridge"))
    assert reaches_other_job(farm, tmp_path, "bridge")


def test_privileged_job_waits_for_an_agent_that_allows_it(farm: Cluster, tmp_path: Path) -> None:
    farm.start_agent(f"plain-{uuid.uuid4().hex[:6]}", labels="pool=priv")
    text = one_job("      - run: grep CapEff /proc/self/status\n", labels="pool: priv",
                   extra="    privileged: true\n")  # fmt: skip
    build_id = submit(farm, tmp_path, text)
    doc = farm.wait_build(build_id, lambda d: "--allow-privileged" in job(d, "work")["message"],
                          30, "the job to say why it waits")  # fmt: skip
    work = job(doc, "work")
    assert (work["status"], work["reason"], work["attempts"]) == ("queued", "waiting_for_agent", 0)

    farm.start_agent(f"root-{uuid.uuid4().hex[:6]}", labels="pool=priv",
                     extra=("--allow-privileged",))  # fmt: skip
    doc = finished(farm, build_id)
    work = job(doc, "work")
    assert work["agent"].startswith("root-")
    if doc["status"] == "succeeded":
        output = logs(farm, build_id, "work")
        assert "CapEff:" in output and KEPT_CAPS_MASK not in output, output
    else:
        # An engine that itself runs without every capability (inside a restricted container)
        # cannot start privileged containers at all; unprivileged ones start there, so this
        # error shows the container was asked to be privileged.
        assert work["reason"] == "error", work
        assert "unable to apply caps" in work["message"], work


def test_user_key_runs_steps_as_that_user(farm: Cluster, tmp_path: Path) -> None:
    steps = (
        "      - name: job-user\n        run: id -u; id -g\n"
        "      - name: own-user\n        user: '0'\n        run: id -u\n"
    )
    doc = finished(farm, submit(farm, tmp_path, one_job(steps, extra="    user: '1000:1001'\n")))
    assert doc["status"] == "succeeded", job(doc, "work")
    assert logs(farm, doc["id"], "work", "job-user").split() == ["1000", "1001"]
    assert logs(farm, doc["id"], "work", "own-user").split() == ["0"]


def test_an_agent_crash_leaves_no_network_after_its_restart(
    docker_cluster: Cluster, tmp_path: Path
) -> None:
    name = f"crash-{uuid.uuid4().hex[:6]}"
    agent = docker_cluster.start_agent(name)
    text = "name: c\nimage: conveyor/busybox\njobs:\n  work:\n    steps: [{run: sleep 120}]\n"
    submit(docker_cluster, tmp_path, text)
    client = docker.from_env()
    label: dict[str, str | list[str] | bool] = {"label": f"conveyor.agent={name}"}
    before = wait_for(lambda: client.networks.list(filters=label), 60, "the attempt's network")
    wait_for(lambda: client.containers.list(filters=label), 60, "the step's container")
    agent.kill()

    docker_cluster.start_agent(name)
    old = {network.name for network in before}
    wait_for(lambda: not old & {n.name for n in client.networks.list(filters=label)}, 60,
             "the crashed run's networks to be removed")  # fmt: skip
