"""The bench's table and verdicts with PostgreSQL's figures beside SQLite's (no processes)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

# The bench's package lives under scripts/, where `scripts/bench` runs it from.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchkit.figures import Figure, Report, within

LATENCY = Figure("latency", "median", 0.015, "s", "<= 0.010", False)
RATE = Figure("throughput", "jobs/s", 150.0, "jobs/s", ">= 250", False)


def test_within_stretches_upper_and_lower_bounds() -> None:
    assert within(LATENCY, 2.0) is True  # 15 ms against 10 ms doubled
    assert within(replace(LATENCY, value=0.021), 2.0) is False
    assert within(RATE, 2.0) is True  # 150/s against 250/s halved
    assert within(replace(RATE, value=120.0), 2.0) is False
    assert within(Figure("scale", "p99", 0.09, "s", "< 0.05 (paced)", True), 2.0) is True
    assert within(Figure("x", "untargeted", 1.0, "s"), 2.0) is None


def test_an_exact_target_is_not_stretched() -> None:
    exact = Figure("deploys", "overlapping", 0.0, "deployments", "== 0", False)
    assert within(exact, 2.0) is False


def test_an_unreadable_target_is_an_error() -> None:
    with pytest.raises(ValueError, match="is not"):
        within(Figure("x", "y", 1.0, "s", "about 3"), 2.0)


def test_the_table_has_a_column_pair_per_database() -> None:
    postgres = replace(LATENCY, value=0.018, database="postgresql", tolerance=2.0, ok=True)
    only_sqlite = Figure("logs", "MB/s", 500.0, "MB/s", ">= 400", True)
    table = Report([LATENCY, only_sqlite, postgres]).table().splitlines()
    assert table[0].split() == [
        "scenario", "figure", "sqlite", "target", "limit", "(same", "run)",
        "postgresql", "within", "2x",
    ]  # fmt: skip
    assert table[2].split() == [
        "latency", "median", "0.015", "s", "<=", "0.010", "MISS", "0.018", "s", "ok",
    ]  # fmt: skip
    assert table[3].split() == ["logs", "MB/s", "500.0", "MB/s", ">=", "400", "ok"]


def test_one_database_keeps_the_plain_table() -> None:
    table = Report([LATENCY]).table().splitlines()
    assert table[0].split() == ["scenario", "figure", "sqlite", "target", "limit", "(same", "run)"]
