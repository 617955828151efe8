"""In-memory stand-ins for the domain's ports, scripted by the tests that use them.

They are as small as the tests need and record what the domain asked of them; mypy checks them
against the Protocols in `coordinator.domain.ports` wherever they are handed to the domain.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from conveyor.states import BuildStatus, JobStatus, Outcome, StepStatus
from coordinator.config import CoordinatorConfig
from coordinator.domain.artifact_records import (
    ArtifactRecord,
    Collected,
    Inputs,
    NewArtifact,
    SourceSpec,
)
from coordinator.domain.audit import AuditEvent
from coordinator.domain.build_filter import EVERY_BUILD
from coordinator.domain.content import DigestError
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.delivery_records import DeploymentRecord, EnvironmentRecord, RollbackPlan
from coordinator.domain.errors import AlreadyExistsError, NotFoundError
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
    JobRecord,
    JobSpecRecord,
    LiveAttempt,
    NewJob,
    StepFinish,
    StepSpecRecord,
    TokenRecord,
)
from coordinator.domain.repo_records import CheckResult, NewBuild, RepoRecord
from coordinator.domain.secret_records import SecretRecord
from coordinator.policy.conditions import MANUAL, BuildContext
from coordinator.storage.secretbox import SecretBox, generate_key

# Two steps: the coordinator refuses step indexes outside the attempt's steps.
SPEC = JobSpecRecord(
    steps=tuple(StepSpecRecord(f"s{i}", "img", "true", {}, None) for i in range(2)),
    timeout_s=None,
    retry_max=0,
    retry_when=(),
)


def job(
    name: str, status: JobStatus = JobStatus.QUEUED, labels: Mapping[str, str] | None = None
) -> JobRecord:
    return JobRecord(name, status, (), dict(labels or {}), "", "", None, ("s0", "s1"))


def build(build_id: int = 1, *jobs: JobRecord) -> BuildRecord:
    status = BuildStatus.SUCCEEDED if all(j.status.final for j in jobs) else BuildStatus.RUNNING
    return BuildRecord(build_id, "b", status, 0, None, False, tuple(jobs))


@dataclass
class FakeBuilds:
    records: dict[int, BuildRecord] = field(default_factory=dict)
    created: list[dict[str, object]] = field(default_factory=list)
    running: tuple[LiveAttempt, ...] = ()  # what a cancel finds running
    limits: list[int] = field(default_factory=list)

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
        actor: str = "admin",
    ) -> int:
        del context
        self.created.append(
            {"name": name, "source_name": source_name, "source": source, "actor": actor}
        )
        build_id = len(self.created)
        self.records[build_id] = build(build_id, *(job(j.name, labels=j.labels) for j in jobs))
        return build_id

    def get(self, build_id: int) -> BuildRecord:
        if build_id not in self.records:
            raise NotFoundError(f"build {build_id} does not exist")
        return self.records[build_id]

    def list(self, limit: int, only: BuildFilter = EVERY_BUILD) -> list[BuildSummary]:
        self.limits.append(limit)
        return [
            BuildSummary(
                b.id, b.name, b.status, b.created_at_ms, b.finished_at_ms, False, len(b.jobs)
            )
            for b in list(self.records.values())[:limit]
        ]

    def cancel(self, build_id: int, by: str = "admin") -> CancelResult:
        return CancelResult(self.get(build_id), self.running)

    def retry(self, build_id: int, job_name: str | None, by: str = "admin") -> BuildRecord:
        return self.get(build_id)


@dataclass
class FakeAgents:
    rows: dict[str, AgentRecord] = field(default_factory=dict)
    touched: list[dict[int, int]] = field(default_factory=list)

    def find(self, name: str) -> AgentRecord | None:
        return self.rows.get(name)

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
        old = self.rows.get(name)
        agent_id = old.id if old is not None else len(self.rows) + 1
        record = AgentRecord(
            agent_id,
            name,
            dict(labels),
            capacity,
            session_hash,
            0,
            mode=mode if mode is not None else (old.mode if old else "active"),
            credential_hash=(
                credential_hash
                if credential_hash is not None
                else (old.credential_hash if old else "")
            ),
        )
        self.rows[name] = record
        return record

    def list(self) -> list[AgentRecord]:
        return sorted(self.rows.values(), key=lambda r: r.name)

    def set_mode(self, name: str, mode: str, by: str = "admin") -> AgentRecord:
        if name not in self.rows:
            raise NotFoundError(f"no agent named '{name}'")
        record = self.rows[name]
        self.rows[name] = AgentRecord(
            record.id,
            name,
            record.labels,
            record.capacity,
            record.session_hash,
            0,
            mode=mode,
            credential_hash=record.credential_hash,
        )
        return self.rows[name]

    def revoke(self, name: str, by: str) -> AgentRecord:
        record = self.set_mode(name, "revoked", by)
        self.rows[name] = replace(record, session_hash="", credential_hash="")
        return self.rows[name]

    def touch(self, last_seen_ms: Mapping[int, int]) -> None:
        self.touched.append(dict(last_seen_ms))


@dataclass
class FakeAttempts:
    """Queued jobs are (name, labels); every claim starts attempt ids 1, 2, ... with build 1."""

    queued: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    running: list[LiveAttempt] = field(default_factory=list)
    ends: dict[int, AttemptEnd] = field(default_factory=dict)  # scripted finish results
    results: dict[int, tuple[Outcome | None, str, str]] = field(default_factory=dict)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    next_attempt: int = 1

    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        self.calls.append(("claim", agent_id, slots))
        taken = [j for j in self.queued if all(labels.get(k) == v for k, v in j[1].items())]
        assignments = []
        for name, _ in taken[:slots]:
            self.queued.remove((name, _))
            attempt_id, self.next_attempt = self.next_attempt, self.next_attempt + 1
            token = f"token-{attempt_id}"
            self.results[attempt_id] = (None, "", token)
            assignments.append(Assignment(attempt_id, token, 1, name, 1, SPEC))
        return assignments

    def start_step(self, attempt_id: int, index: int) -> bool:
        self.calls.append(("start_step", attempt_id, index))
        return False

    def finish_step(
        self,
        attempt_id: int,
        index: int,
        status: StepStatus,
        exit_code: int | None,
        log_length: int,
        log_lost_bytes: int = 0,
    ) -> None:
        self.calls.append(("finish_step", attempt_id, index, status, exit_code, log_length))

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
        if step is not None:
            self.finish_step(
                attempt_id,
                step.index,
                step.status,
                step.exit_code,
                step.log_length,
                step.log_lost_bytes,
            )
        self.calls.append(("finish", attempt_id, outcome, reason))
        stored, _, token = self.results.get(attempt_id, (None, "", ""))
        if stored is not None:
            raise AssertionError(f"attempt {attempt_id} finished twice in the store")
        self.results[attempt_id] = (outcome, reason, token)
        return self.ends.get(attempt_id, AttemptEnd(1, outcome, reason, jobs_queued=False))

    def live(self) -> list[LiveAttempt]:
        return list(self.running)

    def result(self, attempt_id: int) -> tuple[Outcome | None, str, str]:
        if attempt_id not in self.results:
            raise NotFoundError(f"attempt {attempt_id} does not exist")
        return self.results[attempt_id]

    def finished(self) -> list[tuple[object, ...]]:
        return [call for call in self.calls if call[0] == "finish"]


@dataclass
class FakeIndex:
    blobs: dict[str, int] = field(default_factory=dict)
    artifacts_added: list[NewArtifact] = field(default_factory=list)
    inputs_of: dict[int, Inputs] = field(default_factory=dict)

    def inputs(self, attempt_id: int) -> Inputs:
        return self.inputs_of[attempt_id]

    def add_blob(self, sha256: str, size: int) -> None:
        self.blobs.setdefault(sha256, size)

    def has_blob(self, sha256: str) -> bool:
        return sha256 in self.blobs

    def check_room(self, build_id: int, size: int, max_bytes: int, max_count: int) -> None:
        pass

    def artifact_digest(self, attempt_id: int, name: str) -> str | None:
        held = [
            a.sha256 for a in self.artifacts_added if (a.attempt_id, a.name) == (attempt_id, name)
        ]
        return held[-1] if held else None

    def add_artifact(self, new: NewArtifact, max_bytes: int, max_count: int) -> None:
        self.artifacts_added.append(new)

    def set_commit(self, build_id: int, commit: str, committed_at_ms: int | None) -> str:
        return commit

    def artifacts(self, build_id: int) -> tuple[list[ArtifactRecord], SourceSpec | None]:
        return [], None

    def blob_of_build(self, build_id: int, sha256: str) -> bool:
        return sha256 in self.blobs

    def collect(self, cutoff_ms: int) -> Collected:
        return Collected(0, ())


class FakeApprovals:
    """No gates: the logic tests that use these fakes submit none."""

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
        raise NotFoundError(f"build {build_id} has no gate {job_name!r}")

    def expire_due(self) -> list[int]:
        return []


class NoDeployments:
    """No pipeline has deployed anywhere."""

    def environments(self) -> list[EnvironmentRecord]:
        return []

    def deployments(self, environment: str, limit: int) -> list[DeploymentRecord]:
        raise NotFoundError(f"environment {environment!r} does not exist")


class NoRollbacks:
    """Nothing was deployed, so nothing can be rolled back."""

    def plan(self, environment: str, to: int | None) -> RollbackPlan:
        raise NotFoundError(f"environment {environment!r} does not exist")

    def create(self, plan: RollbackPlan, actor: str) -> int:
        raise NotFoundError(f"deployment {plan.redeploys} does not exist")


@dataclass
class FakeTokens:
    """Named tokens by hash; the audit trail is the store's, tested on the real one."""

    rows: dict[str, tuple[TokenRecord, str]] = field(default_factory=dict)

    def create(self, name: str, role: str, token_hash: str, by: str) -> TokenRecord:
        if name in self.rows:
            raise AlreadyExistsError(f"a token named {name!r} exists")
        self.rows[name] = (TokenRecord(name, role, 0), token_hash)
        return self.rows[name][0]

    def list(self) -> list[TokenRecord]:
        return [record for record, _ in sorted(self.rows.values())]

    def revoke(self, name: str, by: str) -> TokenRecord:
        if name not in self.rows:
            raise NotFoundError(f"no token named {name!r}")
        return self.rows.pop(name)[0]

    def authenticate(
        self, token_hash: str, now_ms: int, touch_before_ms: int
    ) -> TokenRecord | None:
        return next((r for r, h in self.rows.values() if h == token_hash), None)


class NoAudit:
    def events(self, limit: int) -> list[AuditEvent]:
        return []


@dataclass
class FakeSecrets:
    """Secrets by (name, scope), sealed as the domain hands them over."""

    sealed: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def put(self, name: str, scope: str, sealed: bytes, *, by: str) -> SecretRecord:
        self.sealed[name, scope] = sealed
        return SecretRecord(name, scope, 1, by)

    def remove(self, name: str, scope: str, *, by: str) -> SecretRecord:
        if self.sealed.pop((name, scope), None) is None:
            raise NotFoundError(f"no secret {name!r}")
        return SecretRecord(name, scope, 1, by)

    def list(self) -> list[SecretRecord]:
        return [SecretRecord(name, scope, 1, "admin") for name, scope in sorted(self.sealed)]

    def scopes(self, names: Collection[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for name, scope in sorted(self.sealed):
            if name in names:
                found[name] = (*found.get(name, ()), scope)
        return found


def sealer() -> SecretBox:
    """A real sealer with a key of its own (given, so it never writes a key file)."""
    return SecretBox(Path(tempfile.gettempdir()) / "unused.key", generate_key())


@dataclass
class FakeNotifications:
    """An outbox in memory: `pending` holds the deliveries not yet done, oldest first; each
    recorded try is kept in `tried` as (delivery id, outcome, next try)."""

    pending: list[Delivery] = field(default_factory=list)
    tried: list[tuple[int, TryOutcome, int | None]] = field(default_factory=list)
    due_at: dict[int, int] = field(default_factory=dict)
    released: list[int] = field(default_factory=list)

    def add(self, target: NewTarget, *, by: str) -> TargetRecord:
        return TargetRecord(1, target.kind, target.url, target.repo, target.events, False, 1, by)

    def remove(self, target_id: int, *, by: str) -> TargetRecord:
        raise NotFoundError(f"no notification target {target_id}")

    def targets(self) -> list[TargetRecord]:
        return []

    def claim(self, now: int, limit: int, *, until: int) -> list[Delivery]:
        heads: dict[int, Delivery] = {}
        for delivery in self.pending:
            heads.setdefault(delivery.target_id, delivery)
        ready = [d for d in heads.values() if self.due_at.get(d.id, 0) <= now][:limit]
        self.due_at.update({d.id: until for d in ready})
        return ready

    def release(self, outbox_ids: Sequence[int], now: int) -> None:
        self.released.extend(outbox_ids)
        self.due_at.update({i: now for i in outbox_ids})

    def record_try(self, outbox_id: int, outcome: TryOutcome, next_try_at_ms: int | None) -> None:
        self.tried.append((outbox_id, outcome, next_try_at_ms))
        index = next(i for i, d in enumerate(self.pending) if d.id == outbox_id)
        if outcome.delivered or next_try_at_ms is None:
            del self.pending[index]
            return
        self.pending[index] = replace(self.pending[index], tries=self.pending[index].tries + 1)
        self.due_at[outbox_id] = next_try_at_ms

    def prune(self, finished_before_ms: int, limit: int) -> int:
        return 0  # done deliveries are not kept here

    def tries(self, outbox_id: int) -> list[TryOutcome]:
        return [outcome for i, outcome, _ in self.tried if i == outbox_id]


class NoStats:
    def ping(self) -> None:
        pass

    def counts(self, max_label_sets: int) -> FarmCounts:
        return FarmCounts({}, {}, {}, {}, 0)


class NoRepos:
    """No watched repositories: the logic tests here never add one."""

    def add(self, repo: RepoRecord) -> RepoRecord:
        raise NotImplementedError

    def remove(self, name: str, by: str) -> RepoRecord:
        raise NotFoundError(name)

    def list(self) -> list[RepoRecord]:
        return []

    def get(self, name: str) -> RepoRecord:
        raise NotFoundError(name)

    def due(self, now: int, limit: int) -> builtins.list[RepoRecord]:
        return []

    def record_check(
        self,
        name: str,
        *,
        seen: Mapping[str, str],
        heads: Mapping[str, str],
        builds: Sequence[NewBuild],
        schedules: Mapping[str, int],
        schedules_commit: str,
        next_check_ms: int,
        supersede: bool,
    ) -> CheckResult:
        raise NotFoundError(name)

    def record_failure(self, name: str, error: str, next_check_ms: int) -> None:
        raise NotFoundError(name)


@dataclass
class FakeState:
    builds: FakeBuilds = field(default_factory=FakeBuilds)
    agents: FakeAgents = field(default_factory=FakeAgents)
    attempts: FakeAttempts = field(default_factory=FakeAttempts)
    artifacts: FakeIndex = field(default_factory=FakeIndex)
    approvals: FakeApprovals = field(default_factory=FakeApprovals)
    deployments: NoDeployments = field(default_factory=NoDeployments)
    rollbacks: NoRollbacks = field(default_factory=NoRollbacks)
    tokens: FakeTokens = field(default_factory=FakeTokens)
    audit: NoAudit = field(default_factory=NoAudit)
    secrets: FakeSecrets = field(default_factory=FakeSecrets)
    stats: NoStats = field(default_factory=NoStats)
    notifications: FakeNotifications = field(default_factory=FakeNotifications)
    repos: NoRepos = field(default_factory=NoRepos)
    closed: bool = False

    def close(self) -> None:
        self.closed = True


class MemoryLogs:
    def __init__(self) -> None:
        self.logs: dict[tuple[int, int], bytes] = {}
        self.forgotten: list[tuple[int, int]] = []

    def append(
        self, attempt_id: int, step_index: int, offset: int, data: bytes
    ) -> tuple[int, bool]:
        held = self.logs.get((attempt_id, step_index), b"")
        if offset > len(held):
            return len(held), False
        self.logs[(attempt_id, step_index)] = held + data[len(held) - offset :]
        return len(self.logs[(attempt_id, step_index)]), True

    def length(self, attempt_id: int, step_index: int) -> int:
        return len(self.logs.get((attempt_id, step_index), b""))

    def read(self, attempt_id: int, step_index: int, offset: int, limit: int) -> bytes:
        return self.logs.get((attempt_id, step_index), b"")[offset : offset + limit]

    def forget(self, attempt_id: int, step_index: int) -> None:
        self.forgotten.append((attempt_id, step_index))


class MemoryIncoming:
    def __init__(self, blobs: MemoryBlobs) -> None:
        self._blobs = blobs
        self._data = bytearray()
        self.sealed = False
        self.discarded = False

    @property
    def size(self) -> int:
        return len(self._data)

    def write(self, data: bytes) -> None:
        self._data += data

    def seal(self, expected: str) -> str:
        actual = hashlib.sha256(self._data).hexdigest()
        if actual != expected:
            raise DigestError(f"digest mismatch: sent {expected}, received bytes hash to {actual}")
        self.sealed = True
        return actual

    def open(self) -> BinaryIO:
        return io.BytesIO(bytes(self._data))

    def commit(self, digest: str) -> None:
        assert self.sealed
        self._blobs.held.setdefault(digest, bytes(self._data))

    def discard(self) -> None:
        self.discarded = True


class MemoryBlobs:
    def __init__(self) -> None:
        self.held: dict[str, bytes] = {}
        self.incoming: list[MemoryIncoming] = []

    def has(self, digest: str) -> bool:
        return digest in self.held

    def begin(self) -> MemoryIncoming:
        self.incoming.append(MemoryIncoming(self))
        return self.incoming[-1]

    def open(self, digest: str) -> BinaryIO:
        if digest not in self.held:
            raise FileNotFoundError(digest)
        return io.BytesIO(self.held[digest])

    def remove(self, digest: str) -> int:
        return len(self.held.pop(digest, b""))


def config(*, poll_timeout_s: float = 0.2) -> CoordinatorConfig:
    """Settings for a coordinator over fakes (which write nothing to the data dir)."""
    return CoordinatorConfig(
        data_dir=Path(tempfile.gettempdir()) / "unused",
        agent_token="a",
        client_token="c",
        poll_timeout_s=poll_timeout_s,
    )


@dataclass
class Harness:
    core: Coordinator
    state: FakeState
    logs: MemoryLogs
    blobs: MemoryBlobs


def coordinator(state: FakeState | None = None, *, poll_timeout_s: float = 0.2) -> Harness:
    state = state or FakeState()
    logs, blobs = MemoryLogs(), MemoryBlobs()
    core = Coordinator(
        config(poll_timeout_s=poll_timeout_s),
        store=state,
        logs=logs,
        blobs=blobs,
        sealer=sealer(),
    )
    return Harness(core, state, logs, blobs)
