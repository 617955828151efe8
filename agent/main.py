"""`conveyor agent`: settings from flags and environment, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from agent import executors, metrics
from agent.config import AgentConfig
from agent.credential import WorkDirBusyError, lock_work_dir
from agent.executors.base import Executor
from agent.peer import JoinRefusedError
from agent.peer.grpc import GrpcPeer
from agent.runner import Agent

LOGGER = logging.getLogger(__name__)
# Where `--metrics` with port 0 says which port it took.
METRICS_ADDRESS_FILE = "metrics.addr"
DEFAULT_ADDRESS = "127.0.0.1:7420"


class UsageError(ValueError):
    pass


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--labels: {item!r} is not key=value")
        labels[key] = value
    return labels


# The label a shell-executor agent always carries; it takes only jobs that ask for it (the
# coordinator's rule), so a job without labels never runs unisolated on a host. Fake agents carry
# no such label and take unlabelled jobs: they are test doubles for Docker agents.
SHELL_LABEL = ("executor", "shell")


def executor_labels(kind: str, labels: dict[str, str]) -> dict[str, str]:
    """The operator's labels plus the executor's own."""
    if kind != "shell":
        return labels
    key, value = SHELL_LABEL
    if labels.get(key, value) != value:
        raise UsageError(f"--labels: {key}={labels[key]} contradicts --executor shell")
    return {**labels, key: value}


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    token = args.token or os.environ.get("CONVEYOR_AGENT_TOKEN")
    if not token:
        raise UsageError(
            "no join token: pass --token or set CONVEYOR_AGENT_TOKEN "
            "(the server prints where it keeps its agent-token)"
        )
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    name = args.name or socket.gethostname()
    address = args.coordinator or os.environ.get("CONVEYOR_ADDR") or DEFAULT_ADDRESS
    work_dir = (
        Path(args.work_dir).expanduser()
        if args.work_dir
        else Path.home() / ".conveyor" / f"agent-{name}"
    )
    return AgentConfig(
        coordinator=address,
        join_token=token,
        name=name,
        work_dir=work_dir,
        labels=executor_labels(getattr(args, "executor", "docker"), parse_labels(args.labels)),
        concurrency=args.concurrency,
        stop_grace_s=args.stop_grace,
        spool_limit_bytes=int(args.spool_limit * 1024 * 1024),
    )


def make_executor(kind: str, config: AgentConfig) -> Executor | None:
    """The executor the operator chose; None (after saying why) when it cannot work here."""
    if kind == "shell":
        LOGGER.warning("shell executor: steps run as host processes, without any isolation")
    if kind == "fake":
        LOGGER.warning("fake executor: steps are only simulated (for testing the farm itself)")
    try:
        return executors.create(kind, config.work_dir / "workspaces")
    except Exception as error:
        if kind != "docker":
            raise
        LOGGER.error("cannot use Docker: %s (is the engine running? `docker info`)", error)
        return None


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except UsageError as error:
        LOGGER.error("%s", error)
        return 2
    try:
        work_dir_lock = lock_work_dir(config.work_dir)
    except WorkDirBusyError as error:
        LOGGER.error("%s", error)
        return 2
    with work_dir_lock:
        return _serve(args, config)


def _serve(args: argparse.Namespace, config: AgentConfig) -> int:
    executor = make_executor(getattr(args, "executor", "docker"), config)
    if executor is None:
        return 1
    listen = getattr(args, "metrics", None)
    if listen:
        try:
            address = metrics.serve(listen, config.work_dir / "spool")
        except metrics.ListenError as error:
            LOGGER.error("%s", error)
            return 2
        (config.work_dir / METRICS_ADDRESS_FILE).write_text(address + "\n")
    agent = Agent(config, executor, GrpcPeer(config.coordinator, config.join_token))
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        LOGGER.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    except JoinRefusedError as error:
        LOGGER.error("the coordinator at %s refused this agent: %s", config.coordinator, error)
        return 2
    return 0
