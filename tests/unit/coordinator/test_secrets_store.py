"""Secrets in the store (both backends): sealed values by name and scope, never a value out
of `list`, and the claim picking the environment's own over the unscoped one."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from coordinator.domain.errors import NotFoundError
from coordinator.domain.records import SealedSecret
from coordinator.store import Store
from tests.unit.coordinator.test_store import agent_id, claim_one, submit

__all__ = ["agent_id"]

PIPELINE = """\
name: p
image: conveyor/busybox
jobs:
  build:
    secrets: [TOKEN]
    steps: [{run: "true"}]
  deploy:
    environment: production
    secrets: [TOKEN, ONLY_PROD]
    steps: [{run: "true"}]
"""


def test_put_replaces_and_list_shows_names_scopes_and_who_never_values(store: Store) -> None:
    store.secrets.put("TOKEN", "", b"sealed-1", by="admin")
    store.secrets.put("TOKEN", "production", b"sealed-2", by="alice")
    changed = store.secrets.put("TOKEN", "", b"sealed-3", by="bob")
    assert (changed.name, changed.scope, changed.updated_by) == ("TOKEN", "", "bob")
    listed = store.secrets.list()
    assert [(s.name, s.scope, s.updated_by) for s in listed] == [
        ("TOKEN", "", "bob"),
        ("TOKEN", "production", "alice"),
    ]
    assert all(s.updated_at_ms > 0 for s in listed)
    assert store.secrets.scopes(["TOKEN", "OTHER"]) == {"TOKEN": ("", "production")}
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT name, scope, sealed FROM secrets ORDER BY scope"))
        assert [(n, s, bytes(v)) for n, s, v in rows] == [
            ("TOKEN", "", b"sealed-3"),
            ("TOKEN", "production", b"sealed-2"),
        ]


def test_remove_takes_one_scope_and_an_unknown_one_is_not_found(store: Store) -> None:
    store.secrets.put("TOKEN", "", b"a", by="admin")
    store.secrets.put("TOKEN", "production", b"b", by="admin")
    store.secrets.remove("TOKEN", "production", by="admin")
    assert [(s.name, s.scope) for s in store.secrets.list()] == [("TOKEN", "")]
    with pytest.raises(NotFoundError, match="no secret 'TOKEN' for environment production"):
        store.secrets.remove("TOKEN", "production", by="admin")
    # Each change is audited once, naming the secret and its scope; the refused one is not.
    events = [(e.action, e.target, e.detail) for e in reversed(store.audit.events(10))]
    assert events == [
        ("secret_set", "TOKEN", "every job"),
        ("secret_set", "TOKEN", "environment production"),
        ("secret_remove", "TOKEN", "environment production"),
    ]


def test_a_claim_hands_the_environments_own_value_to_its_deployment_job_only(
    store: Store, agent_id: int
) -> None:
    store.secrets.put("TOKEN", "", b"every-job", by="admin")
    store.secrets.put("TOKEN", "production", b"prod-only", by="admin")
    store.secrets.put("ONLY_PROD", "production", b"prod-2", by="admin")
    submit(store, PIPELINE)
    claimed = {a.job_name: a for a in store.attempts.claim(agent_id, {}, 2)}
    assert claimed["build"].spec.secrets == ("TOKEN",)
    assert claimed["build"].sealed_secrets == (SealedSecret("TOKEN", "", b"every-job"),)
    assert claimed["deploy"].sealed_secrets == (
        SealedSecret("TOKEN", "production", b"prod-only"),
        SealedSecret("ONLY_PROD", "production", b"prod-2"),
    )


def test_a_secret_removed_after_submission_is_claimed_as_missing(
    store: Store, agent_id: int
) -> None:
    store.secrets.put("TOKEN", "", b"every-job", by="admin")
    submit(store, PIPELINE.split("  deploy:", maxsplit=1)[0])
    store.secrets.remove("TOKEN", "", by="admin")
    assert claim_one(store, agent_id).sealed_secrets == (SealedSecret("TOKEN", "", None),)


def test_the_stored_job_spec_holds_secret_names_only(store: Store) -> None:
    store.secrets.put("TOKEN", "", b"every-job", by="admin")
    submit(store, PIPELINE.split("  deploy:", maxsplit=1)[0])
    with store.engine.connect() as connection:
        spec = connection.execute(text("SELECT spec_json FROM jobs")).scalar_one()
    assert '"secrets": ["TOKEN"]' in spec
    assert "every-job" not in spec
