"""What `conveyor dora` prints: its `--json` document (DESIGN §8) and the human table, and its
`--since` window; so the command itself only asks the coordinator and hands the answer here."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from conveyor.cli.bounds import age, printable
from conveyor.cli.terminal import table
from conveyor.documents import DoraDocument

_MS_PER_S = 1000
_SPAN_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def since(text: str) -> float:
    """An argparse `type` for `--since`: an age like `30d` or `12h` (bounds.age), in seconds;
    an empty window holds no deployment to measure, so `0s` is refused."""
    window_s = age(text)
    if window_s <= 0:
        raise argparse.ArgumentTypeError(
            f"{printable(text.strip()[:40])!r}: the window must be longer than 0s"
        )
    return window_s


def since_ms(window_s: float, now_ms: int) -> int:
    """The start of a window of `window_s` seconds ending at `now_ms`, never before 1970 (no
    deployment is older)."""
    return max(0, now_ms - round(window_s * _MS_PER_S))


def dora_json(doc: DoraDocument) -> str:
    """The `--json` document, as the other commands print theirs."""
    return json.dumps(doc, indent=2)


def span(seconds: float | None) -> str:
    """A duration in its two largest units (`3d 4h`, `2h 5m`, `2h`, `42s`); `-` for none."""
    if seconds is None:
        return "-"
    left = max(0, round(seconds))
    last = len(_SPAN_UNITS) - 1
    index = next((i for i, (_, size) in enumerate(_SPAN_UNITS) if left >= size), last)
    unit, size = _SPAN_UNITS[index]
    whole, rest = divmod(left, size)
    if index == last or rest < _SPAN_UNITS[index + 1][1]:
        return f"{whole}{unit}"
    next_unit, next_size = _SPAN_UNITS[index + 1]
    return f"{whole}{unit} {rest // next_size}{next_unit}"


def _frequency(per_day: float | None) -> str:
    return "-" if per_day is None else f"{per_day:.3g} per day"


def _rate(rate: float | None, deployments: int) -> str:
    if rate is None:
        return "-"
    return f"{rate * 100:.1f}% ({round(rate * deployments)} of {deployments})"


def _title(doc: DoraDocument) -> str:
    where = "all environments" if doc["environment"] is None else printable(doc["environment"])
    start = datetime.fromtimestamp(doc["since_ms"] / _MS_PER_S, tz=UTC)
    return f"{where}: delivery figures since {start:%Y-%m-%d %H:%M} UTC"


def print_dora(doc: DoraDocument, out: TextIO = sys.stdout) -> None:
    """The figures as a two-column table under a line naming the environment and the window."""
    print(_title(doc), file=out)
    rows = [
        ["deployments", str(doc["deployments"])],
        ["deployment frequency", _frequency(doc["deployment_frequency_per_day"])],
        ["lead time for changes, median", span(doc["lead_time_s"]["median"])],
        ["lead time for changes, p90", span(doc["lead_time_s"]["p90"])],
        ["change failure rate", _rate(doc["change_failure_rate"], doc["deployments"])],
        ["time to restore, median", span(doc["time_to_restore_s"]["median"])],
    ]
    table(rows, ["FIGURE", "VALUE"], out)
