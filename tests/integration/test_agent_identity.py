"""Agent identity (DESIGN §6.9): a live agent's name is not taken over; a restarted agent is
recognised by the credential kept in its work dir; a clean exit shows offline at once; a drain
ends with the process it drained, a pause outlives restarts."""

from __future__ import annotations

import json
import signal
import stat
import time
from pathlib import Path

from tests.harness import Cluster, job, wait_for, write_pipeline

NAP = (
    "name: nap\nimage: conveyor/busybox\njobs:\n  nap:\n    steps:\n"
    "      - run: echo up; sleep 3; echo done\n"
)
CREDENTIAL = "agent-credential.json"


def _state(cluster: Cluster, name: str) -> str:
    state: str = next(a["state"] for a in cluster.json("agents") if a["name"] == name)
    return state


def test_a_live_name_is_refused_to_a_newcomer_and_the_running_agent_is_unaffected(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    name = f"twin-{unique}"
    first = cluster.start_agent(name)
    path = write_pipeline(tmp_path, "nap.yml", NAP)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "nap").stdout == b"up\n", 30, "the step to start"
    )
    # Another machine (its own work dir, so no credential) picks the same name.
    newcomer = cluster.start_agent(name, wait=False, extra=("--work-dir", str(tmp_path / "other")))
    assert newcomer.popen.wait(30) == 2
    assert f"agent name '{name}' is in use by a live agent" in newcomer.log()
    assert "Traceback" not in newcomer.log()
    doc = cluster.wait_build(build_id, lambda d: d["status"] != "running", 30, "the build to end")
    nap = job(doc, "nap")
    assert (doc["status"], nap["attempts"]) == ("succeeded", 1)
    assert cluster.cli("logs", str(build_id), "nap").stdout == b"up\ndone\n"
    assert first.popen.poll() is None
    assert "session replaced" not in first.log()
    assert _state(cluster, name) == "online"


def test_an_agent_restarted_after_a_crash_is_recognised_by_its_credential(
    cluster: Cluster, unique: str
) -> None:
    name = f"phoenix-{unique}"
    first = cluster.start_agent(name)
    credential = cluster.root / f"agent-{name}" / CREDENTIAL
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    kept = credential.read_text()
    first.kill()  # a crash: no goodbye, and the coordinator still counts it as live
    assert _state(cluster, name) == "online"
    again = cluster.start_agent(name, wait=False)
    # (Both lives write to one log file.)
    wait_for(lambda: again.log().count("registered as") == 2, 30, "the restart to register")
    time.sleep(1)
    assert again.popen.poll() is None, again.log()
    assert credential.read_text() == kept  # the same agent: nothing new issued
    assert [(a["name"], a["state"]) for a in cluster.json("agents")] == [(name, "online")]


def test_an_agent_that_exits_cleanly_is_offline_at_once(cluster: Cluster, unique: str) -> None:
    name = f"leaver-{unique}"
    agent = cluster.start_agent(name)
    assert agent.stop() == 0
    assert _state(cluster, name) == "offline"
    # Its name is free again, for a newcomer too.
    other = cluster.start_agent(name, wait=False, extra=("--work-dir", str(cluster.root / "new")))
    cluster.wait_for_agent(name)
    assert other.popen.poll() is None


def test_a_drained_agent_restarted_comes_back_active(cluster: Cluster, unique: str) -> None:
    name = f"drained-{unique}"
    agent = cluster.start_agent(name)
    assert cluster.cli("drain", name).returncode == 0
    assert agent.popen.wait(15) == 0
    again = cluster.start_agent(name)  # waits for it to show online
    time.sleep(1.5)  # it would have been told to drain on its first poll
    assert again.popen.poll() is None, again.log()
    assert _state(cluster, name) == "online"
    assert "asked this agent to drain" not in again.log().split("registered as")[-1]
    # A pause has no end of its own: it outlives a restart, and the agent says so.
    assert cluster.cli("pause", name).returncode == 0
    again.signal(signal.SIGTERM)
    assert again.popen.wait(15) == 0
    paused = cluster.start_agent(name, wait=False)
    wait_for(lambda: paused.log().count("registered as") == 3, 30, "the agent to register")
    assert _state(cluster, name) == "paused"
    assert f"an operator paused agent {name}" in paused.log()
    assert paused.popen.poll() is None


def test_a_second_process_on_the_same_work_dir_is_refused(cluster: Cluster, unique: str) -> None:
    """It would present the first one's credential and cut it off."""
    name = f"double-{unique}"
    first = cluster.start_agent(name)
    second = cluster.start_agent(name, wait=False)  # the same --work-dir
    assert second.popen.wait(30) == 2
    assert "is in use by another agent process" in second.log()
    time.sleep(1)
    assert first.popen.poll() is None
    assert _state(cluster, name) == "online"
