"""The job document carries what the web view draws: each job's `needs` (the graph's edges) and
a gate's `roles` (who may press its buttons)."""

from __future__ import annotations

from conveyor.documents import build_doc
from conveyor.v1 import control_pb2, types_pb2


def test_a_job_document_names_its_needs_and_a_gate_its_roles() -> None:
    build = control_pb2.Build(
        id=7,
        name="release",
        status=types_pb2.BUILD_STATUS_RUNNING,
        jobs=[
            control_pb2.Job(name="build", status=types_pb2.JOB_STATUS_SUCCEEDED),
            control_pb2.Job(
                name="ship-it",
                status=types_pb2.JOB_STATUS_WAITING_FOR_APPROVAL,
                needs=["build", "lint"],
                approval=control_pb2.Approval(prompt="Ship?", roles=["deployer", "admin"]),
            ),
        ],
    )
    plain, gate = build_doc(build)["jobs"]
    assert plain["needs"] == [] and "approval" not in plain
    assert gate["needs"] == ["build", "lint"]
    assert gate["approval"]["prompt"] == "Ship?"
    assert gate["approval"]["roles"] == ["deployer", "admin"]
