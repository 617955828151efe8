"""The `logs --json` document: the chosen attempt's steps, each log as text, marked when the
bytes were not UTF-8 (the text then has U+FFFD where they were)."""

from __future__ import annotations

from conveyor.documents import log_doc
from conveyor.v1 import control_pb2, types_pb2


def _build() -> control_pb2.Build:
    build = control_pb2.Build(id=4, name="p", status=types_pb2.BUILD_STATUS_FAILED)
    job = build.jobs.add(name="j", status=types_pb2.JOB_STATUS_FAILED)
    for number in (1, 2):
        attempt = job.attempts.add(number=number)
        for index, name in enumerate(("a", "b")):
            attempt.steps.add(index=index, name=name, status=types_pb2.STEP_STATUS_SUCCEEDED)
    return build


def _chunk(step: int, offset: int, data: bytes) -> control_pb2.LogChunk:
    return control_pb2.LogChunk(
        job="j", attempt_number=1, step_index=step, offset=offset, data=data
    )


def test_chunks_are_joined_per_step_and_bad_bytes_are_marked() -> None:
    chunks = [_chunk(0, 0, b"one "), _chunk(0, 4, b"two\n"), _chunk(1, 0, b"\xff\xfeok\n")]
    doc = log_doc(_build(), "j", 1, chunks)
    assert (doc["build"], doc["job"], doc["attempt"]) == (4, "j", 1)
    assert [(s["name"], s["log"], s["log_bytes"], s["exact"]) for s in doc["steps"]] == [
        ("a", "one two\n", 8, True),
        ("b", "\ufffd\ufffdok\n", 5, False),
    ]


def test_a_named_step_alone_and_steps_without_output_are_listed() -> None:
    doc = log_doc(_build(), "j", 1, [], only_step="b")
    assert [(s["name"], s["log"]) for s in doc["steps"]] == [("b", "")]


def test_an_attempt_that_does_not_exist_has_no_steps() -> None:
    assert log_doc(_build(), "j", 9, []) == {"build": 4, "job": "j", "attempt": None, "steps": []}
