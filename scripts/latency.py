#!/usr/bin/env python3
"""Wall time of `conveyor run` on a one-step `true` pipeline next to `docker run --rm ... true`.

Starts its own coordinator and agent on loopback, runs each command N times (default 10) and
prints the medians. Usage: .venv/bin/python scripts/latency.py [--runs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]
PIPELINE = (
    "name: latency\nimage: conveyor/busybox\njobs:\n  one:\n    steps:\n      - run: 'true'\n"
)


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def wait_file(path: Path, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"latency: {path} did not appear")
        time.sleep(0.05)
    return path.read_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-latency-") as tmp:
        root = Path(tmp)
        (root / "true.yml").write_text(PIPELINE)
        server = subprocess.Popen(
            [
                *CONVEYOR,
                "server",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--data-dir",
                str(root / "server"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            address = wait_file(root / "server" / "server.addr")
            env = {
                **os.environ,
                "CONVEYOR_ADDR": address,
                "CONVEYOR_TOKEN": wait_file(root / "server" / "client-token"),
                "CONVEYOR_AGENT_TOKEN": wait_file(root / "server" / "agent-token"),
            }
            agent = subprocess.Popen(
                [*CONVEYOR, "agent", "--name", "latency", "--work-dir", str(root / "agent")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            try:
                run = [*CONVEYOR, "run", str(root / "true.yml")]
                timed(run, env)  # warm-up: the agent registers and Docker caches the image
                conveyor = [timed(run, env) for _ in range(args.runs)]
            finally:
                agent.terminate()
                agent.wait(30)
        finally:
            server.terminate()
            server.wait(30)
    docker = [
        timed(["docker", "run", "--rm", "conveyor/busybox", "true"]) for _ in range(args.runs)
    ]
    figures = {
        "runs": args.runs,
        "conveyor_run_median_s": round(statistics.median(conveyor), 3),
        "docker_run_median_s": round(statistics.median(docker), 3),
    }
    figures["overhead_s"] = round(
        figures["conveyor_run_median_s"] - figures["docker_run_median_s"], 3
    )
    print(
        f"conveyor run (one-step `true`), median of {args.runs}: "
        f"{figures['conveyor_run_median_s']:.3f} s"
    )
    print(
        f"docker run --rm conveyor/busybox true, median of {args.runs}: "
        f"{figures['docker_run_median_s']:.3f} s"
    )
    print(f"Conveyor's overhead: {figures['overhead_s']:.3f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
