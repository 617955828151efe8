"""Tokens and the audit trail on the store (both backends): hashes only, each change audited in
its own transaction, once, under the name of whoever made it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import BuildStatus
from coordinator.domain.access import Principal, check_role
from coordinator.domain.audit import AuditAction
from coordinator.domain.errors import AlreadyExistsError, ConflictError, NotFoundError, RoleError
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store, audit
from coordinator.store.base import transaction
from tests.unit.coordinator.test_gates_store import decide, waiting_gate
from tests.unit.coordinator.test_store import SINGLE, submit


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


def trail(store: Store) -> list[tuple[str, str, str, str]]:
    """(by, action, target, detail) of every event, newest first."""
    return [(e.by, e.action, e.target, e.detail) for e in store.audit.events(100)]


def test_a_token_is_kept_by_hash_and_found_by_it(store: Store) -> None:
    made = store.tokens.create("ci", "developer", "h" * 64, "admin")
    assert (made.name, made.role, made.last_used_ms) == ("ci", "developer", None)
    with pytest.raises(AlreadyExistsError, match="'ci' exists"):
        store.tokens.create("ci", "viewer", "g" * 64, "admin")
    assert store.tokens.authenticate("x" * 64, 1000, 0) is None
    found = store.tokens.authenticate("h" * 64, 5000, 4000)
    assert found is not None and (found.name, found.last_used_ms) == ("ci", 5000)
    # Used again within the interval: only read, the stamp stays.
    again = store.tokens.authenticate("h" * 64, 6000, 4000)
    assert again is not None and again.last_used_ms == 5000
    assert [t.name for t in store.tokens.list()] == ["ci"]
    assert store.tokens.revoke("ci", "boss").role == "developer"
    assert store.tokens.authenticate("h" * 64, 7000, 0) is None
    with pytest.raises(NotFoundError):
        store.tokens.revoke("ci", "boss")
    assert trail(store) == [
        ("boss", "token_revoke", "ci", "role developer"),
        ("admin", "token_create", "ci", "role developer"),
    ]


def test_an_event_commits_or_rolls_back_with_its_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), transaction(store.engine) as session:
        audit.record(session, "someone", AuditAction.SECRET_SET, "DEPLOY_TOKEN")
        raise RuntimeError("the change failed after its event was added")
    assert trail(store) == []
    with transaction(store.engine) as session:
        audit.record(session, "someone", AuditAction.SECRET_SET, "DEPLOY_TOKEN", "x" * 5000)
    [event] = store.audit.events(10)
    assert (event.by, event.action, len(event.detail)) == ("someone", "secret_set", 2000)


def test_cancel_and_retry_are_audited_once_under_their_callers_name(store: Store) -> None:
    build_id = submit(store, SINGLE)
    assert store.builds.get(build_id).started_by == "admin"
    store.builds.cancel(build_id, "dev")
    store.builds.cancel(build_id, "dev")  # already final: nothing changes, nothing recorded
    store.builds.retry(build_id, "only", "ops")
    with pytest.raises(ConflictError):
        store.builds.retry(build_id, "only", "ops")  # still running: refused, not recorded
    assert trail(store) == [
        ("ops", "retry", f"build {build_id}", "job only"),
        ("dev", "cancel", f"build {build_id}", ""),
    ]
    assert store.builds.get(build_id).status is BuildStatus.RUNNING


def test_a_build_keeps_who_started_it(store: Store) -> None:
    pipeline = load_pipeline(SINGLE)
    build_id = store.builds.create(
        name="single",
        pipeline_yaml=SINGLE,
        source_name="p.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
        actor="alice",
    )
    assert store.builds.get(build_id).started_by == "alice"
    assert store.builds.list(1)[0].started_by == "alice"


def test_a_decision_is_audited_and_a_refused_one_is_not(store: Store) -> None:
    agent_id = store.agents.register(name="a", labels={}, capacity=4, session_hash="").id
    build_id = waiting_gate(store, agent_id)
    viewer = Principal("peek", "viewer")

    def as_viewer(roles: Sequence[str]) -> None:
        check_role(viewer, roles, "approve")

    with pytest.raises(RoleError, match="token 'peek' \\(role viewer\\) may not approve"):
        store.approvals.decide(
            build_id, "ship-it", approve=True, by="peek", comment="", authorize=as_viewer
        )
    assert trail(store) == []
    decide(store, build_id, approve=True, comment="pumpkins are fine")
    assert trail(store) == [
        ("admin", "approve", f"build {build_id} job ship-it", "pumpkins are fine")
    ]


def test_agent_modes_and_a_revocation_are_audited(store: Store) -> None:
    store.agents.register(name="w", labels={}, capacity=1, session_hash="s", credential_hash="c")
    store.agents.set_mode("w", "paused", "ops")
    store.agents.set_mode("w", "draining", "ops")
    store.agents.set_mode("w", "active", "ops")
    revoked = store.agents.revoke("w", "boss")
    assert (revoked.mode, revoked.session_hash, revoked.credential_hash) == ("revoked", "", "")
    store.agents.revoke("w", "boss")  # once revoked, again changes nothing
    with pytest.raises(ConflictError, match="was revoked"):
        store.agents.set_mode("w", "active", "ops")
    with pytest.raises(NotFoundError):
        store.agents.revoke("nobody", "boss")
    assert [(by, action) for by, action, _, _ in trail(store)] == [
        ("boss", "agent_revoke"),
        ("ops", "agent_resume"),
        ("ops", "agent_drain"),
        ("ops", "agent_pause"),
    ]
    assert store.agents.find("w") is not None
