"""Workspaces that are host directories (shell and fake executors): nothing gets out of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.executors.base import AttemptInfo, ExecutorError
from tests.executor.steps import Backend, run, tar_of

pytestmark = pytest.mark.parametrize("backend", ["shell", "fake"], indirect=True)


def test_import_tar_refuses_paths_leaving_the_workspace(
    backend: Backend, attempt: AttemptInfo, tmp_path: Path
) -> None:
    with pytest.raises(ExecutorError):
        backend.executor.import_tar(attempt, [tar_of({"../../escaped": b"x"})])
    assert not any(tmp_path.rglob("escaped"))


def test_open_workspace_never_follows_links_out(backend: Backend, attempt: AttemptInfo) -> None:
    run(backend.executor, attempt, "mkdir -p out && ln -s / out/root")
    with backend.executor.open_workspace(attempt) as workspace:
        # Through a symlinked directory: never followed.
        with pytest.raises(ExecutorError), workspace.read("out/root/etc/passwd"):
            pass
        with pytest.raises(ExecutorError), workspace.read("../secret"):
            pass
