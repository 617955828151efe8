"""The validated pipeline model, and how a job's steps resolve into runnable containers.

Instances come out of `load_pipeline`, which guarantees every invariant documented here; the model
itself does not re-check them. Mappings are plain dicts typed read-only so the model stays easy to
serialize and pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

RETRY_REASONS: Final = (
    "agent_lost",
    "timeout",
    "exit_code",
    "image_pull_failed",
    "agent_stopped",
    "oom_killed",
)
"""Failure reasons a `retry.when` list may name."""

PRIVILEGED_LABEL: Final = ("conveyor.privileged", "allowed")
"""The label an agent started with --allow-privileged carries; a job with `privileged: true` asks
for it (the coordinator adds it to the job's labels), so it only runs on such agents."""

ARTIFACTS_WHEN: Final = ("on_success", "always")


@dataclass(frozen=True)
class RetryRule:
    max: int = 0
    """Extra attempts allowed after the first one."""
    when: tuple[str, ...] = ()
    """Failure reasons (from RETRY_REASONS) that trigger a retry."""


@dataclass(frozen=True)
class ArtifactRule:
    paths: tuple[str, ...] = ()
    """Glob patterns relative to the workspace."""
    when: str = "on_success"
    """"on_success" or "always" (collect even when the job fails)."""


@dataclass(frozen=True)
class GitSource:
    """A git repository whose `ref` (branch, tag or commit) is checked out into each workspace."""

    url: str
    ref: str = "HEAD"


@dataclass(frozen=True)
class Environment:
    """`environment:` makes a job a deployment job of this environment (DESIGN §4.1)."""

    name: str
    url: str | None = None


@dataclass(frozen=True)
class Approval:
    """`approval:` makes a job a gate: no steps, no agent; it waits for a person's decision."""

    prompt: str
    roles: tuple[str, ...] = ("deployer",)
    """Token roles that may decide (cumulative: a higher role admits too)."""
    timeout_s: float | None = None
    """Undecided this long after it starts waiting: failed with reason `timeout`."""


CONCURRENCY_ORDERS: Final = ("oldest_first", "newest_first")


@dataclass(frozen=True)
class Concurrency:
    """`concurrency:` makes the job hold the named lock while it runs (one holder at a time)."""

    group: str
    order: str = "oldest_first"
    """One of CONCURRENCY_ORDERS; `newest_first` skips superseded waiting jobs."""


BUILD_EVENTS: Final = ("push", "tag", "schedule", "manual", "rollback")


@dataclass(frozen=True)
class Condition:
    """`when:` lists of globs, decided when the build is created; an empty list admits any."""

    branch: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    event: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushTrigger:
    """`on: push:` globs (matched like `when:`, `*` crosses `/`); an empty list builds none of that
    kind, so `push: {branches: [main]}` builds pushes to main and no tags."""

    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleTrigger:
    """An `on: schedule:` entry: a 5-field cron expression in UTC."""

    cron: str
    branch: str | None = None
    """The branch to build; None: the repository's default branch (its HEAD)."""


ANY_PUSH: Final = PushTrigger(branches=("*",), tags=("*",))
"""What `on:` left out means: a push to any branch or tag builds."""


@dataclass(frozen=True)
class Triggers:
    """What starts a build without a person (DESIGN §4.2). `conveyor run` ignores it."""

    push: PushTrigger | None = ANY_PUSH
    """None: no push builds (`on:` given without `push`)."""
    schedules: tuple[ScheduleTrigger, ...] = ()


@dataclass(frozen=True)
class StepDef:
    name: str
    run: str
    image: str | None
    """As written at step level; None means inherit from the job or the pipeline."""
    env: Mapping[str, str]
    """Step-level env as written; see resolve_steps for the merged view."""
    timeout_s: float | None
    user: str | None = None
    """Runs the step as this user (name or uid, optionally :group); None: the job's."""


@dataclass(frozen=True)
class JobDef:
    name: str
    image: str | None
    labels: Mapping[str, str]
    """The agent must carry all of these labels."""
    env: Mapping[str, str]
    steps: tuple[StepDef, ...]
    """Never empty except for a gate (`approval`); names are unique within the job."""
    needs: tuple[str, ...]
    """Names of jobs of the same pipeline; the graph they form is acyclic."""
    artifacts: ArtifactRule
    timeout_s: float | None
    retry: RetryRule
    environment: Environment | None = None
    approval: Approval | None = None
    """A gate has an approval and no steps (then `steps` is empty)."""
    concurrency: Concurrency | None = None
    when: Condition | None = None
    secrets: tuple[str, ...] = ()
    """Names of stored secrets its steps get as environment variables (unique, env names)."""
    privileged: bool = False
    """Steps run as privileged containers, only on agents started with --allow-privileged."""
    user: str | None = None
    """Steps run as this user unless they name their own; None: the image's user."""
    interruptible: bool = False
    """Canceled (reason `superseded`) while queued or running when a newer push to the same
    branch of the same repository starts a build."""


@dataclass(frozen=True)
class Pipeline:
    name: str
    image: str | None
    env: Mapping[str, str]
    jobs: tuple[JobDef, ...]
    """In file order; never empty, names unique."""
    source: GitSource | None = None
    """Where the workspace's files come from; None: an empty workspace (or `run --source`)."""
    on: Triggers = Triggers()
    """Without `on:`, a push to any branch or tag builds and nothing is scheduled."""

    def job(self, name: str) -> JobDef:
        """The job called `name`; raises KeyError if there is none."""
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(f"pipeline {self.name!r} has no job {name!r}")


@dataclass(frozen=True)
class ResolvedStep:
    """A step with inheritance applied: what an agent needs to start its container."""

    name: str
    image: str
    """"": the pipeline names none (the agent's `--default-image` serves)."""
    run: str
    env: dict[str, str]
    timeout_s: float | None
    user: str = ""
    """"": the image's own user."""


_NO_OVERRIDES: Final[Mapping[str, str]] = MappingProxyType({})


def resolve_steps(
    pipeline: Pipeline, job: JobDef, env_overrides: Mapping[str, str] = _NO_OVERRIDES
) -> list[ResolvedStep]:
    """Apply image and env inheritance to `job`'s steps, in order.

    The most specific image wins (step, then job, then pipeline; none: ""). Env is layered
    pipeline, job, step, and `env_overrides` (from `conveyor run --env K=V`) last, so a
    developer can override anything the file sets.
    """
    resolved = []
    for step in job.steps:
        # "": none named; the agent that runs the job uses its own default image.
        image = step.image or job.image or pipeline.image or ""
        env = {**pipeline.env, **job.env, **step.env, **env_overrides}
        user = step.user or job.user or ""
        resolved.append(ResolvedStep(step.name, image, step.run, env, step.timeout_s, user))
    return resolved
