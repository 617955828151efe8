"""The CLI's tables print exactly what rich draws for them, whether rich draws them (colours,
wide or control characters) or the CLI lays them out itself (plain ASCII, not a terminal)."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conveyor.cli import terminal
from conveyor.cli.terminal import Cell, Value, cell, table

Rows = list[list[Value]]


def _drawn_by_rich(rows: Rows, header: list[str], colours: bool) -> str:
    """The table as rich draws it: the CLI's layout (two spaces between columns, the header
    first, no edges), each line without trailing blanks."""
    grid = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 1))
    for name in header:
        grid.add_column(name, no_wrap=True, overflow="ignore")
    for row in rows:
        grid.add_row(
            *(
                Text(v.text, style=terminal.status_style(v.status), no_wrap=True)
                if isinstance(v, Cell)
                else Text(v)
                if isinstance(v, str)
                else v
                for v in row
            )
        )
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=100_000,
        force_terminal=colours,
        color_system="standard" if colours else None,
        no_color=not colours,
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(grid, end="")
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _printed(rows: Rows, header: list[str]) -> str:
    out = io.StringIO()
    table(rows, header, out)
    return out.getvalue()


def _random_table(rng: random.Random, alphabet: str) -> tuple[Rows, list[str]]:
    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))

    columns = rng.randint(1, 7)
    header = [text().upper() for _ in range(columns)]
    rows: Rows = []
    for _ in range(rng.randint(0, 5)):
        width = rng.randint(0, columns)  # rows shorter than the header end in empty cells
        rows.append(
            [cell(text(), "failed") if rng.random() < 0.3 else text() for _ in range(width)]
        )
    return rows, header


@pytest.mark.parametrize("alphabet", ["ab -_./:()=,", "a b", " ", "ab\té", "a日本b", "a\x1b[31mb"])
def test_a_table_prints_what_rich_draws(alphabet: str) -> None:
    rng = random.Random(alphabet)
    for _ in range(300):
        rows, header = _random_table(rng, alphabet)
        assert _printed(rows, header) == _drawn_by_rich(rows, header, colours=False), (rows, header)


def test_the_tables_the_commands_print() -> None:
    rows: Rows = [
        ["one", cell("succeeded", "succeeded"), "1", "0", "shell-0", "0.0s", ""],
        ["two", cell("failed", "failed"), "2", "", "", "-", "exit_code: step 1 exited 1"],
    ]
    header = ["JOB", "STATUS", "ATTEMPTS", "EXIT", "AGENT", "TIME", "REASON"]
    assert _printed(rows, header) == (
        "JOB  STATUS     ATTEMPTS  EXIT  AGENT    TIME  REASON\n"
        "one  succeeded  1         0     shell-0  0.0s\n"
        "two  failed     2                        -     exit_code: step 1 exited 1\n"
    )
    assert _printed([], ["ID", "NAME"]) == "ID  NAME\n"
    texts: Rows = [[Text("x"), "y"], ["wide", Text("z")]]
    assert _printed(texts, ["A", "B"]) == _drawn_by_rich(texts, ["A", "B"], colours=False)


def test_colours_are_drawn_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terminal, "styled", lambda stream: True)
    rows: Rows = [["one", cell("failed", "failed")], ["two", "plain"]]
    printed = _printed(rows, ["JOB", "STATUS"])
    assert printed == _drawn_by_rich(rows, ["JOB", "STATUS"], colours=True)
    assert "\x1b[31mfailed" in printed
