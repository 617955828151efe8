"""Plain immutable records the store hands out; never live ORM rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.states import BuildStatus, JobStatus, Outcome, StepStatus
from coordinator.domain.artifact_records import Inputs
from coordinator.domain.delivery_records import JobDelivery


@dataclass(frozen=True)
class StepRecord:
    index: int
    name: str
    status: StepStatus
    exit_code: int | None
    started_at_ms: int | None
    finished_at_ms: int | None
    log_length: int
    log_lost_bytes: int = 0


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    number: int
    agent_id: int
    agent_name: str
    outcome: Outcome | None
    reason: str
    message: str
    exit_code: int | None
    started_at_ms: int
    finished_at_ms: int | None
    steps: tuple[StepRecord, ...] = ()


@dataclass(frozen=True)
class GateSpec:
    """What makes a job an approval gate: it waits for a person instead of running steps."""

    prompt: str
    roles: tuple[str, ...]
    timeout_s: float | None


@dataclass(frozen=True)
class ApprovalRecord:
    """A gate as shown: its prompt, and the decision once taken ("" for each until then)."""

    prompt: str
    decision: str = ""
    by: str = ""
    at_ms: int | None = None
    comment: str = ""
    # Who may decide it (the gate's `roles`): the web view shows its buttons only to them.
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobRecord:
    name: str
    status: JobStatus
    needs: tuple[str, ...]
    labels: dict[str, str]
    reason: str
    message: str
    exit_code: int | None
    step_names: tuple[str, ...]
    attempts: tuple[AttemptRecord, ...] = ()
    approval: ApprovalRecord | None = None


@dataclass(frozen=True)
class Trigger:
    """What started a build from a repository: the event and the commit it builds."""

    event: str  # push, tag or schedule
    repo: str
    branch: str | None
    tag: str | None
    commit: str
    committed_at_ms: int | None
    message: str  # the first line, bounded
    author: str


@dataclass(frozen=True)
class BuildRecord:
    id: int
    name: str
    status: BuildStatus
    created_at_ms: int
    finished_at_ms: int | None
    cancel_requested: bool
    jobs: tuple[JobRecord, ...] = ()
    event: str = "manual"
    branch: str | None = None
    tag: str | None = None
    redeploys: int | None = None
    """For a rollback: the deployment it deploys again."""
    started_by: str = "admin"  # the name of the token it was submitted with
    trigger: Trigger | None = None  # for a build a watched repository started
    error: str | None = None  # why it failed with no jobs (an invalid pipeline file)

    def job(self, name: str) -> JobRecord | None:
        return next((job for job in self.jobs if job.name == name), None)


@dataclass(frozen=True)
class BuildSummary:
    """A build as listed: no jobs, only how many (a list of builds stays small whatever they
    hold: 1,000 builds of 200 jobs with 100 steps each would not fit in one gRPC message)."""

    id: int
    name: str
    status: BuildStatus
    created_at_ms: int
    finished_at_ms: int | None
    cancel_requested: bool
    job_count: int
    event: str = "manual"
    branch: str | None = None
    tag: str | None = None
    redeploys: int | None = None
    started_by: str = "admin"
    trigger: Trigger | None = None
    error: str | None = None


@dataclass(frozen=True)
class BuildFilter:
    """Which builds a listing keeps: every field left empty keeps all."""

    statuses: tuple[BuildStatus, ...] = ()
    name: str | None = None
    """The pipeline's name, exactly."""
    branch: str | None = None


@dataclass(frozen=True)
class StepSpecRecord:
    name: str
    image: str
    run: str
    env: dict[str, str]
    timeout_s: float | None
    user: str = ""
    """Runs as this user; "": the image's. (Absent from specs stored before it existed.)"""


@dataclass(frozen=True)
class JobSpecRecord:
    """What a job runs, resolved at submission (images and env merged)."""

    steps: tuple[StepSpecRecord, ...]
    timeout_s: float | None
    retry_max: int
    retry_when: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    """Names of the stored secrets its steps get as env (only names: values are never here)."""
    privileged: bool = False
    """Its steps run as privileged containers (only on agents that allow it)."""
    interruptible: bool = False
    """A newer push to the build's branch cancels it (reason `superseded`) while queued or
    running."""
    artifact_paths: tuple[str, ...] | None = None
    """Its `artifacts.paths`; None in specs stored before the rule was frozen here, whose rule
    is read from the build's recorded pipeline instead."""
    artifacts_always: bool = False
    """`artifacts.when: always`: kept from a failed attempt too."""


@dataclass(frozen=True)
class SealedSecret:
    """A secret a claimed job names, as stored: encrypted, with the scope it was found under
    ("" for every job); `sealed` is None when no secret of that name applies any more."""

    name: str
    scope: str
    sealed: bytes | None = field(repr=False)


@dataclass(frozen=True)
class NewJob:
    name: str
    needs: tuple[str, ...]
    labels: dict[str, str]
    spec: JobSpecRecord
    skipped: str = ""
    """Why its `when:` is false for this build (it ends skipped at once); "" when it runs."""
    gate: GateSpec | None = None
    delivery: JobDelivery | None = None


@dataclass(frozen=True)
class StepEnd:
    """How a step ended, as its agent reports it."""

    index: int
    outcome: Outcome
    exit_code: int | None
    log_lost_bytes: int = 0


@dataclass(frozen=True)
class StepFinish:
    """A step's end as the store records it, with the length of the log held for it."""

    index: int
    status: StepStatus
    exit_code: int | None
    log_length: int
    log_lost_bytes: int = 0


@dataclass(frozen=True)
class StepContext:
    """The build's event, branch and tag and the job's environment, as its steps see them
    ("" where none applies)."""

    event: str = "manual"
    branch: str = ""
    tag: str = ""
    environment: str = ""


@dataclass(frozen=True)
class Assignment:
    attempt_id: int
    lease_token: str
    build_id: int
    job_name: str
    attempt_number: int
    spec: JobSpecRecord
    sealed_secrets: tuple[SealedSecret, ...] = ()
    # In clear, only between the claim and the agent's poll answer; never printed.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    # How long the job waited in the queue before this claim; None if unknown (queued before
    # the coordinator recorded when).
    queued_for_ms: int | None = None
    context: StepContext = StepContext()
    """What the build is of, for the steps' CONVEYOR_* variables."""
    inputs: Inputs | None = None
    """What the attempt starts from, read by the claim: handed over with the assignment, so
    the agent need not ask GetInputs (None: it must)."""


@dataclass(frozen=True)
class LiveAttempt:
    """A running attempt as the lease table needs it."""

    attempt_id: int
    agent_id: int
    build_id: int
    lease_token: str
    cancel_requested: bool
    # Steps the attempt has (indexes 0..step_count-1); None where the caller does not need it.
    step_count: int | None = None


@dataclass(frozen=True)
class AttemptEnd:
    """What finishing an attempt changed, so the caller can wake the right waiters."""

    build_id: int
    outcome: Outcome
    reason: str
    jobs_queued: bool
    already_recorded: bool = False
    # Labels of each job it queued (dependents now free to run, or the job itself for a retry).
    queued_labels: tuple[dict[str, str], ...] = ()
    # Other builds it changed (a freed lock skipped their outdated or superseded jobs).
    changed_builds: tuple[int, ...] = ()


@dataclass(frozen=True)
class CancelResult:
    build: BuildRecord
    running: tuple[LiveAttempt, ...] = ()


@dataclass(frozen=True)
class AgentRecord:
    id: int
    name: str
    labels: dict[str, str]
    capacity: int
    session_hash: str
    last_seen_ms: int
    running: int = 0
    mode: str = "active"
    credential_hash: str = ""  # SHA-256 of the agent's own credential; "" before it had one


@dataclass(frozen=True)
class QueueView:
    """Queued jobs of one build with their labels, for explaining why they wait."""

    labels_by_job: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenRecord:
    """A named client token as kept: never its secret, which only its holder has."""

    name: str
    role: str
    created_at_ms: int
    last_used_ms: int | None = None


@dataclass(frozen=True)
class FarmCounts:
    """Builds and jobs by status, queued jobs by label set (`k=v,...`), deployments by
    (environment, status), and the bytes of stored blobs (artifacts and sources)."""

    builds: Mapping[str, int]
    jobs: Mapping[str, int]
    queued_by_labels: Mapping[str, int]
    deployments: Mapping[tuple[str, str], int]
    blob_bytes: int
