"""The pipeline's `source: {git, ref}` key: read, defaulted and validated with positions."""

from __future__ import annotations

import pytest

from conveyor.pipeline import GitSource, PipelineError, load_pipeline

JOBS = "jobs:\n  a:\n    steps: [{run: 'true'}]\n"


def _load(source: str) -> object:
    return load_pipeline(f"name: s\nimage: conveyor/busybox\n{source}\n{JOBS}").source


def test_git_source_is_read() -> None:
    assert _load("source: {git: 'file:///srv/repo', ref: v1}") == GitSource(
        "file:///srv/repo", "v1"
    )


def test_ref_defaults_to_head() -> None:
    assert _load("source: {git: /srv/repo}") == GitSource("/srv/repo", "HEAD")


def test_no_source_is_none() -> None:
    assert _load("") is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("source: {git: --upload-pack=x}", "3:15: source.git: invalid value"),
        ("source: {git: /r, ref: -x}", "source.ref: invalid value '-x'"),
        ("source: {ref: main}", "source: missing required key 'git'"),
        ("source: {git: /r, branch: x}", "source.branch: unknown key 'branch'"),
        ("source: /srv/repo", "source: expected a mapping"),
        ("source: {git: 'a b'}", "source.git: invalid value 'a b'"),
    ],
)
def test_bad_sources_are_refused_with_their_place(source: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        _load(source)
