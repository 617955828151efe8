"""The variables every step gets (DESIGN §4.2): `CI=true` and `CONVEYOR_*` for its build.

Each is always set, to "" where it does not apply (no branch for a tag build, no commit for a
snapshot), so `set -u` scripts work and a test is `[ -n "$CONVEYOR_TAG" ]`. They are set last
and win over any env of the same name; the pipeline format refuses such names anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.peer import Assignment


def step_variables(assignment: Assignment, commit: str) -> dict[str, str]:
    """The variables for a step of `assignment`; `commit` is the one checked out ("": none)."""
    return {
        "CI": "true",
        "CONVEYOR_BUILD_ID": str(assignment.build_id),
        "CONVEYOR_JOB": assignment.job_name,
        "CONVEYOR_ATTEMPT": str(assignment.attempt_number),
        "CONVEYOR_EVENT": assignment.event,
        "CONVEYOR_BRANCH": assignment.branch,
        "CONVEYOR_TAG": assignment.tag,
        "CONVEYOR_COMMIT": commit,
        "CONVEYOR_ENVIRONMENT": assignment.environment,
    }


def step_env(
    env: Mapping[str, str], secrets: Mapping[str, str], variables: Mapping[str, str]
) -> dict[str, str]:
    """A step's whole env: its own, then the job's secrets (asked for by name), then the
    build's variables."""
    return {**env, **secrets, **variables}
