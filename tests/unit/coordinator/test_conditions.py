"""`when:` conditions and role checks: the pure decisions behind gates and skipped jobs."""

from __future__ import annotations

import pytest

from conveyor.pipeline.model import Condition
from coordinator.domain.access import Principal, check_role, role_admits
from coordinator.domain.errors import RoleError
from coordinator.policy.conditions import BuildContext, condition_admits, condition_message

MAIN = BuildContext("manual", branch="main")
RELEASE = BuildContext("push", branch="release/1.2")
TAG = BuildContext("tag", tag="v1.0")


@pytest.mark.parametrize(
    ("condition", "context", "admitted"),
    [
        (None, MAIN, True),
        (Condition(), MAIN, True),
        (Condition(), BuildContext("manual"), True),
        (Condition(branch=("main",)), MAIN, True),
        (Condition(branch=("main",)), BuildContext("manual", branch="other"), False),
        (Condition(branch=("main",)), BuildContext("manual"), False),
        (Condition(branch=("release/*",)), RELEASE, True),
        (Condition(branch=("release/?.?",)), RELEASE, True),
        (Condition(branch=("Main",)), MAIN, False),
        (Condition(branch=("dev", "ma[ix]n")), MAIN, True),
        (Condition(tag=("v*",)), TAG, True),
        (Condition(tag=("v*",)), MAIN, False),
        (Condition(event=("push", "tag")), TAG, True),
        (Condition(event=("push",)), MAIN, False),
        (Condition(branch=("main",), event=("push",)), MAIN, False),
        (Condition(branch=("main",), event=("manual",)), MAIN, True),
    ],
)
def test_condition_admits(
    condition: Condition | None, context: BuildContext, admitted: bool
) -> None:
    assert condition_admits(condition, context) is admitted


def test_condition_message_names_what_did_not_match() -> None:
    condition = Condition(branch=("main",), event=("push", "tag"))
    assert condition_message(condition, BuildContext("manual", branch="other")) == (
        "not run: branch other is not one of main; event manual is not one of push, tag"
    )
    assert condition_message(Condition(tag=("v*",)), MAIN) == "not run: tag none is not one of v*"


@pytest.mark.parametrize(
    ("role", "allowed", "admitted"),
    [
        ("deployer", ("deployer",), True),
        ("admin", ("deployer",), True),
        ("developer", ("deployer",), False),
        ("viewer", ("deployer",), False),
        ("viewer", ("viewer",), True),
        ("developer", ("admin", "developer"), True),
        ("deployer", ("admin",), False),
        ("root", ("viewer",), False),
        ("admin", (), False),
    ],
)
def test_roles_are_cumulative(role: str, allowed: tuple[str, ...], admitted: bool) -> None:
    assert role_admits(role, allowed) is admitted


def test_check_role_names_token_role_and_action() -> None:
    check_role(Principal("admin", "admin"), ("deployer",), "approve")
    with pytest.raises(RoleError) as refused:
        check_role(Principal("ci", "developer"), ("deployer",), "approve build 3 job ship")
    assert str(refused.value) == (
        "token 'ci' (role developer) may not approve build 3 job ship; allowed: deployer or above"
    )
