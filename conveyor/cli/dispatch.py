"""Parse a command line and run the chosen command: its exit code, its errors in one line each."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from conveyor.cli import collector
from conveyor.cli.bounds import printable
from conveyor.cli.errors import CliError
from conveyor.cli.parser import build_parser
from conveyor.cli.parsing import Lazy, client_options


def run(argv: Sequence[str]) -> int:
    # Connection flags given before the command are the command's (`--context farm builds`).
    argv = connection_flags_last(argv)
    # Building all ~50 commands' parsers costs more than most commands' own work: only the one
    # named first is built; a line starting with an option (--help) gets them all.
    chosen = argv[0] if argv and not argv[0].startswith("-") else None
    args = build_parser(chosen).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return _handle(args)


def connection_flags_last(argv: Sequence[str]) -> list[str]:
    """`argv` with the connection flags that come before the command's name moved after its
    other arguments (before a `--`), where the command's own parser takes them."""
    # As `docker --context` and `kubectl --context` take them: before the command's name too.
    flags = {o for a in client_options()._actions if a.nargs != 0 for o in a.option_strings}
    rest, leading = list(argv), []
    while rest and rest[0].split("=", 1)[0] in flags:
        flag = rest.pop(0)
        leading.append(flag)
        if "=" not in flag and rest:
            leading.append(rest.pop(0))
    if not leading or not rest:
        return list(argv)  # nothing moved, or no command to give them to: argparse says so
    end = rest.index("--") if "--" in rest else len(rest)
    return rest[:end] + leading + rest[end:]


def _handle(args: argparse.Namespace) -> int:
    try:
        handler = args.handler.resolve() if isinstance(args.handler, Lazy) else args.handler
        # Its code is loaded: what the command makes from here on is collected as usual.
        collector.resume()
        code: int = handler(args)
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
