"""Colour and tables for human output, drawn by `rich`: colours only on a terminal and never
with NO_COLOR set, column widths measured on the text as it shows (escape codes take no room).

Every cell is plain text (no markup, no highlighting, no emoji codes), so a name prints as the
characters it holds; names from others are made inert before they get here (bounds.printable).

rich is imported only to draw colours or characters wider or narrower than one column: a table
without either (what a script reads) is laid out here as rich would, without its start-up cost.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, TextIO, TypeAlias

if TYPE_CHECKING:
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
    from rich.text import Text

    return _render(Text(text, style=style), colours=True)


def _render(renderable: Text | Table, colours: bool) -> str:
    from rich.console import Console

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
    return coloured(text, style)


class Cell(NamedTuple):
    """A table cell coloured by `status` when it names one (and the output gets colours)."""

    text: str
    status: str = ""


def cell(text: str, status: str = "") -> Cell:
    return Cell(text, status)


# A `Text` (rich's) is drawn by rich as it is.
Value: TypeAlias = "str | Cell | Text"


def table(rows: Sequence[Sequence[Value]], header: Sequence[str], out: TextIO = sys.stdout) -> None:
    """Columns two spaces apart, the header first; rows as given, one line each."""
    colours = styled(out)
    lines = None if colours else _plain_lines(rows, header)
    if lines is None:
        lines = _render(_grid(rows, header), colours).splitlines()
    print("\n".join(line.rstrip() for line in lines), file=out)


def _grid(rows: Sequence[Sequence[Value]], header: Sequence[str]) -> Table:
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1))
    for name in header:
        grid.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(*(_text(value) for value in row))
    return grid


def _text(value: Value) -> Text:
    from rich.text import Text

    if isinstance(value, Cell):
        return Text(value.text, style=_STYLES.get(value.status, ""), no_wrap=True)
    return Text(value) if isinstance(value, str) else value


# Characters one terminal column wide each, that rich draws as they are.
_ONE_COLUMN = re.compile(r"[ -~]*")


def _plain_lines(rows: Sequence[Sequence[Value]], header: Sequence[str]) -> list[str] | None:
    """The lines rich draws for a table without colours, when every cell is printable ASCII
    and no row is longer than the header; None otherwise (rich measures the rest)."""
    texts = [list(header)]
    for row in rows:
        if len(row) > len(header):
            return None
        cells: list[str] = []
        for value in row:
            if not isinstance(value, str | Cell):
                return None
            cells.append(value.text if isinstance(value, Cell) else value)
        texts.append(cells + [""] * (len(header) - len(cells)))
    if not all(_ONE_COLUMN.fullmatch(text) for cells in texts for text in cells):
        return None
    widths = [max(len(cells[i]) for cells in texts) for i in range(len(header))]
    return ["  ".join(t.ljust(w) for t, w in zip(cells, widths, strict=True)) for cells in texts]
