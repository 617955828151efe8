"""`conveyor agent`: settings from flags and environment, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from agent import executors, metrics
from agent.config import DEFAULT_STEP_IMAGE, STEP_MEMORY_DEFAULT_BYTES, AgentConfig, Isolation
from agent.credential import WorkDirBusyError, lock_work_dir
from agent.executors.base import Executor
from agent.peer import JoinRefusedError, UntrustedServerError
from agent.peer.grpc import GrpcPeer
from agent.runner import Agent
from conveyor.allocator import tune_for_large_buffers
from conveyor.local import ADDRESS_FILE, AGENT_TOKEN_FILE, local_address, read_local
from conveyor.pipeline import PRIVILEGED_LABEL
from conveyor.tls import CaFileError, load_ca, resolve_target
from conveyor.tokens import TokenFileError, read_token_file

LOGGER = logging.getLogger(__name__)
# Where `--metrics` with port 0 says which port it took.
METRICS_ADDRESS_FILE = "metrics.addr"


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
# Labels under this prefix are the agent's own (PRIVILEGED_LABEL): an operator cannot set them.
RESERVED_LABEL_PREFIX = "conveyor."


def executor_labels(
    kind: str, labels: dict[str, str], allow_privileged: bool = False
) -> dict[str, str]:
    """The operator's labels plus the executor's own."""
    reserved = sorted(key for key in labels if key.startswith(RESERVED_LABEL_PREFIX))
    if reserved:
        raise UsageError(f"--labels: {reserved[0]} is reserved (labels {RESERVED_LABEL_PREFIX}*)")
    if allow_privileged and kind != "shell":
        labels = {**labels, PRIVILEGED_LABEL[0]: PRIVILEGED_LABEL[1]}
    if kind != "shell":
        return labels
    key, value = SHELL_LABEL
    if labels.get(key, value) != value:
        raise UsageError(f"--labels: {key}={labels[key]} contradicts --executor shell")
    return {**labels, key: value}


def join_token(args: argparse.Namespace) -> str:
    """From --token, --token-file or CONVEYOR_AGENT_TOKEN, in that order."""
    if getattr(args, "token_file", None):
        try:
            return read_token_file(args.token_file, "--token-file")
        except TokenFileError as error:
            raise UsageError(str(error)) from None
    # Then, as the CLI finds its token: the one a server on this machine keeps by default.
    token: str | None = (
        args.token
        or os.environ.get("CONVEYOR_AGENT_TOKEN")
        or read_local(AGENT_TOKEN_FILE, server_dir(args))
    )
    if not token:
        raise UsageError(
            "no join token: pass --token-file F (or --token) or set CONVEYOR_AGENT_TOKEN "
            "(the server prints where it keeps its agent-token)"
        )
    return token


def server_dir(args: argparse.Namespace) -> Path | None:
    """`--data-dir`: the data dir of the server on this machine, checked to be one."""
    given = getattr(args, "data_dir", None)
    if not given:
        return None
    path = Path(given).expanduser()
    if local_address(path) is None:
        raise UsageError(
            f"--data-dir {given}: no coordinator's files there ({ADDRESS_FILE}, "
            f"{AGENT_TOKEN_FILE}): is it the --data-dir of a `conveyor server`?"
        )
    return path


def config_from_args(args: argparse.Namespace) -> AgentConfig:
    token = join_token(args)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    name = args.name or socket.gethostname()
    try:
        target = resolve_target(args.coordinator, getattr(args, "ca", None), server_dir(args))
    except CaFileError as error:
        raise UsageError(str(error)) from None
    work_dir = (
        Path(args.work_dir).expanduser()
        if args.work_dir
        else Path.home() / ".conveyor" / f"agent-{name}"
    )
    return AgentConfig(
        coordinator=target.address,
        ca_file=target.ca.path if target.ca else None,
        join_token=token,
        name=name,
        work_dir=work_dir,
        labels=executor_labels(
            getattr(args, "executor", "docker"), parse_labels(args.labels), args.allow_privileged
        ),
        concurrency=args.concurrency,
        stop_grace_s=args.stop_grace,
        spool_limit_bytes=int(args.spool_limit * 1024 * 1024),
        allow_local_git=getattr(args, "allow_local_git", False),
        isolation=isolation_from_args(args),
        default_image=default_image_of(args),
    )


def default_image_of(args: argparse.Namespace) -> str:
    """`--default-image` for the Docker executor; the others run no images ("")."""
    if getattr(args, "executor", "docker") != "docker":
        return ""
    image: str = getattr(args, "default_image", None) or DEFAULT_STEP_IMAGE
    if any(char.isspace() for char in image):
        raise UsageError(f"--default-image {image!r}: an image name has no spaces")
    return image


def isolation_from_args(args: argparse.Namespace) -> Isolation:
    """The flags' bounds of step containers; the defaults depend on this host (README)."""
    cpu_count = os.cpu_count() or 1
    if args.cpus is not None and args.cpus > cpu_count:
        # Docker refuses a container more CPUs than the host has.
        raise UsageError(f"--cpus {args.cpus:g}: this host has only {cpu_count} CPUs")
    memory = args.memory
    if memory is None:
        memory = min(STEP_MEMORY_DEFAULT_BYTES, _host_memory() // args.concurrency)
    return Isolation(
        memory_bytes=memory,
        cpus=args.cpus if args.cpus is not None else max(cpu_count - 0.5, 0.5),
        pids_limit=args.pids_limit,
        network=args.network,
        allow_privileged=args.allow_privileged,
    )


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return STEP_MEMORY_DEFAULT_BYTES


def make_executor(kind: str, config: AgentConfig) -> Executor | None:
    """The executor the operator chose; None (after saying why) when it cannot work here."""
    if kind == "shell":
        LOGGER.warning("shell executor: steps run as host processes, without any isolation")
    if kind == "fake":
        LOGGER.warning("fake executor: steps are only simulated (for testing the farm itself)")
    try:
        return executors.create(kind, config.work_dir / "workspaces", config.isolation)
    except Exception as error:
        if kind != "docker":
            raise
        LOGGER.error("cannot use Docker: %s (is the engine running? `docker info`)", error)
        return None


def run(args: argparse.Namespace) -> int:
    tune_for_large_buffers()  # before any thread starts: log chunks of megabytes pass through
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
    try:
        ca = load_ca(config.ca_file, "--ca") if config.ca_file else None
    except CaFileError as error:
        LOGGER.error("%s", error)
        return 2
    listen = getattr(args, "metrics", None)
    if listen:
        try:
            address = metrics.serve(listen, config.work_dir / "spool")
        except metrics.ListenError as error:
            LOGGER.error("%s", error)
            return 2
        (config.work_dir / METRICS_ADDRESS_FILE).write_text(address + "\n")
    agent = Agent(config, executor, GrpcPeer(config.coordinator, config.join_token, ca))
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        LOGGER.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()
        agent.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
        # All stopped: the interpreter's last collections would walk every object left, which
        # takes a stopping process a good part of a second; frozen, they are skipped.
        gc.freeze()
    except UntrustedServerError as error:
        LOGGER.error("%s", error)
        return 2
    except JoinRefusedError as error:
        LOGGER.error("the coordinator at %s refused this agent: %s", config.coordinator, error)
        return 2
    return 0
