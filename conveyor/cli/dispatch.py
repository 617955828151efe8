"""Parse a command line and run the chosen command: its exit code, its errors in one line each."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from conveyor.cli.bounds import printable
from conveyor.cli.errors import CliError
from conveyor.cli.parser import build_parser


def run(argv: Sequence[str]) -> int:
    # Building all ~50 commands' parsers costs more than most commands' own work: only the one
    # named first is built; a line starting with an option (--help) gets them all.
    chosen = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(chosen).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _handle(args)


def _handle(args: argparse.Namespace) -> int:
    try:
        code: int = args.handler(args)
    except CliError as error:
        # One problem a line (a pipeline's issues); each line printed inert.
        lines = (printable(line) for line in str(error).split("\n"))
        print("conveyor: " + "\n".join(lines), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code
