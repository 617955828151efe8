"""Helpers for executor tests: every backend behind one face, and running one step."""

from __future__ import annotations

import io
import os
import random
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.executors.base import AttemptInfo, Executor, StepControl, StepRequest, StepResult
from agent.executors.shell import WORKSPACE_VAR

IMAGE = "conveyor/busybox"


@dataclass
class Backend:
    """One executor under test, with what the contract tests need to look behind it."""

    kind: str
    executor: Executor
    agent_name: str
    # The working directory a step sees.
    pwd: Callable[[AttemptInfo], str]
    workspace_exists: Callable[[AttemptInfo], bool]
    # What of the attempt's steps still exists (containers, processes); [] once all are gone.
    leftovers: Callable[[AttemptInfo], list[object]]


def new_attempt(agent_name: str) -> AttemptInfo:
    return AttemptInfo(
        attempt_id=random.randrange(10**12, 10**15),
        build_id=random.randrange(1, 10**9),
        job_name="build",
        agent_name=agent_name,
    )


def run(
    executor: Executor,
    attempt: AttemptInfo,
    script: str,
    *,
    index: int = 0,
    env: Mapping[str, str] | None = None,
    image: str = IMAGE,
    control: StepControl | None = None,
) -> tuple[StepResult, bytes]:
    chunks: list[bytes] = []
    step = StepRequest(index=index, name=f"step{index}", image=image, run=script, env=env or {})
    result = executor.run_step(
        attempt, step, chunks.append, control or StepControl(stop=threading.Event())
    )
    return result, b"".join(chunks)


def stop_after(control: StepControl, delay_s: float) -> list[float]:
    """Sets ``control.stop`` after `delay_s`; the list gets the moment it did."""
    stopped_at: list[float] = []

    def stop() -> None:
        time.sleep(delay_s)
        stopped_at.append(time.monotonic())
        control.stop.set()

    threading.Thread(target=stop, daemon=True).start()
    return stopped_at


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def ends_soon(pid: int, timeout_s: float = 5.0) -> bool:
    """SIGKILL is delivered asynchronously: give the process a moment to be gone."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def processes_in(workspace: Path) -> list[int]:
    """Live processes a shell-executor step started in `workspace` (by their env marker)."""
    marker = f"{WORKSPACE_VAR}={workspace}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in environ.split(b"\0") and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def tar_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
