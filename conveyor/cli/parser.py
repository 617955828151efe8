"""The whole `conveyor` argument parser: every command, its arguments and its help."""

from __future__ import annotations

import argparse

from conveyor import __version__
from conveyor.cli import (
    parser_admin,
    parser_builds,
    parser_contexts,
    parser_local,
    parser_sides,
)
from conveyor.cli.parsing import Commands, Lazy, Parser, client_options


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser, or with `chosen` (the first word of a command line) only that
    command's arguments: parsing the line gives the same either way."""
    parser = Parser(
        prog="conveyor",
        description="Conveyor: a build farm. Start a coordinator with `conveyor server`, agents "
        "with `conveyor agent`, and run pipelines with `conveyor run`.",
    )
    parser.add_argument("--version", action="version", version=f"conveyor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=Commands)
    assert isinstance(sub, Commands)
    sub.chosen = chosen
    parser_sides.add_server(sub)
    parser_sides.add_agent(sub)
    common = client_options()
    parser_builds.add_commands(sub, common)
    parser_admin.add_commands(sub, common)
    parser_local.add_commands(sub)
    p = sub.add_parser(
        "version",
        parents=[common],
        help="print this CLI's version and protocol, and the coordinator's",
        description="Print the version and protocol of this CLI and, if a coordinator answers, "
        "its own (and the context it was found by); exit 0 either way, with the reason in "
        "place of the coordinator's when none answers (`conveyor --version` prints the CLI's "
        "version alone).",
    )
    p.set_defaults(handler=Lazy("conveyor.cli.version_command:cmd_version"))
    parser_contexts.add_commands(sub)
    return parser
