"""`conveyor agent` settings: the executor's own labels, the bounds of step containers."""

from __future__ import annotations

import argparse
import os

import pytest

from agent.config import STEP_MEMORY_DEFAULT_BYTES, Isolation
from agent.main import UsageError, executor_labels, isolation_from_args
from conveyor.cli.bounds import byte_size
from conveyor.cli.parser import build_parser
from conveyor.pipeline import PRIVILEGED_LABEL


def test_a_shell_agent_carries_executor_shell() -> None:
    assert executor_labels("shell", {"pool": "a"}) == {"pool": "a", "executor": "shell"}
    assert executor_labels("shell", {"executor": "shell"}) == {"executor": "shell"}
    with pytest.raises(UsageError, match="contradicts --executor shell"):
        executor_labels("shell", {"executor": "docker"})


def test_docker_and_fake_agents_get_no_label_of_their_own() -> None:
    # Fake agents stand in for Docker agents in tests: they take unlabelled jobs too.
    assert executor_labels("docker", {}) == {}
    assert executor_labels("fake", {"pool": "a"}) == {"pool": "a"}


def test_allow_privileged_adds_the_reserved_label_which_operators_cannot_set() -> None:
    assert executor_labels("docker", {"pool": "a"}, allow_privileged=True) == {
        "pool": "a",
        PRIVILEGED_LABEL[0]: PRIVILEGED_LABEL[1],
    }
    with pytest.raises(UsageError, match="reserved"):
        executor_labels("docker", {"conveyor.privileged": "allowed"})


def agent_args(*flags: str) -> argparse.Namespace:
    args = build_parser().parse_args(["agent", "--token", "t", *flags])
    return args


def test_isolation_flags_and_their_defaults() -> None:
    chosen = isolation_from_args(
        agent_args("--memory", "512m", "--cpus", "1", "--pids-limit", "100", "--network", "none")
    )
    assert chosen == Isolation(512 * 1024**2, 1.0, 100, "none", False)
    default = isolation_from_args(agent_args("--concurrency", "2"))
    assert 0 < default.memory_bytes <= STEP_MEMORY_DEFAULT_BYTES
    assert 0 < default.cpus <= (os.cpu_count() or 1)
    assert (default.pids_limit, default.network, default.allow_privileged) == (
        4096,
        "per-attempt",
        False,
    )
    with pytest.raises(UsageError, match="only"):
        isolation_from_args(agent_args("--cpus", "4096"))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1073741824", 1024**3),
        ("512m", 512 * 1024**2),
        ("1.5G", 3 * 512 * 1024**2),
        ("64MiB", 64 * 1024**2),
    ],
)
def test_memory_sizes(text: str, size: int) -> None:
    assert byte_size(1, 1024**5)(text) == size


@pytest.mark.parametrize("text", ["", "lots", "5m", "-1g", "1e9"])
def test_bad_memory_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(6 * 1024**2, 1024**5)(text)
