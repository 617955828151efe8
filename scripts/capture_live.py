"""Shows what `conveyor run` draws on a terminal: runs a pipeline (the demo's shop by default)
against a local coordinator and one agent, on a pseudo-terminal of a fixed size, and prints the
rendered screen mid-build and at the end as text.

    .venv/bin/python scripts/capture_live.py [PIPELINE.yml] [--executor shell] [--size 100x30]

Needs the dev extras (pyte renders the escape stream into a screen) and, for the default
executor, Docker with the conveyor/busybox image.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fcntl import ioctl
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parents[1]
CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 300.0
# "build 1 shop: running  1/3 jobs done": a screen with some jobs done and some not is mid-build.
_PROGRESS = re.compile(r"(\d+)/(\d+) jobs done")


def _wait_for(path: Path, what: str) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise SystemExit(f"capture: {what} did not start")
        time.sleep(0.1)
    return path.read_text().strip()


def _agent_online(env: dict[str, str]) -> bool:
    listed = subprocess.run(
        [*CONVEYOR, "agents", "--json"], capture_output=True, env=env, check=False
    )
    return b'"online"' in listed.stdout


@contextmanager
def farm(work: Path, executor: str) -> Iterator[dict[str, str]]:
    """A coordinator and one agent (concurrency 2); yields the client's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    data = work / "server"
    logs = [open(work / name, "wb") for name in ("server.log", "agent.log")]  # noqa: SIM115
    server = subprocess.Popen(
        [*CONVEYOR, "server", "--listen", "127.0.0.1:0", "--http", "off", "--data-dir", str(data)],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
        env=env,
    )
    processes = [server]
    try:
        env["CONVEYOR_ADDR"] = _wait_for(data / "server.addr", "the coordinator")
        env["CONVEYOR_TOKEN"] = (data / "client-token").read_text().strip()
        env["CONVEYOR_AGENT_TOKEN"] = (data / "agent-token").read_text().strip()
        agent = [*CONVEYOR, "agent", "--name", "demo-agent", "--concurrency", "2"]
        agent += ["--executor", executor, "--work-dir", str(work / "agent")]
        processes.append(subprocess.Popen(agent, stdout=logs[1], stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _agent_online(env):
            if time.monotonic() > deadline:
                raise SystemExit("capture: the agent did not come online")
            time.sleep(0.2)
        yield env
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
        for log in logs:
            log.close()


def capture(command: list[str], env: dict[str, str], columns: int, lines: int) -> list[str]:
    """The screens (as text) after each read of `command`'s output on a pty of that size."""
    screen = pyte.Screen(columns, lines)
    stream = pyte.ByteStream(screen)
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    screens: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the command exited and closed its side
                break
            if not data:
                break
            stream.feed(data)
            screens.append("\n".join(line.rstrip() for line in screen.display).rstrip())
    finally:
        os.close(master)
        process.wait(30)
    return screens


def mid_build(screens: list[str]) -> str:
    """The first screen with some jobs done and some not (else the one before the end)."""
    for text in screens:
        found = _PROGRESS.search(text)
        if found and 0 < int(found.group(1)) < int(found.group(2)):
            return text
    return screens[-2] if len(screens) > 1 else screens[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", default=str(ROOT / "examples" / "shop.yml"))
    parser.add_argument("--executor", choices=("docker", "shell"), default="docker")
    parser.add_argument("--size", default="100x30", metavar="COLUMNSxLINES")
    args = parser.parse_args()
    columns, lines = (int(n) for n in args.size.split("x"))
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-capture.") as work,
        farm(Path(work), args.executor) as env,
    ):
        screens = capture([*CONVEYOR, "run", args.pipeline], env, columns, lines)
    if not screens:
        print("capture: the command printed nothing", file=sys.stderr)
        return 1
    rule = "-" * columns
    print(f"mid-build ({columns}x{lines}):\n{rule}\n{mid_build(screens)}\n{rule}")
    print(f"at the end:\n{rule}\n{screens[-1]}\n{rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
