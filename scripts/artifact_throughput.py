#!/usr/bin/env python3
"""Throughput of a large artifact (default 1 GiB) through Conveyor next to `cp` on the same disk.

Starts its own coordinator and agent (tests/harness.py) in a temp dir, runs job `a` writing SIZE
random bytes as an artifact and job `b` needing it, then prints MB/s for:

- upload:   workspace -> agent -> coordinator store (end of a's step .. agent logs "stored")
- fetch:    coordinator store -> agent -> b's workspace (b's attempt start .. b's first step)
- download: `conveyor artifacts --download` (coordinator -> CLI -> disk, sha256 verified)
- cp:       `cp` of the same file on the same disk, and `cp` + `sync`

Not run in CI. Usage: .venv/bin/python scripts/artifact_throughput.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import Cluster, job, write_pipeline  # noqa: E402

PIPELINE = """
name: throughput
image: conveyor/busybox
jobs:
  a:
    steps:
      - run: head -c {size} /dev/urandom > big.bin
    artifacts: [big.bin]
  b:
    needs: [a]
    steps:
      - run: stat -c %s big.bin
"""
_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "


def _log_time(log: str, pattern: str) -> float:
    match = re.search(_STAMP + r".*" + pattern, log, re.MULTILINE)
    if match is None:
        raise SystemExit(f"throughput: no log line matching {pattern!r}")
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _rate(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.1f} MB/s  ({seconds:6.2f} s)"


def _run_build(cluster: Cluster, root: Path, size: int) -> dict[str, object]:
    pipeline = write_pipeline(root, "t.yml", PIPELINE.format(size=size))
    result = cluster.cli("run", str(pipeline), "--json", timeout_s=1800)
    if result.returncode != 0:
        raise SystemExit(result.stderr.decode() + result.stdout.decode())
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def measure(root: Path, size: int) -> dict[str, float]:
    cluster = Cluster(root)
    cluster.start_server()
    agent = cluster.start_agent("throughput")
    try:
        doc = _run_build(cluster, root, size)
        log = agent.log()
        a_step_end = job(doc, "a")["steps"][0]["finished_at_ms"] / 1000
        b_step_start = job(doc, "b")["steps"][0]["started_at_ms"] / 1000
        out = root / "download"
        started = time.perf_counter()
        result = cluster.cli("artifacts", str(doc["id"]), "--download", str(out), timeout_s=1800)
        download_s = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(result.stderr.decode())
        copied = out / "a" / "big.bin"
        return {
            "upload": _log_time(log, r"attempt \d+: 1 artifacts stored") - a_step_end,
            "fetch": b_step_start - _log_time(log, r"job b attempt 1: starting"),
            "download": download_s,
            "cp": _timed(["cp", str(copied), str(root / "copy.bin")]),
            "cp+sync": _timed(["sh", "-c", f"cp '{copied}' '{root / 'copy2.bin'}' && sync"]),
        }
    finally:
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="artifact size in MiB")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="conveyor-throughput-") as tmp:
        figures = measure(Path(tmp), size)
    print(f"artifact of {args.mib} MiB")
    for name, seconds in figures.items():
        print(f"  {name:<9} {_rate(size, seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
