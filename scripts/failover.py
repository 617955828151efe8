#!/usr/bin/env python3
"""Time from `kill -9` of an agent running a job to that job running again on another agent.

Starts a coordinator with the given lease settings and two agents on loopback, runs a job with
`retry: {max: 1, when: [agent_lost]}`, kills the agent running it and measures until the second
attempt's step is running. Usage: .venv/bin/python scripts/failover.py [--lease-ttl S]
[--renew-interval S] [--reaper-period S] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]
PIPELINE = (
    "name: failover\nimage: conveyor/busybox\njobs:\n  work:\n"
    "    retry: {max: 1, when: [agent_lost]}\n    steps:\n      - run: echo up; sleep 600\n"
)


def wait_for(predicate: Any, timeout_s: float = 60.0, every_s: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    raise SystemExit(f"failover: timed out waiting for {predicate}")


def show(env: dict[str, str], build_id: int) -> dict[str, Any]:
    out = subprocess.run(
        [*CONVEYOR, "show", str(build_id), "--json"], env=env, capture_output=True, check=True
    ).stdout
    doc: dict[str, Any] = json.loads(out)
    return doc


def start_agent(root: Path, env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    agent = subprocess.Popen(
        [*CONVEYOR, "agent", "--name", name, "--work-dir", str(root / name)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def online() -> bool:
        agents = subprocess.run(
            [*CONVEYOR, "agents", "--json"], env=env, capture_output=True, check=False
        ).stdout
        return any(a["name"] == name and a["state"] == "online" for a in json.loads(agents or "[]"))

    wait_for(online)
    return agent


def step_running(env: dict[str, str], build_id: int, attempt: int) -> bool:
    job = show(env, build_id)["jobs"][0]
    steps = job["steps"]
    return bool(job["attempts"] == attempt and steps and steps[0]["status"] == "running")


def one_run(root: Path, env: dict[str, str]) -> float:
    victim = start_agent(root, env, "victim")
    out = subprocess.run(
        [*CONVEYOR, "run", str(root / "p.yml"), "--no-follow", "--json"],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    build_id = json.loads(out)["id"]
    wait_for(lambda: step_running(env, build_id, 1))
    spare = start_agent(root, env, "spare")
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    try:
        wait_for(lambda: step_running(env, build_id, 2), every_s=0.05)
    except SystemExit:
        print(json.dumps(show(env, build_id), indent=1))
        raise
    elapsed = time.monotonic() - killed
    subprocess.run([*CONVEYOR, "cancel", str(build_id)], env=env, capture_output=True, check=False)
    for _ in range(2):  # drain, then stop
        spare.send_signal(signal.SIGTERM)
    spare.wait(30)
    victim.wait(30)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lease-ttl", type=float, default=4.0)
    parser.add_argument("--renew-interval", type=float, default=1.0)
    parser.add_argument("--reaper-period", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix=f"conveyor-failover-{run}-") as tmp:
            root = Path(tmp)
            (root / "p.yml").write_text(PIPELINE)
            server = subprocess.Popen(
                [
                    *CONVEYOR,
                    "server",
                    "--listen",
                    "127.0.0.1:0",
                    "--http",
                    "127.0.0.1:0",
                    "--data-dir",
                    str(root / "s"),
                    "--lease-ttl",
                    str(args.lease_ttl),
                    "--renew-interval",
                    str(args.renew_interval),
                    "--reaper-period",
                    str(args.reaper_period),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_for((root / "s" / "server.addr").exists)
                env = {
                    **os.environ,
                    "CONVEYOR_ADDR": (root / "s" / "server.addr").read_text().strip(),
                    "CONVEYOR_TOKEN": (root / "s" / "client-token").read_text().strip(),
                    "CONVEYOR_AGENT_TOKEN": (root / "s" / "agent-token").read_text().strip(),
                }
                times.append(one_run(root, env))
            finally:
                server.terminate()
                server.wait(30)
    print(
        f"lease TTL {args.lease_ttl}s, renew every {args.renew_interval}s, "
        f"reaper every {args.reaper_period}s"
    )
    print(
        "kill -9 to running again elsewhere: "
        + ", ".join(f"{t:.2f}s" for t in times)
        + f" (median {statistics.median(times):.2f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
