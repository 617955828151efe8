"""Times: ISO 8601 (UTC) beside every epoch-millisecond field of a document, and relative or
absolute (local) times in tables."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator

import pytest

from conveyor.cli.render import print_builds
from conveyor.cli.times import due, relative, shown
from conveyor.documents import agent_doc, build_doc, build_summary_doc
from conveyor.times import iso_utc, with_times
from conveyor.v1 import control_pb2, types_pb2

MOMENT_MS = 1_796_168_412_345  # 2026-12-01T23:40:12.345Z


@pytest.fixture
def in_new_york() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_iso_utc_is_utc_with_z() -> None:
    assert iso_utc(MOMENT_MS) == "2026-12-01T23:40:12.345Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(None) is None


def test_with_times_adds_a_field_beside_every_ms_field_at_any_depth() -> None:
    doc = {
        "id": 1,
        "created_at_ms": MOMENT_MS,
        "finished_at_ms": None,
        "jobs": [{"steps": [{"started_at_ms": MOMENT_MS}]}],
        "trigger": {"committed_at_ms": 0},
        "lead_time_s": {"median": 3.5},
        "flag_ms": True,  # not a time: left alone
    }
    out = with_times(doc)
    assert list(out)[:4] == ["id", "created_at_ms", "created_at", "finished_at_ms"]
    assert out["created_at"] == "2026-12-01T23:40:12.345Z"
    assert out["finished_at"] is None
    assert out["jobs"][0]["steps"][0]["started_at"] == "2026-12-01T23:40:12.345Z"
    assert out["trigger"]["committed_at"] == "1970-01-01T00:00:00.000Z"
    assert out["lead_time_s"] == {"median": 3.5}
    assert "flag" not in out
    assert with_times(out) == out


def _build(created_at_ms: int = MOMENT_MS) -> control_pb2.Build:
    queued = types_pb2.BUILD_STATUS_QUEUED
    build = control_pb2.Build(id=7, name="shop", status=queued, created_at_ms=created_at_ms)
    job = build.jobs.add(name="a", status=types_pb2.JOB_STATUS_RUNNING)
    attempt = job.attempts.add(started_at_ms=MOMENT_MS)
    step = attempt.steps.add(name="s", started_at_ms=MOMENT_MS, finished_at_ms=MOMENT_MS + 1000)
    step.status = types_pb2.STEP_STATUS_SUCCEEDED
    return build


def test_the_documents_carry_iso_times() -> None:
    doc = build_doc(_build())
    assert doc["created_at"] == "2026-12-01T23:40:12.345Z"
    assert doc["finished_at_ms"] is None and doc["finished_at"] is None
    step = doc["jobs"][0]["steps"][0]
    assert step["finished_at"] == "2026-12-01T23:40:13.345Z"
    assert build_summary_doc(_build())["created_at"] == "2026-12-01T23:40:12.345Z"
    agent = agent_doc(control_pb2.Agent(name="a", last_seen_ms=MOMENT_MS))
    assert agent["last_seen"] == "2026-12-01T23:40:12.345Z"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-0.4, "now"),
        (-12, "12 s ago"),
        (-190, "3 min ago"),
        (7300, "in 2 h"),
        (-3 * 86400 - 5, "3 d ago"),
        (59, "in 59 s"),
    ],
)
def test_relative_times(seconds: float, text: str) -> None:
    assert relative(seconds) == text


def test_absolute_times_are_iso_8601_in_local_time(in_new_york: None) -> None:
    assert shown(MOMENT_MS, absolute=True) == "2026-12-01T18:40:12-05:00"
    assert shown(MOMENT_MS, absolute=False, now_ms=MOMENT_MS + 180_000) == "3 min ago"
    assert shown(0, absolute=True) == "-"
    assert shown(None, absolute=False, none="never") == "never"
    assert due(MOMENT_MS, absolute=False, now_ms=MOMENT_MS + 5) == "now"
    assert due(MOMENT_MS, absolute=False, now_ms=MOMENT_MS - 7_200_000) == "in 2 h"


def test_the_builds_table_shows_relative_or_absolute_times(in_new_york: None) -> None:
    relative_table, absolute_table = io.StringIO(), io.StringIO()
    print_builds([_build(int(time.time() * 1000) - 200_000)], relative_table)
    assert "3 min ago" in relative_table.getvalue()
    print_builds([_build()], absolute_table, absolute=True)
    assert "2026-12-01T18:40:12-05:00" in absolute_table.getvalue()
