"""`conveyor agents revoke` (DESIGN §6.9): the agent's credential stops working at once, what
it runs is lost, and neither it nor anyone else registers under its name again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Cluster, job, wait_for, write_pipeline

LONG = (
    "name: long\nimage: conveyor/busybox\njobs:\n  long:\n    steps:\n"
    "      - run: echo up; sleep 600; echo done\n"
)
WAIT_S = 30.0


def test_a_revoked_agent_is_cut_off_at_once_and_its_attempt_is_lost(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    name = f"rogue-{unique}"
    agent = cluster.start_agent(name)
    path = write_pipeline(tmp_path, "long.yml", LONG)
    build_id = json.loads(cluster.cli("run", str(path), "--no-follow", "--json").stdout)["id"]
    wait_for(
        lambda: cluster.cli("logs", str(build_id), "long").stdout == b"up\n",
        WAIT_S,
        "the step to start",
    )
    revoked = cluster.cli("agents", "revoke", name, "--json")
    assert revoked.returncode == 0, revoked.stderr.decode()
    assert json.loads(revoked.stdout)["state"] == "revoked"
    # Lost at once, not after a lease's lifetime: the revoke itself ends the attempt.
    doc = cluster.wait_build(build_id, lambda d: d["status"] != "running", WAIT_S, "the end")
    long = job(doc, "long")
    assert (doc["status"], long["reason"]) == ("failed", "agent_lost"), long
    assert f"agent {name} was revoked by admin" in long["message"]
    # Its next call is refused, and its registration again with its own credential too.
    assert agent.popen.wait(WAIT_S) == 2
    assert f"agent '{name}' was revoked by an operator" in agent.log()
    assert "Traceback" not in agent.log()
    assert [(a["name"], a["state"]) for a in cluster.json("agents")] == [(name, "revoked")]
    newest = cluster.json("audit")["events"][0]
    assert (newest["by"], newest["action"], newest["target"]) == ("admin", "agent_revoke", name)


def test_a_revoked_name_is_not_taken_again_nor_resumed(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    name = f"gone-{unique}"
    cluster.start_agent(name).stop()
    assert cluster.cli("agents", "revoke", name).returncode == 0
    again = cluster.start_agent(name, wait=False)  # its own work dir: its credential
    assert again.popen.wait(WAIT_S) == 2
    newcomer = cluster.start_agent(name, wait=False, extra=("--work-dir", str(tmp_path / "new")))
    assert newcomer.popen.wait(WAIT_S) == 2
    assert newcomer.log().count(f"agent '{name}' was revoked by an operator") >= 2
    resumed = cluster.cli("resume", name)
    assert resumed.returncode == 2
    assert b"was revoked" in resumed.stderr
    assert cluster.cli("agents", "revoke", "no-such-agent").returncode == 2
