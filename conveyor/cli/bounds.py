"""Checked command-line values: out of range is a usage error (exit 2) naming the flag, never a
traceback (DESIGN §8), and what the CLI prints of other people's names cannot drive the terminal.

The bounds are those of the wire (protobuf int64 ids, int32 counts) or of the coordinator
(its ListBuilds cap), so a value the CLI accepts is one the coordinator can be asked about.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from collections.abc import Callable

from conveyor.states import BuildStatus

MAX_ID = 2**63 - 1  # ids are protobuf int64
MAX_INT32 = 2**31 - 1
# The most builds the coordinator lists at once (coordinator.config.MAX_LIST_LIMIT).
MAX_LIST_LIMIT = 1000
# Jobs one agent runs at once; far past what one machine runs, far below what breaks anything.
MAX_AGENT_CONCURRENCY = 1024
# Timing flags (leases, polls, grace periods), in seconds: a day is more than any needs.
MAX_TIMING_S = 86400.0
# `gc --older-than`: a hundred years, in seconds (an age beyond it cannot be meant).
MAX_AGE_S = 100 * 365 * 86400
MAX_AGE_TEXT = "36500d"
# A followed build's default `--logs` on a terminal shows every line while at most this many
# jobs run at once, past it only failed steps' lines: more streams than that read as noise.
AUTO_ALL_MAX_RUNNING_JOBS = 4

_AGE_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_AGE_UNITS = (86400, 3600, 60, 1)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type`: a whole number in low..high."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number, got {printable(text[:40])!r}"
            ) from None
        if not low <= value <= high:
            shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:37] + "..."
            raise argparse.ArgumentTypeError(f"{shown} is out of range ({low}..{high})")
        return value

    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse `type`: a finite number in low..high (no nan, no inf)."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number, got {printable(text[:40])!r}"
            ) from None
        if not low <= value <= high:  # nan compares false: refused too
            raise argparse.ArgumentTypeError(
                f"{text.strip()[:40]} is out of range ({low:g}..{high:g})"
            )
        return value

    return parse


def build_states(text: str) -> list[str]:
    """An argparse `type`: build states, one or a comma list (`failed,canceled`)."""
    known = [status.value for status in BuildStatus]
    states = [part.strip() for part in text.split(",") if part.strip()]
    for state in states:
        if state not in known:
            raise argparse.ArgumentTypeError(
                f"unknown build state {printable(state[:40])!r} (use {', '.join(known)})"
            )
    if not states:
        raise argparse.ArgumentTypeError(f"expected a build state ({', '.join(known)})")
    return states


_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def byte_size(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type`: a size in bytes, `512m`, `4g` or `1.5GiB` (units of 1024), in
    low..high."""

    def parse(text: str) -> int:
        match = _SIZE_RE.fullmatch(text.strip())
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{printable(text[:40])!r}: expected a size like 512m, 4g or 1073741824"
            )
        value = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text.strip()[:40]} is out of range ({low}..{high} bytes)"
            )
        return value

    return parse


def age(text: str) -> float:
    """An argparse `type`: `7d`, `12h`, `1d12h`, `30m`, `0s` -> seconds, at most a century."""
    match = _AGE_RE.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(
            f"{printable(text[:40])!r}: expected an age like 7d, 12h, 30m or 0s"
        )
    seconds = sum(int(v) * unit for v, unit in zip(match.groups(), _AGE_UNITS, strict=True) if v)
    if seconds > MAX_AGE_S:
        raise argparse.ArgumentTypeError(f"{text.strip()[:40]}: too old (at most {MAX_AGE_TEXT})")
    return float(seconds)


# An agent's name (coordinator.config.MAX_AGENT_NAME_CHARS): printable, so it shows as itself.
MAX_AGENT_NAME_CHARS = 128


def duration_in(low_s: float, high_s: float) -> Callable[[str], float]:
    """An argparse `type`: a duration written like an age (`5m`, `1h30m`, `1s`) in low..high."""

    def parse(text: str) -> float:
        seconds = age(text)
        if not low_s <= seconds <= high_s:
            raise argparse.ArgumentTypeError(
                f"{text.strip()[:40]} is out of range ({low_s:g}s..{high_s:g}s)"
            )
        return seconds

    return parse


def agent_name(text: str) -> str:
    """An argparse `type` for `agent --name`: what the coordinator accepts at registration."""
    if not text or len(text) > MAX_AGENT_NAME_CHARS or not text.isprintable():
        raise argparse.ArgumentTypeError(
            f"{printable(text[:40])!r}: expected 1-{MAX_AGENT_NAME_CHARS} printable characters"
        )
    return text


def agent_labels(text: str) -> str:
    """An argparse `type` for `agent --labels k=v,...`: each a label a job could ask for."""
    # Imported here, not above: the pipeline package is large, and every command imports this
    # module to build its parser; only `agent` comes here, and it loads the package anyway.
    from conveyor.pipeline import label_name_problem, label_value_problem

    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{printable(item)!r} is not key=value")
        problem = label_name_problem(key) or label_value_problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(f"{printable(item)!r}: {printable(problem)}")
    return text


# Control characters (C0, DEL, C1), format characters (bidi overrides, zero-width), line and
# paragraph separators, surrogates, unassigned and private-use code points.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """`text` with every character that could move the cursor, recolour, retitle or reorder the
    terminal written as an escape (`\\x1b`, `\\u202e`), so names from others print inert."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _UNPRINTABLE
        else char
        for char in text
    )
