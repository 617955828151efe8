"""The build's commit, decided by one rule in the store for every path: the inputs an agent
checks out, what `set_commit` keeps, and the commit a status is set on."""

from __future__ import annotations

import pytest

from conveyor.pipeline import load_pipeline
from coordinator.domain.artifact_records import SourceSpec
from coordinator.domain.submit import jobs_from_pipeline
from coordinator.store import Store
from coordinator.store.commits import build_commit
from tests.unit.coordinator.test_store import SINGLE, claim_one

URL = "https://forge.example/team/shop.git"
PINNED = "ab" * 20
OTHER = "cd" * 20


def with_source(store: Store, ref: str) -> int:
    pipeline = load_pipeline(SINGLE, "pipeline.yml")
    return store.builds.create(
        name=pipeline.name,
        pipeline_yaml=SINGLE,
        source_name="pipeline.yml",
        env={},
        jobs=jobs_from_pipeline(pipeline, {}),
        source=SourceSpec(git_url=URL, git_ref=ref),
    )


@pytest.mark.parametrize(
    ("url", "ref", "commit", "decided"),
    [
        (URL, "main", "", ""),
        (URL, "main", OTHER, OTHER),
        (URL, PINNED, "", PINNED),
        (URL, "ef" * 32, "", "ef" * 32),
        (URL, PINNED[:12], "", ""),
        (URL, PINNED.upper(), "", ""),
        ("", PINNED, "", ""),
    ],
    ids=["name", "resolved", "exact", "sha256", "abbreviated", "upper-case", "no-git"],
)
def test_build_commit(url: str, ref: str, commit: str, decided: str) -> None:
    assert build_commit(url, ref, commit) == decided


def test_a_build_for_an_exact_commit_hands_that_commit_to_its_first_checkout(
    store: Store, agent: int
) -> None:
    """A watched push names its commit: the agent is told it before it resolves anything, and
    whatever it reports, the build stays on it (as the commit status does)."""
    build_id = with_source(store, PINNED)
    assignment = claim_one(store, agent)
    source = store.artifacts.inputs(assignment.attempt_id).source
    assert source is not None and source.git_commit == PINNED
    assert store.artifacts.set_commit(build_id, OTHER, 1_000) == PINNED
    assert store.artifacts.set_commit(build_id, PINNED, 2_000) == PINNED
    _, kept = store.artifacts.artifacts(build_id)
    assert kept is not None and kept.git_commit == PINNED


def test_a_branch_is_the_commit_its_first_checkout_resolved(store: Store, agent: int) -> None:
    build_id = with_source(store, "main")
    assignment = claim_one(store, agent)
    source = store.artifacts.inputs(assignment.attempt_id).source
    assert source is not None and source.git_commit == ""
    assert store.artifacts.set_commit(build_id, OTHER, 1_000) == OTHER
    assert store.artifacts.set_commit(build_id, PINNED, 2_000) == OTHER
    source = store.artifacts.inputs(assignment.attempt_id).source
    assert source is not None and source.git_commit == OTHER
