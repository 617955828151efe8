"""The commands that need no coordinator: `lint` (validate files) and `exec` (run a pipeline on
this machine). Handlers are imported when their command is chosen."""

from __future__ import annotations

from conveyor.cli.parsing import Lazy, Parser, Sub


def add_commands(sub: Sub[Parser]) -> None:
    p = sub.add_parser(
        "lint",
        help="validate pipeline files offline",
        description="Validate each PIPELINE.yml as a coordinator would, without one: every "
        "problem of every file, one `FILE:LINE:COLUMN: PATH: problem` line each. Exit 0 when "
        "all are valid (one OK line per file), 2 otherwise.",
    )
    p.add_argument("pipelines", nargs="+", metavar="PIPELINE.yml")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON list: {"file", "valid", "name", "jobs", "problems": '
        '[{"line", "column", "path", "message"}]} per file',
    )
    p.set_defaults(handler=Lazy("conveyor.cli.lint_command:cmd_lint"))
