"""`conveyor agent` settings: the executor's own label."""

from __future__ import annotations

import pytest

from agent.main import UsageError, executor_labels


def test_a_shell_agent_carries_executor_shell() -> None:
    assert executor_labels("shell", {"pool": "a"}) == {"pool": "a", "executor": "shell"}
    assert executor_labels("shell", {"executor": "shell"}) == {"executor": "shell"}
    with pytest.raises(UsageError, match="contradicts --executor shell"):
        executor_labels("shell", {"executor": "docker"})


def test_docker_and_fake_agents_get_no_label_of_their_own() -> None:
    # Fake agents stand in for Docker agents in tests: they take unlabelled jobs too.
    assert executor_labels("docker", {}) == {}
    assert executor_labels("fake", {"pool": "a"}) == {"pool": "a"}
