"""How steps run: the :class:`~agent.executors.base.Executor` contract and its implementations.

Each implementation is imported only when chosen, so an agent that never uses Docker never
loads the Docker SDK.
"""

from __future__ import annotations

from pathlib import Path

from agent.config import Isolation
from agent.executors.base import Executor

KINDS = ("docker", "shell", "fake")


def create(kind: str, workspaces: Path, isolation: Isolation | None = None) -> Executor:
    """The executor named `kind`; `workspaces` is where host-side workspaces live, `isolation`
    how Docker confines step containers.

    Raises whatever the backend raises when it cannot work here (no Docker engine...).
    """
    if kind == "shell":
        from agent.executors.shell import ShellExecutor

        return ShellExecutor(workspaces)
    if kind == "fake":
        from agent.executors.fake import FakeExecutor

        return FakeExecutor(workspaces)
    if kind == "docker":
        from agent.executors.docker import DockerExecutor

        return DockerExecutor(isolation=isolation)
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(KINDS)}")
