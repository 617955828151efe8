"""What the agent and the coordinator tell each other, in domain terms (no protobuf)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from conveyor.states import Outcome


@dataclass(frozen=True)
class Lease:
    """Identity and fencing token of one attempt; every call about the attempt carries it."""

    attempt_id: int
    token: str


@dataclass(frozen=True)
class AgentInfo:
    """What an agent says about itself when it registers."""

    name: str
    labels: Mapping[str, str]
    capacity: int  # attempts it runs at once
    # Its own credential from an earlier registration ("" for a first one); proves a restarted
    # agent is the one that holds its name.
    credential: str = ""


@dataclass(frozen=True)
class Registration:
    """The coordinator's answer to a registration: the agent's id and the lease timings."""

    agent_id: int
    lease_ttl_s: float
    renew_interval_s: float
    mode: str = "active"  # an operator's: active or paused (draining ends with a restart)


@dataclass(frozen=True)
class StepSpec:
    name: str
    image: str
    run: str
    env: Mapping[str, str]  # build, job and step env already merged
    timeout_s: float | None  # None: no step-level limit
    user: str = ""  # run as this user; "": the image's


@dataclass(frozen=True)
class Assignment:
    """One attempt of one job, handed to this agent."""

    lease: Lease
    build_id: int
    job_name: str
    attempt_number: int
    steps: tuple[StepSpec, ...]
    timeout_s: float | None  # whole-attempt limit; None: none
    # Name -> value of the secrets the job names: its steps' env, masked in their output.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    privileged: bool = False  # the job asks for privileged containers
    # What the build is of, for the steps' CONVEYOR_* variables; "" where none applies.
    event: str = "manual"
    branch: str = ""
    tag: str = ""
    environment: str = ""  # the job's `environment` name
    # What the attempt starts from, when the coordinator sent it along (else: get_inputs).
    inputs: Inputs | None = None


@dataclass(frozen=True)
class Work:
    """One answer to a poll: new attempts, cancellations, and whether to drain."""

    assignments: tuple[Assignment, ...] = ()
    cancel_attempt_ids: tuple[int, ...] = ()
    drain: bool = False  # an operator asked this agent to take no more work


class LeaseState(StrEnum):
    ACTIVE = "active"
    CANCEL = "cancel"  # keep the lease, but stop the attempt: a user canceled it
    LOST = "lost"  # no longer this agent's: stop its steps now, report nothing


@dataclass(frozen=True)
class LeaseStatus:
    attempt_id: int
    state: LeaseState


@dataclass(frozen=True)
class LogAck:
    """How much of a step's log the coordinator holds durably after an append."""

    held_length: int
    # False: the chunk left a gap (or was refused); resend from held_length.
    accepted: bool


# What waits for the answer to a log chunk already sent (`Peer.begin_append_log`).
PendingAck = Callable[[], LogAck]


@dataclass(frozen=True)
class Verdict:
    """How an attempt (or a step) ended, as the agent reports it."""

    outcome: Outcome
    reason: str = ""  # a conveyor.states.Reason code, "" on success
    message: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class StepReport:
    index: int
    verdict: Verdict
    exit_code: int | None  # the step's own exit code when known, whatever the verdict
    log_length: int  # bytes of log the coordinator should hold for the step
    log_lost_bytes: int = 0  # output dropped because the spool overflowed


@dataclass(frozen=True)
class Recorded:
    """The result the coordinator keeps for an attempt (the first one reported wins)."""

    outcome: Outcome | None
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """An uploaded source directory: a tar blob in the coordinator's store."""

    sha256: str
    size: int


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str
    commit: str  # "" until an agent resolved the ref


@dataclass(frozen=True)
class NeededArtifact:
    """An artifact of a job this job needs, unpacked into the workspace before the steps."""

    job: str
    name: str
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class Inputs:
    """What goes into an attempt's workspace, and which of its files come out as artifacts."""

    source: Snapshot | GitSource | None = None
    needed: tuple[NeededArtifact, ...] = ()
    artifact_paths: tuple[str, ...] = field(default=())  # globs
    artifacts_always: bool = False  # collect even when the steps failed


@dataclass(frozen=True)
class ArtifactFile:
    """The header of one artifact upload."""

    name: str  # relative to the workspace, '/'-separated
    size: int  # exact byte count that follows
    mode: int  # permission bits
