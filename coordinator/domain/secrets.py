"""Secrets: set, listed and removed by people; named by jobs; opened only for the agent that
holds an attempt's lease (DESIGN §4.1 `secrets:`, §7.7).

A value is sealed here before the store sees it and opened here when a claim hands the attempt
out; the store, the job's stored spec, the build and every log hold only names.
"""

from __future__ import annotations

from dataclasses import replace

from conveyor.pipeline.delivery import secret_name_problem
from conveyor.pipeline.model import Pipeline
from conveyor.pipeline.values import NAME_RE, NAME_RULE
from coordinator.config import MAX_SECRET_VALUE_BYTES, MIN_SECRET_VALUE_BYTES
from coordinator.domain.access import Principal, check_role
from coordinator.domain.errors import SealError
from coordinator.domain.ports import SecretSealer, SecretStore
from coordinator.domain.records import Assignment
from coordinator.domain.runtime import Runtime
from coordinator.domain.secret_records import SecretRecord

CHANGE_ROLES = ("admin",)
"""Who may set or remove a secret (DESIGN §8: admin manages secrets)."""
READ_ROLES = ("viewer",)
"""Who may list them: names, scopes and times only, never a value."""


def check_name_and_scope(name: str, scope: str) -> None:
    """ValueError naming what is wrong with a secret's name or scope ("" is every job)."""
    problem = secret_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    if scope and not NAME_RE.fullmatch(scope):
        raise ValueError(f"invalid environment name {scope[:80]!r} ({NAME_RULE})")


def check_value(name: str, value: str) -> None:
    """ValueError (never quoting the value) unless it can be an env value the agent can mask."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise ValueError(f"secret {name!r}: the value is not valid UTF-8 text") from None
    if "\0" in value:
        raise ValueError(f"secret {name!r}: the value contains a NUL byte (no env value can)")
    if size > MAX_SECRET_VALUE_BYTES:
        raise ValueError(
            f"secret {name!r}: the value is too long ({size} > {MAX_SECRET_VALUE_BYTES} bytes)"
        )
    if size < MIN_SECRET_VALUE_BYTES:
        # Masking a value this short would mask ordinary words in every log.
        raise ValueError(
            f"secret {name!r}: the value is too short to be masked in logs ({size} < "
            f"{MIN_SECRET_VALUE_BYTES} bytes)"
        )


def missing_secrets(pipeline: Pipeline, scopes: dict[str, tuple[str, ...]]) -> list[str]:
    """One line per secret a job names that would reach it from no scope (empty: none)."""
    problems = []
    for job in pipeline.jobs:
        environment = job.environment.name if job.environment else None
        for index, name in enumerate(job.secrets):
            found = scopes.get(name, ())
            if "" in found or (environment is not None and environment in found):
                continue
            where = f"jobs.{job.name}.secrets[{index}]"
            if not found:
                problems.append(
                    f"{where}: unknown secret {name!r} (an admin sets it with "
                    f"`conveyor secret set {name}`)"
                )
            else:
                deploys = f"deploys to {environment}" if environment else "deploys nowhere"
                problems.append(
                    f"{where}: secret {name!r} is set only for environment "
                    f"{', '.join(found)}, and job {job.name!r} {deploys}"
                )
    return problems


def open_secrets(assignment: Assignment, sealer: SecretSealer) -> Assignment | str:
    """The assignment with its secrets in clear, or why it cannot have them (removed since the
    build was submitted, or sealed with another key)."""
    opened: dict[str, str] = {}
    for secret in assignment.sealed_secrets:
        if secret.sealed is None:
            return f"secret {secret.name!r} is no longer set (it was removed after submission)"
        try:
            opened[secret.name] = sealer.open(secret.name, secret.scope, secret.sealed)
        except SealError as error:
            return f"secret {secret.name!r} cannot be decrypted: {error}"
    return replace(assignment, sealed_secrets=(), secrets=opened)


class Secrets:
    """`conveyor secret set | list | rm`."""

    def __init__(self, *, runtime: Runtime, store: SecretStore, sealer: SecretSealer) -> None:
        self._runtime = runtime
        self._store = store
        self._sealer = sealer

    async def set(self, principal: Principal, name: str, scope: str, value: str) -> SecretRecord:
        check_role(principal, CHANGE_ROLES, "change secrets")
        check_name_and_scope(name, scope)
        check_value(name, value)
        sealed = await self._runtime.io(self._sealer.seal, name, scope, value)
        return await self._runtime.db(self._store.put, name, scope, sealed, by=principal.name)

    async def remove(self, principal: Principal, name: str, scope: str) -> SecretRecord:
        check_role(principal, CHANGE_ROLES, "change secrets")
        check_name_and_scope(name, scope)
        return await self._runtime.db(self._store.remove, name, scope, by=principal.name)

    async def list(self, principal: Principal) -> list[SecretRecord]:
        check_role(principal, READ_ROLES, "list secrets")
        return await self._runtime.db(self._store.list)
