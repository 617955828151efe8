"""One glob meaning for `when:` and `on: push:`: the same pattern admits the same refs in both."""

from __future__ import annotations

import pytest

from conveyor.pipeline import Condition, PushTrigger, Triggers
from conveyor.pipeline.globs import any_glob_matches
from conveyor.pipeline.triggers import push_accepted
from coordinator.policy.conditions import BuildContext, condition_admits

GLOBS = [
    ("main", "main", True),
    ("main", "mainline", False),
    ("Main", "main", False),
    ("release/*", "release/1.2", True),
    ("release/*", "release/1.2/hotfix", True),
    ("release/*", "release", False),
    ("*", "feature/a/b", True),
    ("**", "feature/a", True),
    ("v?.?", "v1.0", True),
    ("v?.?", "v1.10", False),
    ("ma[ix]n", "main", True),
    ("ma[!i]n", "main", False),
    ("v[0-9]*", "v2.1", True),
    ("v[0-9]*", "vx", False),
    ("[", "[", True),
    ("[[]x", "[x", True),
]


@pytest.mark.parametrize(("pattern", "ref", "fits"), GLOBS)
def test_when_and_push_read_a_glob_alike(pattern: str, ref: str, fits: bool) -> None:
    assert any_glob_matches((pattern,), ref) is fits
    when_branch = Condition(branch=(pattern,))
    when_tag = Condition(tag=(pattern,))
    on_push = Triggers(push=PushTrigger(branches=(pattern,), tags=(pattern,)))
    assert condition_admits(when_branch, BuildContext("push", branch=ref)) is fits
    assert condition_admits(when_tag, BuildContext("tag", tag=ref)) is fits
    assert push_accepted(on_push, branch=ref, tag=None) is fits
    assert push_accepted(on_push, branch=None, tag=ref) is fits


def test_an_empty_list_is_the_one_difference() -> None:
    # `when:` with no branch list admits any build; `on: push:` with no tag list builds no tag.
    assert not any_glob_matches((), "main")
    assert condition_admits(Condition(), BuildContext("tag", tag="v1"))
    assert not push_accepted(Triggers(push=PushTrigger(branches=("*",))), branch=None, tag="v1")
