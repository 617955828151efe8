"""Makes tests/fixtures/baseline-datadir: a data dir written by the code before migrations.

The upgrade tests start today's server on a copy of it and compare what they read with what the
old code said (expected.json), so the data must come from the old code itself, not from today's.

    python scripts/make_baseline_fixture.py [--commit ca625a3] [--out tests/fixtures/...]

It checks the commit out into a temporary git worktree, runs that tree's `conveyor server` and a
shell-executor agent (PYTHONPATH points at the old tree; the venv only supplies the libraries),
runs a few builds, records what the old CLI prints about them, stops both and copies the data dir.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AGENT_TOKEN = "fixture-agent-token"
CLIENT_TOKEN = "fixture-client-token"
SHELL = "labels: {executor: shell}"

OK = f"""\
name: ok
image: conveyor/busybox
jobs:
  make:
    {SHELL}
    steps:
      - name: write
        run: |
          printf 'pumpkin\\n' > scoop.txt
          printf 'line one\\nnot utf-8: \\377\\376\\n'
      - name: check
        run: test -s scoop.txt && echo checked
    artifacts: [scoop.txt]
  use:
    needs: [make]
    {SHELL}
    steps:
      - run: cat scoop.txt
"""
FAIL = f"""\
name: broken
image: conveyor/busybox
jobs:
  broken:
    {SHELL}
    steps:
      - run: echo about to fail; exit 3
  after:
    needs: [broken]
    {SHELL}
    steps:
      - run: echo never
"""
FLAKY = f"""\
name: flaky
image: conveyor/busybox
jobs:
  flaky:
    {SHELL}
    retry: {{max: 2, when: [exit_code]}}
    steps:
      - run: |
          n=$(cat "$COUNTER" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$COUNTER"
          echo try $n
          test $n -ge 3
"""
SOURCE = f"""\
name: sourced
image: conveyor/busybox
jobs:
  read:
    {SHELL}
    steps:
      - run: cat hello.txt
"""
# No agent carries pool=later: these stay queued, in submission order, for the queue tests.
LATER = """\
name: later
image: conveyor/busybox
jobs:
  wait:
    labels: {executor: shell, pool: later}
    steps:
      - run: echo ran later
"""


class OldTree:
    def __init__(self, tree: Path, work: Path) -> None:
        self.tree, self.work = tree, work
        self.env = {**os.environ, "PYTHONPATH": str(tree)}
        self.address = ""
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("ab")
        command = [sys.executable, "-m", "conveyor.cli.main", *args]
        proc = subprocess.Popen(command, cwd=self.tree, env=self.env, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def cli(self, *args: str, check: bool = True) -> bytes:
        command = [sys.executable, "-m", "conveyor.cli.main", *args]
        command += ["--coordinator", self.address, "--token", CLIENT_TOKEN]
        done = subprocess.run(
            command, cwd=self.tree, env=self.env, capture_output=True, timeout=120, check=False
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{args}: exit {done.returncode}: {done.stderr.decode()}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json"))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def run_builds(old: OldTree, work: Path) -> None:
    for name, text in (("ok", OK), ("fail", FAIL), ("flaky", FLAKY), ("source", SOURCE)):
        (work / f"{name}.yml").write_text(text)
    (work / "src").mkdir()
    (work / "src" / "hello.txt").write_text("hello from the uploaded source\n")
    (work / "later.yml").write_text(LATER)
    counter = work / "counter"
    old.cli("run", str(work / "ok.yml"), "--json")
    old.cli("run", str(work / "fail.yml"), "--json", check=False)
    old.cli("run", str(work / "flaky.yml"), "--env", f"COUNTER={counter}", "--json")
    old.cli("run", str(work / "source.yml"), "--source", str(work / "src"), "--json")
    for _ in range(3):
        old.cli("run", str(work / "later.yml"), "--no-follow", "--json")


def expectations(old: OldTree) -> dict[str, Any]:
    """What the old CLI says about every build: documents, each attempt's log bytes, artifacts."""
    builds = old.json("builds", "--limit", "100")
    shown, logs, artifacts = {}, {}, {}
    for build in builds:
        build_id = str(build["id"])
        doc = old.json("show", build_id)
        shown[build_id] = doc
        artifacts[build_id] = old.json("artifacts", build_id)
        for job in doc["jobs"]:
            for number in range(1, job["attempts"] + 1):
                for step in job["steps"]:
                    args = (build_id, job["name"], "--attempt", str(number), "--step", step["name"])
                    key = f"{build_id}/{job['name']}/{number}/{step['name']}"
                    logs[key] = base64.b64encode(old.cli("logs", *args)).decode()
    return {"builds": builds, "show": shown, "logs": logs, "artifacts": artifacts}


def make(commit: str, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-fixture-") as scratch:
        work = Path(scratch)
        tree = work / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit],
            check=True,
            capture_output=True,
        )
        try:
            data = work / "data"
            old = OldTree(tree, work)
            server = old.spawn(
                "server",
                "server",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                str(data),
                "--agent-token",
                AGENT_TOKEN,
                "--client-token",
                CLIENT_TOKEN,
            )
            addr = data / "server.addr"
            for _ in range(200):
                if addr.exists() or server.poll() is not None:
                    break
                time.sleep(0.1)
            old.address = addr.read_text().strip()
            old.spawn(
                "agent",
                "agent",
                "--coordinator",
                old.address,
                "--token",
                AGENT_TOKEN,
                "--name",
                "fixture-agent",
                "--executor",
                "shell",
                "--labels",
                "executor=shell",
                "--work-dir",
                str(work / "agent"),
            )
            try:
                run_builds(old, work)
                expected = expectations(old)
            finally:
                old.stop()
            copy_data_dir(data, out)
            (out / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )


def copy_data_dir(data: Path, out: Path) -> None:
    """Keeps the database (checkpointed by the clean stop), logs and blobs; no tokens."""
    if (data / "conveyor.db-wal").exists():
        raise RuntimeError("the old server left a WAL file: it did not stop cleanly")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy2(data / "conveyor.db", out / "conveyor.db")
    for sub in ("logs", "blobs"):
        shutil.copytree(data / sub, out / sub)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="ca625a3")
    parser.add_argument("--out", type=Path, default=ROOT / "tests/fixtures/baseline-datadir")
    args = parser.parse_args()
    make(args.commit, args.out.resolve())


if __name__ == "__main__":
    main()
