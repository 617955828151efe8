"""Figures beside their targets and physical limits: collection, table and JSON."""

from __future__ import annotations

import json
import math
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
        header = ("scenario", "figure", "value", "target", "limit (same run)", "")
        rows = [header, *(_row(f) for f in self.figures)]
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


def _row(f: Figure) -> tuple[str, str, str, str, str, str]:
    limit = f"{_fmt(f.limit, f.unit)} ({f.limit_name})" if f.limit is not None else ""
    verdict = {True: "ok", False: "MISS", None: ""}[f.ok]
    return (f.scenario, f.name, _fmt(f.value, f.unit), f.target, limit, verdict)


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
