"""Figures beside their targets and physical limits: collection, table and JSON."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    scenario: str
    name: str
    value: float
    unit: str
    target: str = ""  # e.g. "<= 0.100"; empty when the figure has no target
    ok: bool | None = None  # None: no target
    limit: float | None = None  # the physical limit measured in the same run
    limit_name: str = ""
    database: str = "sqlite"  # the coordinator's store when measured
    # `ok` allows this factor beyond the target (PostgreSQL's figures: within 2x of SQLite's).
    tolerance: float = 1.0


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def extend(self, figures: Sequence[Figure]) -> None:
        self.figures.extend(figures)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"figures": [asdict(f) for f in self.figures], "notes": self.notes}
        path.write_text(json.dumps(doc, indent=2) + "\n")

    def table(self) -> str:
        """A row per figure: its target and same-run limit beside the first database's value
        and verdict, then a value and verdict column per further database (if any)."""
        databases = list(dict.fromkeys(f.database for f in self.figures)) or ["sqlite"]
        by_key = {(f.database, f.scenario, f.name): f for f in self.figures}
        keys = list(dict.fromkeys((f.scenario, f.name) for f in self.figures))
        header = ["scenario", "figure", databases[0], "target", "limit (same run)"]
        header.append(_verdict_header(by_key, databases[0]))
        for database in databases[1:]:
            header += [database, _verdict_header(by_key, database)]
        rows = [header]
        for scenario, name in keys:
            first = by_key.get((databases[0], scenario, name))
            value, verdict = _cells(first)
            row = [scenario, name, value, *_reference(first, by_key, scenario, name), verdict]
            for database in databases[1:]:
                row += _cells(by_key.get((database, scenario, name)))
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    digits = 3 if abs(value) < 10 else 1
    return f"{value:.{digits}f} {unit}".strip()


def _cells(f: Figure | None) -> list[str]:
    """The value and the verdict; blank where this database has no such figure."""
    if f is None:
        return ["", ""]
    return [_fmt(f.value, f.unit), {True: "ok", False: "MISS", None: ""}[f.ok]]


def _reference(
    first: Figure | None, by_key: dict[tuple[str, str, str], Figure], scenario: str, name: str
) -> list[str]:
    """The target and the limit, from the first database's figure or else any other's."""
    f = first or next(v for k, v in by_key.items() if k[1:] == (scenario, name))
    limit = f"{_fmt(f.limit, f.unit)} ({f.limit_name})" if f.limit is not None else ""
    return [f.target, limit]


def _verdict_header(by_key: dict[tuple[str, str, str], Figure], database: str) -> str:
    factors = {f.tolerance for k, f in by_key.items() if k[0] == database and f.target}
    factor = max(factors, default=1.0)
    return "" if factor == 1.0 else f"within {factor:g}x"


# A target as the scenarios write it: a comparison and a number, then maybe words.
_TARGET = re.compile(r"(<=|<|>=|>|==)\s*([-+0-9.eE]+)")


def within(f: Figure, tolerance: float) -> bool | None:
    """Whether the figure meets its target stretched by `tolerance` (an upper bound times it,
    a lower bound divided by it); None without a target. An exact target ("== 0") is not
    stretched: the scenario's own verdict stands."""
    if not f.target:
        return None
    parsed = _TARGET.match(f.target)
    if parsed is None:
        raise ValueError(f"{f.scenario}: {f.name}: target {f.target!r} is not '<op> <number>'")
    op, bound = parsed.group(1), float(parsed.group(2))
    if op == "==":
        return f.ok
    if op.startswith("<"):
        return at_most(f.value, bound * tolerance)
    return at_least(f.value, bound / tolerance)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sample; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def at_most(value: float, bound: float) -> bool:
    return not math.isnan(value) and value <= bound


def at_least(value: float, bound: float) -> bool:
    return not math.isnan(value) and value >= bound
