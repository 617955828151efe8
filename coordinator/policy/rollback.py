"""Which recorded deployment a rollback deploys again (DESIGN §4.1, §8 `conveyor rollback`).

Without `--to`, a rollback goes to the last successful deployment before the current one that
deployed something else: a deployment of the same commit and artifacts as the current one (a
redeploy, or the same build deployed twice) would change nothing. Plain logic over the
environment's history, newest first, read no further than needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.states import JobStatus


@dataclass(frozen=True)
class Candidate:
    id: int
    status: str
    content: tuple[str, tuple[str, ...]]
    """What it deployed: the commit and the artifacts' digests, in a comparable form."""


class RollbackRefused(Exception):
    """There is nothing to roll back to, or the one named cannot be redeployed."""


def pick_target(environment: str, newest_first: Iterable[Candidate]) -> Candidate:
    """The deployment to redeploy by default; RollbackRefused saying why there is none."""
    current: Candidate | None = None
    for candidate in newest_first:
        if candidate.status != JobStatus.SUCCEEDED:
            continue
        if current is None:
            current = candidate
        elif candidate.content != current.content:
            return candidate
    if current is None:
        raise RollbackRefused(f"{environment} has no successful deployment to roll back from")
    raise RollbackRefused(
        f"{environment} has no earlier successful deployment of anything other than what "
        f"deployment {current.id} runs now; name one with --to"
    )


def check_named(environment: str, candidate: Candidate) -> None:
    """RollbackRefused unless the named deployment can be deployed again."""
    if candidate.status != JobStatus.SUCCEEDED:
        raise RollbackRefused(
            f"deployment {candidate.id} of {environment} {candidate.status}: only a successful "
            "deployment can be deployed again"
        )
