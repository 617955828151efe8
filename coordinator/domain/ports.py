"""What the domain needs of durable state and of files, as Protocols; adapters implement them.

The domain never imports an implementation: `coordinator.app` builds the SQL store
(`coordinator.store`) and the local-disk files (`coordinator.storage`) and hands them over.

Every method of the store components is one transaction returning plain records, and blocks:
the domain calls them on its store thread (`Runtime.db`), never on the event loop. The file
methods block too and run on the I/O threads (`Runtime.io`), except the blob `commit` and
`remove`, which run on the store thread so they serialise with the rows that reference them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import BinaryIO, Protocol

from conveyor.states import Outcome, StepStatus
from coordinator.domain.access import SERVER_TOKEN_NAME
from coordinator.domain.artifact_records import (
    ArtifactRecord,
    Collected,
    Inputs,
    NewArtifact,
    SourceSpec,
)
from coordinator.domain.audit import AuditEvent
from coordinator.domain.delivery_records import DeploymentRecord, EnvironmentRecord, RollbackPlan
from coordinator.domain.notify_records import Delivery, NewTarget, TargetRecord, TryOutcome
from coordinator.domain.records import (
    AgentRecord,
    Assignment,
    AttemptEnd,
    BuildFilter,
    BuildRecord,
    BuildSummary,
    CancelResult,
    FarmCounts,
    LiveAttempt,
    NewJob,
    StepFinish,
    TokenRecord,
)
from coordinator.domain.repo_ports import RepoStore
from coordinator.domain.secret_records import SecretRecord
from coordinator.policy.conditions import MANUAL, BuildContext


class ApprovalStore(Protocol):
    """Approval gates' decisions; unknown builds and jobs raise NotFoundError."""

    def decide(
        self,
        build_id: int,
        job_name: str,
        *,
        approve: bool,
        by: str,
        comment: str,
        authorize: Callable[[Sequence[str]], None],
    ) -> BuildRecord:
        """Records the one decision on a waiting gate (after `authorize` with its roles) and
        moves the build on; ConflictError, nothing changed, when it is not waiting."""
        ...

    def expire_due(self) -> list[int]:
        """Fails waiting gates past their timeout; the ids of the builds that changed."""
        ...


class BuildStore(Protocol):
    """Builds and their jobs. Unknown ids raise NotFoundError."""

    def create(
        self,
        *,
        name: str,
        pipeline_yaml: str,
        source_name: str,
        env: Mapping[str, str],
        jobs: Sequence[NewJob],
        source: SourceSpec | None = None,
        context: BuildContext = MANUAL,
        actor: str = SERVER_TOKEN_NAME,
    ) -> int:
        """Stores a build and its jobs (those that need nothing already queued), started by
        `actor` (a token's name); its id."""
        ...

    def get(self, build_id: int) -> BuildRecord:
        """The build with its jobs, attempts and steps."""
        ...

    def list(self, limit: int, only: BuildFilter = ...) -> list[BuildSummary]:
        """The newest `limit` builds that `only` keeps, newest first, as summaries."""
        ...

    def cancel(self, build_id: int, by: str) -> CancelResult:
        """Cancels what has not run and flags what runs, audited as `by`'s; a final build is
        returned unchanged (and nothing is audited)."""
        ...

    def retry(self, build_id: int, job_name: str | None, by: str) -> BuildRecord:
        """Re-queues one finished job (or every unsuccessful one) and what needs it, audited.

        Raises ConflictError while any of those still runs, or when there is nothing to retry.
        """
        ...


class AgentStore(Protocol):
    """Agents as registered; the in-memory registry holds their sessions and liveness."""

    def find(self, name: str) -> AgentRecord | None:
        """The agent of this name, if it ever registered."""
        ...

    def register(
        self,
        *,
        name: str,
        labels: Mapping[str, str],
        capacity: int,
        session_hash: str,
        credential_hash: str | None = None,
        mode: str | None = None,
    ) -> AgentRecord:
        """Creates the agent, or updates the one of this name (ids are stable per name);
        `credential_hash` and `mode`, when given, replace the stored ones."""
        ...

    def list(self) -> list[AgentRecord]:
        """Every agent by name, each with its count of running attempts."""
        ...

    def set_mode(self, name: str, mode: str, by: str) -> AgentRecord:
        """Keeps an operator's mode (active, paused, draining), audited as `by`'s; NotFoundError
        for no such agent, ConflictError for a revoked one."""
        ...

    def revoke(self, name: str, by: str) -> AgentRecord:
        """Takes the agent's session and credential away for good (mode `revoked`), audited;
        NotFoundError for no such agent. Revoking a revoked agent changes nothing."""
        ...

    def touch(self, last_seen_ms: Mapping[int, int]) -> None:
        """Stores when each agent (by id) was last heard from, wall-clock milliseconds."""
        ...


class AttemptStore(Protocol):
    """Attempts: claimed by agents, stepped through, finished once."""

    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        """Atomically starts up to `slots` of the oldest queued jobs `labels` can run."""
        ...

    def start_step(self, attempt_id: int, index: int) -> bool:
        """Marks a step running; whether the attempt is asked to cancel. FencedError if ended."""
        ...

    def finish_step(
        self,
        attempt_id: int,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_length: int,
        log_lost_bytes: int = 0,
    ) -> None:
        """Records a step's end and its log's length. FencedError if the attempt has ended."""
        ...

    def finish(
        self,
        attempt_id: int,
        *,
        outcome: Outcome,
        reason: str,
        message: str,
        exit_code: int | None,
        step: StepFinish | None = None,
    ) -> AttemptEnd:
        """Records the attempt's result once (with `step`, the end of the step that ran last,
        first, in the same transaction), settles its job and moves the build on.

        A repeated finish changes nothing and returns the stored result (`already_recorded`).
        """
        ...

    def live(self) -> list[LiveAttempt]:
        """Every attempt not yet finished (leases are rebuilt from these after a restart)."""
        ...

    def result(self, attempt_id: int) -> tuple[Outcome | None, str, str]:
        """The stored outcome (None while running), reason and lease token of an attempt."""
        ...


class ArtifactIndex(Protocol):
    """Metadata of blobs, artifacts and build sources (the bytes are in BlobStorage)."""

    def inputs(self, attempt_id: int) -> Inputs: ...

    def add_blob(self, sha256: str, size: int) -> None:
        """Records an uploaded blob (a source snapshot); an existing one is kept."""
        ...

    def has_blob(self, sha256: str) -> bool: ...

    def artifact_digest(self, attempt_id: int, name: str) -> str | None:
        """The digest of the artifact of this name the attempt already uploaded, if any."""
        ...

    def check_room(self, build_id: int, size: int, max_bytes: int, max_count: int) -> None:
        """LimitError if one more artifact of `size` bytes would exceed the build's limits."""
        ...

    def add_artifact(self, new: NewArtifact, max_bytes: int, max_count: int) -> None:
        """Records an artifact whose blob is in place; the room is checked again, atomically."""
        ...

    def set_commit(self, build_id: int, commit: str, committed_at_ms: int | None) -> str:
        """Keeps the first commit a git source resolved to, and returns the one kept."""
        ...

    def artifacts(self, build_id: int) -> tuple[list[ArtifactRecord], SourceSpec | None]:
        """The artifacts of each job's latest attempt that kept any, and the build's source."""
        ...

    def blob_of_build(self, build_id: int, sha256: str) -> bool:
        """Whether the build references this blob (its source or one of its artifacts)."""
        ...

    def collect(self, cutoff_ms: int) -> Collected:
        """Forgets artifacts and sources of builds older than the cutoff (never the newest);
        returns the digests no longer referenced, which the caller then removes."""
        ...


class DeploymentIndex(Protocol):
    def environments(self) -> list[EnvironmentRecord]:
        """Every environment by name, with its current (latest successful) deployment."""
        ...

    def deployments(self, environment: str, limit: int) -> list[DeploymentRecord]:
        """Newest first; NotFoundError for an environment no pipeline named."""
        ...


class RollbackStore(Protocol):
    def plan(self, environment: str, to: int | None) -> RollbackPlan:
        """The deployment to redeploy and what its build froze; NotFoundError / ConflictError."""
        ...

    def create(self, plan: RollbackPlan, actor: str) -> int:
        """The rollback build (its one job queued); returns its id."""
        ...


class TokenStore(Protocol):
    """Named client tokens, kept as hashes; every change is audited in its own transaction."""

    def create(self, name: str, role: str, token_hash: str, by: str) -> TokenRecord:
        """Stores a new token; AlreadyExistsError when the name is taken."""
        ...

    def list(self) -> list[TokenRecord]:
        """Every token by name (never the secret, which is not kept)."""
        ...

    def revoke(self, name: str, by: str) -> TokenRecord:
        """Forgets the token: it is refused from the next call on; NotFoundError for none."""
        ...

    def authenticate(
        self, token_hash: str, now_ms: int, touch_before_ms: int
    ) -> TokenRecord | None:
        """The token of this hash, if any; its last use is set to `now_ms` when it was last
        used before `touch_before_ms` (so most calls only read)."""
        ...


class AuditStore(Protocol):
    def events(self, limit: int) -> list[AuditEvent]:
        """The newest `limit` events, newest first."""
        ...


class SecretStore(Protocol):
    """Secrets by name and scope, sealed: the store never holds a value in clear."""

    def put(self, name: str, scope: str, sealed: bytes, *, by: str) -> SecretRecord:
        """Sets (or replaces) the value of `name` for `scope` ("" for every job)."""
        ...

    def remove(self, name: str, scope: str, *, by: str) -> SecretRecord:
        """NotFoundError when `name` is not set for `scope`."""
        ...

    def list(self) -> list[SecretRecord]: ...

    def scopes(self, names: Collection[str]) -> dict[str, tuple[str, ...]]:
        """The scopes each name is set for; names set for none are left out."""
        ...


class SecretSealer(Protocol):
    """Encrypts secret values at rest; a sealed value opens only for the name and scope it was
    sealed for, and only with the key that sealed it."""

    def seal(self, name: str, scope: str, value: str) -> bytes: ...

    def open(self, name: str, scope: str, sealed: bytes) -> str:
        """SealError when `sealed` cannot be opened (another key, or damaged)."""
        ...


class StatsStore(Protocol):
    def ping(self) -> None:
        """Raises unless the database answers."""

    def counts(self, max_label_sets: int) -> FarmCounts:
        """Builds, jobs, queued label sets (the `max_label_sets` largest), deployments, blobs."""


class NotificationStore(Protocol):
    """Notification targets and their outbox (events are written by the other components'
    transactions, with the changes they tell of)."""

    def add(self, target: NewTarget, *, by: str) -> TargetRecord: ...

    def remove(self, target_id: int, *, by: str) -> TargetRecord:
        """NotFoundError for an unknown target."""
        ...

    def targets(self) -> list[TargetRecord]: ...

    def claim(self, now: int, limit: int, *, until: int) -> list[Delivery]:
        """At most `limit` events due by `now` (ms), each its target's oldest pending one,
        claimed until `until` (no other sender gets them before, unless released)."""
        ...

    def release(self, outbox_ids: Sequence[int], now: int) -> None: ...

    def record_try(
        self, outbox_id: int, outcome: TryOutcome, next_try_at_ms: int | None
    ) -> None: ...

    def prune(self, finished_before_ms: int, limit: int) -> int:
        """Deletes up to `limit` delivered or given-up events finished before the time (ms),
        with their tries; how many. Pending events are never deleted."""
        ...

    def tries(self, outbox_id: int) -> list[TryOutcome]: ...


class HttpPoster(Protocol):
    """Sends one POST and says how it went; never raises for the network or the answer."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> TryOutcome:
        """The answer's status (and, unless 2xx, the start of its body as the error), or no
        status and the error when there was no answer (refused, timed out, a TLS failure)."""
        ...

    async def close(self) -> None: ...


class StateStore(Protocol):
    """The durable state, one component per concern; what must outlive a coordinator is here."""

    @property
    def builds(self) -> BuildStore: ...

    @property
    def agents(self) -> AgentStore: ...

    @property
    def attempts(self) -> AttemptStore: ...

    @property
    def artifacts(self) -> ArtifactIndex: ...

    @property
    def approvals(self) -> ApprovalStore: ...

    @property
    def deployments(self) -> DeploymentIndex: ...

    @property
    def stats(self) -> StatsStore: ...

    @property
    def rollbacks(self) -> RollbackStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def secrets(self) -> SecretStore: ...

    @property
    def notifications(self) -> NotificationStore: ...

    @property
    def repos(self) -> RepoStore: ...

    def close(self) -> None: ...


class LogStorage(Protocol):
    """Step logs, append-only, one per (attempt, step): exact bytes, durable once acknowledged."""

    def append(
        self, attempt_id: int, step_index: int, offset: int, data: bytes
    ) -> tuple[int, bool]:
        """Stores `data` found at `offset`; returns (length held, accepted).

        Bytes already held are not written again; a chunk starting past the held length is a gap
        and is refused, and the sender resends from the returned length.
        """
        ...

    def length(self, attempt_id: int, step_index: int) -> int:
        """Bytes held; 0 for a log never written. Must cost no more than a stat (the loop
        calls it when a step ends)."""
        ...

    def read(self, attempt_id: int, step_index: int, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes from `offset`; empty at the end or for a log never written."""
        ...

    def forget(self, attempt_id: int, step_index: int) -> None:
        """The step has ended: no more appends will come (per-log resources may go)."""
        ...


class IncomingBlob(Protocol):
    """One blob being received; invisible to readers until committed."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: bytes) -> None: ...

    def seal(self, expected: str) -> str:
        """Makes the bytes durable and checks them; DigestError unless they hash to `expected`."""
        ...

    def open(self) -> BinaryIO:
        """The sealed bytes from the start, to check them before committing."""
        ...

    def commit(self, digest: str) -> None:
        """Makes the sealed blob visible under its digest (an existing copy is kept)."""
        ...

    def discard(self) -> None:
        """Drops the bytes; safe to call more than once, and after a failed seal."""
        ...


class BlobStorage(Protocol):
    """Content-addressed bytes (sha256), written whole or not at all."""

    def has(self, digest: str) -> bool: ...

    def begin(self) -> IncomingBlob: ...

    def open(self, digest: str) -> BinaryIO:
        """The blob's bytes; FileNotFoundError if it is not held."""
        ...

    def remove(self, digest: str) -> int:
        """Deletes a blob; the bytes freed (0 if it was not held)."""
        ...
