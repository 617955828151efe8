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


def styled(stream: TextIO) -> bool:
    """Whether output to `stream` gets colours: a terminal, and NO_COLOR unset or empty."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


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
