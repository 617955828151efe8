"""Every command's `--help` explains it: a description beyond its one-line help, and each value
named by what it is (`BUILD`, `N`, `FILE`), never argparse's default (the dest, upper-cased)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from conveyor.cli.parser import build_parser

# Actions that take no value on the command line, so have no metavar to name.
_FLAGS = (
    argparse._HelpAction,
    argparse._VersionAction,
    argparse._StoreConstAction,  # store_true and store_false too
    argparse._AppendConstAction,
    argparse._CountAction,
)


def _commands(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub, helps.get(name, "")
                yield from _commands(sub, f"{path} {name}")


COMMANDS = list(_commands(build_parser(), "conveyor"))


def test_every_command_is_walked() -> None:
    names = {path for path, _, _ in COMMANDS}
    assert {"conveyor builds", "conveyor token create", "conveyor notify list"} <= names
    assert len(COMMANDS) > 30


@pytest.mark.parametrize(("path", "parser", "help_line"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_command_has_a_description_and_named_values(
    path: str, parser: argparse.ArgumentParser, help_line: str
) -> None:
    description = parser.description or ""
    assert description, f"{path} has no description"
    assert description.strip().lower() != help_line.strip().lower(), f"{path}: only its help"
    unnamed = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, _FLAGS)
        and action.help is not argparse.SUPPRESS
        and action.metavar is None
        and action.choices is None  # argparse then shows the choices themselves
    ]
    assert not unnamed, f"{path}: default metavars for {unnamed}"
    assert "BUILD BUILD" not in parser.format_help()


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["builds", "--bogus"], "conveyor builds"),
        (["agent", "--data-dri", "x"], "conveyor agent"),
        (["token", "create", "ci", "--role", "viewer", "--bogus"], "conveyor token create"),
    ],
)
def test_an_unknown_flag_points_at_its_command_s_help(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{prog}: error: unrecognized arguments: "), error
    assert error.endswith(f"(see: {prog} --help)\n"), error


@pytest.mark.parametrize("columns", [50, 160])
def test_help_is_laid_out_to_the_terminal_s_width(
    columns: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only help asks the width (the formatters that check a metavar or name a command do not):
    it still wraps at the terminal's, and a wide terminal gets long lines."""
    monkeypatch.setenv("COLUMNS", str(columns))
    for chosen in ("run", None):
        with pytest.raises(SystemExit):
            build_parser(chosen).parse_args(["run", "--help"])
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith("usage: conveyor run ")
        description = next(line for line in lines if line.startswith("Submit PIPELINE.yml"))
        if columns > 100:  # all on one line
            assert description.endswith("2 for invalid input."), description
        else:
            assert len(description) <= columns - 2
            assert not description.endswith("input."), description
