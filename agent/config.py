"""Agent settings and constants, with their units."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Largest log chunk sent in one AppendLog; well under the 16 MiB message limit.
LOG_CHUNK_BYTES = 4 * 1024 * 1024
# While a step keeps printing, the shipper waits up to this long after an acknowledgement for
# LOG_CHUNK_BYTES to gather before it sends less: each AppendLog costs both ends about a
# millisecond of CPU and the coordinator an fsync, whatever its size. The first bytes after a
# quiet spell go at once, so a line is held at most this long.
LOG_LINGER_S = 0.010
# Log chunks of one step sent before the first is acknowledged: the next crosses the wire while
# the coordinator makes the last durable (its fsync), instead of after. Memory: this many
# LOG_CHUNK_BYTES per step printing fast.
LOG_CHUNKS_IN_FLIGHT = 2
# A retried call gives up after this long without an answer (then the lease decides).
CALL_RETRY_BUDGET_S = 60.0
# Backoff between retries of a failed call: exponential with jitter, capped.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0
# Unary calls' own deadline; PollWork adds this on top of the coordinator's poll timeout.
CALL_TIMEOUT_S = 20.0
# Bytes per message or read when moving sources and artifacts (the coordinator uses the same).
TRANSFER_CHUNK_BYTES = 1024 * 1024
# Per-call deadline of one artifact upload or download; large files on slow links need long.
TRANSFER_TIMEOUT_S = 3600.0
# Tries of one artifact upload cut by an outage or a coordinator restart, with the calls' backoff
# between them (about a minute of outage), before the attempt fails. Counted, not timed: a
# large upload may run long before it is cut.
UPLOAD_TRIES = 16
# Chunks read ahead of the upload stream (memory bound: this many TRANSFER_CHUNK_BYTES), and how
# often a blocked reader checks whether the upload call has ended.
UPLOAD_QUEUE_CHUNKS = 4
UPLOAD_POLL_S = 0.1
# Image of the helper container that reaches a workspace volume (needs `find`); never a step.
HELPER_IMAGE = "conveyor/busybox"
# `conveyor exec`: how often its main thread looks up from a running attempt (to see Ctrl-C
# promptly), and the SIGTERM-to-SIGKILL delay of a step it stops.
EXEC_JOIN_TICK_S = 0.2
EXEC_STOP_GRACE_S = 3.0
# What a step that names no image (nor its job or pipeline) runs in, unless `--default-image`.
DEFAULT_STEP_IMAGE = "conveyor/busybox"
# Limit for cloning a git source and for resolving its ref.
GIT_TIMEOUT_S = 600.0
# Symlinks followed in a row when collecting an artifact before giving up (a loop).
MAX_SYMLINK_HOPS = 8
# A step's log shipping gets this long to drain after the step ends before the attempt fails.
LOG_DRAIN_TIMEOUT_S = 120.0
# Unacknowledged log bytes one step may keep on disk while the coordinator is unreachable.
SPOOL_LIMIT_BYTES = 1024 * 1024 * 1024
# The agent takes work only while its work dir has this much free, or this fraction of the
# file system's size if that is less (agent/workroom.py), and looks again this often.
WORK_DIR_MIN_FREE_BYTES = 64 * 1024 * 1024
WORK_DIR_MIN_FREE_FRACTION = 0.05
WORK_DIR_CHECK_S = 1.0

# Secret masking (agent/masking.py): output that may be the start of a secret value is held at
# most this long for the rest of it; lines of a value shorter than this many bytes are not
# masked on their own (the coordinator refuses values that short).
MASK_HOLD_S = 5.0
MIN_MASKED_BYTES = 4

# Shell executor: how late a stop request or deadline is noticed at worst, the read size, how
# long output may stay open after the script's shell exited (a process that escaped the group),
# and the PATH steps get unless their env sets one. The output pipe is enlarged to the read size
# (Linux's default of 64 KiB makes a fast step cost a read, a spool write and a wake-up of the
# shipper per 64 KiB); 1 MiB is the most an unprivileged process may ask for by default.
SHELL_TICK_S = 0.05
SHELL_READ_BYTES = 1024 * 1024
SHELL_DRAIN_AFTER_EXIT_S = 1.0
SHELL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The watchdog process (agent.watchdog) kills an attempt's steps this long before the lease the
# agent last renewed can expire (measured from when that renewal was sent), but at most this
# share of the TTL early; it looks at its deadlines at least this often; once the agent is gone
# it keeps trying to kill what is left this long before it exits.
WATCHDOG_MARGIN_S = 1.0
WATCHDOG_MARGIN_MAX_SHARE = 0.25
WATCHDOG_TICK_S = 0.05
WATCHDOG_EXIT_AFTER_EOF_S = 60.0

# Step containers' bounds (README, "Step isolation", says why each default). Memory: at most this,
# and no more than the host's memory shared by the jobs run at once; swap is not added on top.
STEP_MEMORY_DEFAULT_BYTES = 4 * 1024**3
# Docker refuses less than this for a container (6 MiB).
STEP_MEMORY_MIN_BYTES = 6 * 1024**2
# Processes and threads one step container may hold at once (`--pids-limit`).
STEP_PIDS_DEFAULT = 4096
# How a step container's network is set up (`--network`): its own bridge network per attempt,
# Docker's shared default bridge, or no network at all.
NETWORK_MODES = ("per-attempt", "bridge", "none")
# Per-attempt networks made ahead of time, per agent, so an attempt does not wait for one.
NETWORK_POOL_SIZE = 2
# Clean-up waits this long for a pool refill under way (making a network takes about 0.1 s).
NETWORK_REFILL_WAIT_S = 10.0


@dataclass(frozen=True)
class Isolation:
    """How step containers are confined; the defaults of `conveyor agent` are chosen in main."""

    memory_bytes: int = STEP_MEMORY_DEFAULT_BYTES
    cpus: float = 1.0
    pids_limit: int = STEP_PIDS_DEFAULT
    network: str = "per-attempt"
    allow_privileged: bool = False


@dataclass(frozen=True)
class AgentConfig:
    coordinator: str
    join_token: str
    name: str
    work_dir: Path
    labels: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    stop_grace_s: float = 3.0
    spool_limit_bytes: int = SPOOL_LIMIT_BYTES
    # A git source on a path or file:// URL reads this host's files: only when the operator says.
    allow_local_git: bool = False
    # The CA that verifies the coordinator's TLS certificate; None: plaintext.
    ca_file: Path | None = None
    isolation: Isolation = field(default_factory=Isolation)
    # For steps whose pipeline names no image; "": the executor runs no images (shell, fake).
    default_image: str = DEFAULT_STEP_IMAGE


# Requests the agent may have in flight on its session stream at once (one per thread that
# talks to the coordinator: far fewer); a request finding none free waits, then is retried.
STREAM_MAX_IN_FLIGHT = 64
