"""Colour and tables for human output, drawn by `rich`: colours only on a terminal and never
with NO_COLOR set, column widths measured on the text as it shows (escape codes take no room).

Every cell is plain text (no markup, no highlighting, no emoji codes), so a name prints as the
characters it holds; names from others are made inert before they get here (bounds.printable).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "canceled": "yellow",
    "skipped": "bright_black",
    "running": "cyan",
    "queued": "blue",
    "waiting": "bright_black",
    "waiting_for_approval": "magenta",
    "online": "green",
    "offline": "bright_black",
}
# Wide enough that rich never folds a row to fit: a long row wraps as the terminal wraps it.
_RENDER_WIDTH_CHARS = 100_000


# Job prefixes in a followed build: one colour each, in the order of the build's jobs, none of
# them a status's own colour twice in a row.
PREFIX_STYLES = ("cyan", "magenta", "yellow", "blue", "green", "bright_magenta", "bright_cyan")
COLOUR_CHOICES = ("auto", "always", "never")
_choice = {"colours": "auto"}


def choose_colours(choice: str) -> None:
    """`--color`: always or never whatever the stream is; auto asks `styled`'s question."""
    _choice["colours"] = choice


def styled(stream: TextIO) -> bool:
    """Whether output to `stream` gets colours: `--color always`, or (auto) a terminal and
    NO_COLOR unset or empty."""
    if _choice["colours"] != "auto":
        return _choice["colours"] == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def status_style(status: str) -> str:
    return _STYLES.get(status, "")


class JobStyles:
    """Each job's prefix colour, given in the order jobs are first met (a log line can come
    before the first snapshot), so distinct and stable while a build is followed."""

    def __init__(self) -> None:
        self._styles: dict[str, str] = {}

    def of(self, job: str) -> str:
        style = self._styles.get(job)
        if style is None:
            style = PREFIX_STYLES[len(self._styles) % len(PREFIX_STYLES)]
            self._styles[job] = style
        return style


def coloured(text: str, style: str) -> str:
    """`text` with the escape codes of `style`, whatever the stream (the caller decided)."""
    return _render(Text(text, style=style), colours=True)


def _render(renderable: Text | Table, colours: bool) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=_RENDER_WIDTH_CHARS,
        force_terminal=colours,
        # Without a colour system rich writes no escape codes at all, not even bold.
        color_system="standard" if colours else None,
        no_color=not colours,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(renderable, end="")
    return buffer.getvalue()


def colour(text: str, status: str, stream: TextIO = sys.stdout) -> str:
    """`text` in the colour of `status`, if `stream` gets colours."""
    style = _STYLES.get(status)
    if style is None or not styled(stream):
        return text
    return _render(Text(text, style=style), colours=True)


def cell(text: str, status: str = "") -> Text:
    """A table cell, coloured by `status` when it names one."""
    return Text(text, style=_STYLES.get(status, ""), no_wrap=True)


def table(
    rows: Sequence[Sequence[str | Text]], header: Sequence[str], out: TextIO = sys.stdout
) -> None:
    """Columns two spaces apart, the header first; rows as given, one line each."""
    grid = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1))
    for name in header:
        grid.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(*(value if isinstance(value, Text) else Text(value) for value in row))
    lines = _render(grid, styled(out)).splitlines()
    print("\n".join(line.rstrip() for line in lines), file=out)
