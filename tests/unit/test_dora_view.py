"""`conveyor dora`'s output and window: the JSON document of DESIGN §8, the human table, and
`--since` parsed as the CLI parses ages (usage errors, never tracebacks)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from typing import cast

import pytest

from conveyor.cli.dora_view import (
    dora_json,
    print_dora,
    since,
    since_ms,
    span,
)
from conveyor.cli.parser_admin import DEFAULT_SINCE
from conveyor.documents import DoraDocument
from coordinator.policy.dora import DeploymentFact, delivery_figures

SINCE_MS = 1_790_000_000_000  # 2026-09-21 14:13:20 UTC
DAY_S = 86400.0


def document(**changes: object) -> DoraDocument:
    doc: dict[str, object] = {
        "environment": "production",
        "since_ms": SINCE_MS,
        "deployments": 11,
        "deployment_frequency_per_day": 8.0,
        "lead_time_s": {"median": 10800.0, "p90": 90061.0},
        "change_failure_rate": 4 / 11,
        "time_to_restore_s": {"median": 330.0},
    }
    doc.update(changes)
    return cast(DoraDocument, doc)


def printed(doc: DoraDocument) -> list[str]:
    out = io.StringIO()  # not a terminal: no escape codes
    print_dora(doc, out)
    return out.getvalue().splitlines()


def test_dora_json_is_the_cli_contract_document_with_nulls() -> None:
    doc = document(
        environment=None,
        lead_time_s={"median": None, "p90": None},
        change_failure_rate=None,
        time_to_restore_s={"median": None},
    )
    parsed = json.loads(dora_json(doc))
    assert parsed == {
        "environment": None,
        "since_ms": SINCE_MS,
        "deployments": 11,
        "deployment_frequency_per_day": 8.0,
        "lead_time_s": {"median": None, "p90": None},
        "change_failure_rate": None,
        "time_to_restore_s": {"median": None},
    }
    assert '"change_failure_rate": null' in dora_json(doc)


def test_dora_json_carries_the_policy_figures_unchanged() -> None:
    facts = [
        DeploymentFact(
            id=1,
            environment="prod",
            status="succeeded",
            started_at_ms=SINCE_MS + 1000,
            finished_at_ms=SINCE_MS + 61_000,
            commit="c1",
            commit_time_ms=SINCE_MS,
        )
    ]
    figures = delivery_figures(facts, since_ms=SINCE_MS, now_ms=SINCE_MS + 86_400_000)
    doc = cast(DoraDocument, dataclasses.asdict(figures))
    assert json.loads(dora_json(doc)) == {
        "environment": None,
        "since_ms": SINCE_MS,
        "deployments": 1,
        "deployment_frequency_per_day": 1.0,
        "lead_time_s": {"median": 61.0, "p90": 61.0},
        "change_failure_rate": 0.0,
        "time_to_restore_s": {"median": None},
    }
    assert printed(doc)[4:6] == [
        "lead time for changes, median  1m 1s",
        "lead time for changes, p90     1m 1s",
    ]


def test_dora_table_shows_each_figure_in_words() -> None:
    assert printed(document()) == [
        "production: delivery figures since 2026-09-21 14:13 UTC",
        "FIGURE                         VALUE",
        "deployments                    11",
        "deployment frequency           8 per day",
        "lead time for changes, median  3h",
        "lead time for changes, p90     1d 1h",
        "change failure rate            36.4% (4 of 11)",
        "time to restore, median        5m 30s",
    ]


def test_dora_table_without_data_shows_dashes_for_all_environments() -> None:
    empty = document(
        environment=None,
        deployments=0,
        deployment_frequency_per_day=0.0,
        lead_time_s={"median": None, "p90": None},
        change_failure_rate=None,
        time_to_restore_s={"median": None},
    )
    lines = printed(empty)
    assert lines[0] == "all environments: delivery figures since 2026-09-21 14:13 UTC"
    assert [line.split("  ")[-1].strip() for line in lines[2:]] == [
        "0",
        "0 per day",
        "-",
        "-",
        "-",
        "-",
    ]


def test_dora_table_prints_an_environment_name_inert() -> None:
    lines = printed(document(environment="prod\x1b[2J\u202e"))
    assert lines[0].startswith("prod\\x1b[2J\\u202e: delivery figures")
    assert "\x1b" not in "\n".join(lines)


def test_dora_frequency_keeps_three_significant_digits() -> None:
    values = {48 / 11: "4.36 per day", 0.0012: "0.0012 per day", 120.0: "120 per day"}
    for per_day, shown in values.items():
        assert printed(document(deployment_frequency_per_day=per_day))[3].endswith(shown)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0.0, "0s"),
        (0.4, "0s"),
        (42.0, "42s"),
        (59.6, "1m"),
        (61.0, "1m 1s"),
        (3600.0, "1h"),
        (3601.0, "1h"),
        (3660.0, "1h 1m"),
        (86400.0, "1d"),
        (90061.0, "1d 1h"),
        (45 * DAY_S, "45d"),
    ],
)
def test_span_shows_the_two_largest_units(seconds: float | None, shown: str) -> None:
    assert span(seconds) == shown


def test_since_parses_ages_like_the_rest_of_the_cli() -> None:
    assert since(DEFAULT_SINCE) == 30 * DAY_S
    assert since("12h") == 12 * 3600.0
    assert since(" 1d12h ") == 1.5 * DAY_S
    for wrong, words in (("0s", "longer than 0s"), ("soon", "expected an age"), ("36501d", "old")):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            since(wrong)


def test_since_as_a_flag_defaults_to_30_days_and_refuses_nonsense_with_exit_2() -> None:
    parser = argparse.ArgumentParser(prog="conveyor dora")
    parser.add_argument("--since", type=since, default=DEFAULT_SINCE)
    assert parser.parse_args([]).since == 30 * DAY_S
    assert parser.parse_args(["--since", "7d"]).since == 7 * DAY_S
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--since", "-3d"])
    assert exited.value.code == 2


def test_since_ms_is_the_window_start_never_before_1970() -> None:
    now_ms = SINCE_MS + 30 * 86_400_000
    assert since_ms(since("30d"), now_ms) == SINCE_MS
    assert since_ms(since("36500d"), now_ms) == 0
