"""Job specs stored before `privileged`, `user` and `interruptible` existed still load, as
unprivileged and not interruptible."""

from __future__ import annotations

import json

from coordinator.domain.records import JobSpecRecord, StepSpecRecord
from coordinator.store.rowmap import spec_from_json, spec_to_json


def test_an_older_spec_loads_without_privileges_or_user() -> None:
    old: dict[str, object] = {
        "steps": [{"name": "s", "image": "i", "run": "r", "env": {}, "timeout_s": None}],
        "timeout_s": None,
        "retry_max": 0,
        "retry_when": [],
    }
    spec = spec_from_json(json.dumps(old))
    assert spec.privileged is False
    assert spec.interruptible is False
    assert spec.steps[0].user == ""


def test_privileged_and_user_survive_the_round_trip() -> None:
    spec = JobSpecRecord(
        (StepSpecRecord("s", "i", "r", {}, None, "1000"),),
        None,
        0,
        (),
        privileged=True,
        interruptible=True,
    )
    assert spec_from_json(spec_to_json(spec)) == spec


def test_the_artifacts_rule_survives_the_round_trip_and_older_specs_have_none() -> None:
    spec = JobSpecRecord(
        (StepSpecRecord("s", "i", "r", {}, None),),
        None,
        0,
        (),
        artifact_paths=("dist/**", "report.xml"),
        artifacts_always=True,
    )
    assert spec_from_json(spec_to_json(spec)) == spec
    older = json.loads(spec_to_json(spec))
    del older["artifact_paths"], older["artifacts_always"]
    assert spec_from_json(json.dumps(older)).artifact_paths is None


def test_a_spec_without_the_rule_is_stored_as_before() -> None:
    spec = JobSpecRecord((StepSpecRecord("s", "i", "r", {}, None),), None, 0, ())
    assert "artifact_paths" not in json.loads(spec_to_json(spec))
