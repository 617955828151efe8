"""What one new head of a watched repository becomes: a build of the pipeline file as it is in
that commit, with that commit as source, or a failed build saying why the file cannot run.
Pure functions: the watcher reads git and the store, this decides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from conveyor.pipeline import Pipeline, PipelineError, load_pipeline
from coordinator.config import MAX_TRIGGER_AUTHOR_CHARS, MAX_TRIGGER_MESSAGE_CHARS
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.repo_ports import CommitInfo
from coordinator.domain.repo_records import (
    BRANCH_PREFIX,
    DEFAULT_HEAD,
    NewBuild,
    RepoRecord,
    Trigger,
    ref_kind,
)
from coordinator.domain.secrets import missing_secrets
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.policy.conditions import BuildContext

PUSH, TAG, SCHEDULE = "push", "tag", "schedule"


@dataclass(frozen=True)
class Head:
    """One commit to consider: the ref it is the head of, and why (push, tag or schedule)."""

    ref: str
    commit: str
    event: str


def head_of(ref: str, commit: str) -> Head | None:
    """The push or tag event of a ref that moved; None for refs that are neither."""
    branch, tag = ref_kind(ref)
    if branch is not None:
        return Head(ref, commit, PUSH)
    if tag is not None:
        return Head(ref, commit, TAG)
    return None


def new_heads(recorded: Mapping[str, str], heads: Mapping[str, str]) -> list[Head]:
    """Refs whose commit is not the recorded one, by name; a deleted ref builds nothing."""
    found = []
    for ref, commit in sorted(heads.items()):
        if ref == DEFAULT_HEAD or recorded.get(ref) == commit:
            continue
        head = head_of(ref, commit)
        if head is not None:
            found.append(head)
    return found


def held_back(
    recorded: Mapping[str, str], heads: Mapping[str, str], later: list[Head]
) -> dict[str, str]:
    """`heads` with the refs of `later` (new heads left for the next check) as `recorded` has
    them: at their recorded commit, or absent when they had none."""
    kept = dict(heads)
    for head in later:
        if head.ref in recorded:
            kept[head.ref] = recorded[head.ref]
        else:
            kept.pop(head.ref, None)
    return kept


def default_ref(heads: Mapping[str, str]) -> str:
    """The default branch's ref, as the repository's HEAD names it (else main)."""
    return heads.get(DEFAULT_HEAD) or f"{BRANCH_PREFIX}main"


def _bounded(text: str, limit: int) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def trigger_of(repo: RepoRecord, head: Head, info: CommitInfo) -> Trigger:
    branch, tag = ref_kind(head.ref)
    return Trigger(
        event=head.event,
        repo=repo.name,
        branch=branch,
        tag=tag,
        commit=head.commit,
        committed_at_ms=info.committed_at_ms,
        message=_bounded(info.subject, MAX_TRIGGER_MESSAGE_CHARS),
        author=_bounded(info.author, MAX_TRIGGER_AUTHOR_CHARS),
    )


def plan_build(
    repo: RepoRecord,
    head: Head,
    info: CommitInfo,
    text: bytes | None,
    *,
    accepts: Callable[[Pipeline, str | None, str | None], bool],
) -> tuple[NewBuild | None, Pipeline | None]:
    """The build `head` starts (None when the pipeline's `on:` does not take this push), and
    the pipeline it runs when it has jobs (for `missing_secrets_error`)."""
    trigger = trigger_of(repo, head, info)
    context = BuildContext(head.event, trigger.branch, trigger.tag)
    source = SourceSpec(git_url=repo.url, git_ref=head.commit)
    path = repo.pipeline_path

    def failed(error: str, yaml: str = "") -> NewBuild:
        return NewBuild(repo.name, yaml, path, (), source, context, trigger, error)

    if text is None:
        return failed(f"{path}: no such file in commit {head.commit[:12]}"), None
    yaml = text.decode(errors="replace")
    try:
        pipeline = load_pipeline(text, path)
    except PipelineError as error:
        return failed(str(error), yaml), None
    if head.event != SCHEDULE and not accepts(pipeline, trigger.branch, trigger.tag):
        return None, None
    try:
        jobs = jobs_from_pipeline(pipeline, {}, context)
    except ValueError as error:
        return failed(f"{path}: {error}", yaml), None
    return NewBuild(pipeline.name, yaml, path, tuple(jobs), source, context, trigger), pipeline


def secret_names(pipeline: Pipeline) -> set[str]:
    return {name for job in pipeline.jobs for name in job.secrets}


def failed_copy(new: NewBuild, error: str) -> NewBuild:
    """`new` as a failed build with no jobs that says why."""
    return NewBuild(
        new.name, new.pipeline_yaml, new.source_name, (), new.source, new.context, new.trigger,
        error,
    )  # fmt: skip


def missing_secrets_error(
    new: NewBuild, pipeline: Pipeline, scopes: dict[str, tuple[str, ...]]
) -> NewBuild:
    """`new`, or a failed build naming the secrets its jobs name that no stored one reaches."""
    problems = missing_secrets(pipeline, scopes)
    if not problems:
        return new
    return failed_copy(new, "\n".join(f"{new.source_name}: {p}" for p in problems))
