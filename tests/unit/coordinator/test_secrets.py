"""Secrets in the domain: who may change them, which values are refused (without echoing them),
which submissions name secrets no job would get, and sealing at rest."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.pipeline import load_pipeline
from conveyor.states import Outcome, Reason
from coordinator.domain.access import Principal
from coordinator.domain.attempts import Claims
from coordinator.domain.errors import RoleError, SealError
from coordinator.domain.leases import LeaseTable
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.records import Assignment, JobSpecRecord, SealedSecret
from coordinator.domain.runtime import Runtime
from coordinator.domain.secrets import missing_secrets, open_secrets
from coordinator.storage.secretbox import SecretBox, SecretKeyError, generate_key
from tests.unit.coordinator.fakes import FakeAttempts, coordinator, sealer

ADMIN = Principal("admin", "admin")
DEPLOYER = Principal("ci", "deployer")


def test_only_an_admin_changes_secrets_and_the_store_gets_them_sealed() -> None:
    async def scenario() -> None:
        harness = coordinator()
        secrets = harness.core.secrets
        with pytest.raises(RoleError, match=r"token 'ci' .* may not change secrets"):
            await secrets.set(DEPLOYER, "TOKEN", "", "hunter22")
        with pytest.raises(RoleError):
            await secrets.remove(DEPLOYER, "TOKEN", "")
        assert harness.state.secrets.sealed == {}
        await secrets.set(ADMIN, "TOKEN", "production", "hunter22")
        sealed = harness.state.secrets.sealed["TOKEN", "production"]
        assert b"hunter22" not in sealed
        assert [s.name for s in await secrets.list(DEPLOYER)] == ["TOKEN"]
        await harness.core.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("name", "scope", "value", "message"),
    [
        ("BAD-NAME", "", "hunter22", "invalid secret name 'BAD-NAME'"),
        ("TOKEN", "no such env!", "hunter22", "invalid environment name"),
        ("TOKEN", "", "abc", r"too short to be masked in logs \(3 < 4 bytes\)"),
        ("TOKEN", "", "x" * (64 * 1024 + 1), "too long"),
        ("TOKEN", "", "nul\0inside", "NUL"),
        ("TOKEN", "", "\udc80half", "not valid UTF-8"),
    ],
)
def test_refused_values_are_named_never_echoed(
    name: str, scope: str, value: str, message: str
) -> None:
    async def scenario() -> None:
        harness = coordinator()
        with pytest.raises(ValueError, match=message) as info:
            await harness.core.secrets.set(ADMIN, name, scope, value)
        assert value not in str(info.value) or len(value) < 4
        assert harness.state.secrets.sealed == {}
        await harness.core.close()

    asyncio.run(scenario())


PIPELINE = """\
name: p
image: i
jobs:
  build:
    secrets: [TOKEN, NOPE]
    steps: [{run: x}]
  deploy:
    environment: staging
    secrets: [PROD_ONLY]
    steps: [{run: x}]
  ship:
    environment: production
    secrets: [PROD_ONLY, TOKEN]
    steps: [{run: x}]
"""


def test_a_job_naming_a_secret_no_scope_gives_it_is_named_with_the_secret() -> None:
    scopes: dict[str, tuple[str, ...]] = {"TOKEN": ("",), "PROD_ONLY": ("production",)}
    assert missing_secrets(load_pipeline(PIPELINE), scopes) == [
        "jobs.build.secrets[1]: unknown secret 'NOPE' (an admin sets it with "
        "`conveyor secret set NOPE`)",
        "jobs.deploy.secrets[0]: secret 'PROD_ONLY' is set only for environment production, "
        "and job 'deploy' deploys to staging",
    ]


def test_a_submission_naming_an_unknown_secret_queues_nothing() -> None:
    async def scenario() -> None:
        harness = coordinator()
        await harness.core.secrets.set(ADMIN, "TOKEN", "", "hunter22")
        with pytest.raises(ValueError, match=r"jobs\.build\.secrets\[1\]: unknown secret 'NOPE'"):
            await harness.core.builds.submit(PIPELINE)
        assert harness.state.builds.created == []
        await harness.core.close()

    asyncio.run(scenario())


def assignment(*sealed: SealedSecret) -> Assignment:
    spec = JobSpecRecord((), None, 0, (), tuple(s.name for s in sealed))
    return Assignment(1, "lease", 1, "job", 1, spec, sealed)


def test_opening_gives_values_in_clear_and_says_why_it_cannot() -> None:
    box = SecretBox(Path("unused"), generate_key())
    other = SecretBox(Path("unused"), generate_key())
    opened = open_secrets(assignment(SealedSecret("A", "", box.seal("A", "", "value-a"))), box)
    assert isinstance(opened, Assignment)
    assert opened.secrets == {"A": "value-a"}
    assert opened.sealed_secrets == ()
    assert "value-a" not in repr(opened)
    gone = open_secrets(assignment(SealedSecret("A", "", None)), box)
    assert gone == "secret 'A' is no longer set (it was removed after submission)"
    foreign = open_secrets(assignment(SealedSecret("A", "", other.seal("A", "", "v-a1"))), box)
    assert isinstance(foreign, str)
    assert foreign.startswith("secret 'A' cannot be decrypted: it was sealed with another key")


def test_a_sealed_value_opens_only_for_its_name_and_scope() -> None:
    box = SecretBox(Path("unused"), generate_key())
    sealed = box.seal("TOKEN", "production", "hunter22")
    assert box.open("TOKEN", "production", sealed) == "hunter22"
    for name, scope in (("OTHER", "production"), ("TOKEN", ""), ("TOKEN", "staging")):
        with pytest.raises(SealError):
            box.open(name, scope, sealed)
    assert box.seal("TOKEN", "", "hunter22") != box.seal("TOKEN", "", "hunter22")


def test_the_key_file_is_made_on_first_use_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    box = SecretBox(path)
    assert not path.exists()
    sealed = box.seal("T", "", "hunter22")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretBox(path).open("T", "", sealed) == "hunter22"


def test_a_malformed_key_is_refused_at_once() -> None:
    with pytest.raises(SecretKeyError, match="CONVEYOR_SECRET_KEY: not a secret key"):
        SecretBox(Path("unused"), "too-short")


class SealedClaims(FakeAttempts):
    """Claims hand out job `a` with a secret sealed under `box`, and `b` naming one gone since."""

    def __init__(self, box: SecretBox) -> None:
        super().__init__(queued=[("a", {}), ("b", {})])
        self.box = box

    def claim(self, agent_id: int, labels: Mapping[str, str], slots: int) -> list[Assignment]:
        first, second = super().claim(agent_id, labels, slots)
        sealed = self.box.seal("TOKEN", "", "hunter22")
        return [
            replace(first, sealed_secrets=(SealedSecret("TOKEN", "", sealed),)),
            replace(second, sealed_secrets=(SealedSecret("GONE", "", None),)),
        ]


def test_a_claim_opens_secrets_for_the_agent_and_fails_a_job_whose_secret_is_gone() -> None:
    async def scenario() -> None:
        box, runtime = sealer(), Runtime()
        store = SealedClaims(box)
        leases = LeaseTable(30.0)
        claims = Claims(runtime, store, leases, BuildNotifier(), box)
        handed = await claims(7, {}, 2)
        assert [(a.job_name, dict(a.secrets), a.sealed_secrets) for a in handed] == [
            ("a", {"TOKEN": "hunter22"}, ())
        ]
        assert store.finished() == [("finish", 2, Outcome.FAILED, Reason.ERROR)]
        assert leases.check_any(1) is not None and leases.check_any(2) is None
        runtime.close()

    asyncio.run(scenario())
