"""Step isolation in Docker, seen from outside: `docker inspect` of running steps, a memory hog,
a process flood."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.harness import Cluster, job, wait_for, write_pipeline

pytestmark = pytest.mark.docker

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
    wait_for(lambda: "ready" in logs(farm, build_id, "work"), 30, "the step's output")
    assert f"CapEff:\t{KEPT_CAPS_MASK}" in logs(farm, build_id, "work")

    assert farm.cli("cancel", str(build_id)).returncode == 0
    finished(farm, build_id)


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
