"""`conveyor __complete builds|jobs BUILD|contexts [connection flags]`: the values the shell
completion scripts ask for, one a line as `VALUE<TAB>DESCRIPTION`.

Hidden (not in `--help`) and answered before the full parser is built (see `main`). It is
called on every Tab press, so it gives up within a second and fails silently: no output, exit
1, never a message (a shell would print it over the command line being typed).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import NoReturn

from conveyor.cli.parsing import Lazy, Parser, client_options

# The whole answer, connecting included, or nothing: a Tab press must not hang the shell.
# $CONVEYOR_COMPLETE_LIMIT (seconds) changes it, for a slow link or a loaded machine.
COMPLETE_LIMIT_S = 1.0
# The share of it the coordinator's call may take; the rest is for starting and printing.
CALL_SHARE = 0.8


class _TimeUp(Exception):
    pass


def _time_up(signum: int, frame: FrameType | None) -> None:
    raise _TimeUp


class _Quiet(Parser):
    """Its arguments come from a script, not a person: wrong ones are not worth a word."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _parser() -> Parser:
    parser = _Quiet(prog="conveyor __complete", parents=[client_options()], add_help=False)
    parser.add_argument("kind", choices=("builds", "jobs", "contexts"))
    parser.add_argument("build", nargs="?", type=int)
    return parser


def limit_s() -> float:
    try:
        given = float(os.environ.get("CONVEYOR_COMPLETE_LIMIT", COMPLETE_LIMIT_S))
    except ValueError:
        return COMPLETE_LIMIT_S
    return given if 0 < given < math.inf else COMPLETE_LIMIT_S


def run(argv: Sequence[str]) -> int:
    limit = limit_s()
    signal.signal(signal.SIGALRM, _time_up)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        args = _parser().parse_args(argv)
        args.call_limit_s = limit * CALL_SHARE
        lines = list(_values(args))
    except Exception:  # the time limit (_TimeUp) too
        return 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    for line in lines:
        print(line)
    return 0


def _values(args: argparse.Namespace) -> Iterator[str]:
    if args.kind == "contexts":
        from conveyor.cli import contexts

        config = contexts.load()
        for name, context in config.contexts.items():
            yield f"{name}\t{context.coordinator}"
        return
    # gRPC only when the coordinator is asked (by name: the parser's modules import no gRPC).
    yield from Lazy("conveyor.cli.complete_values:coordinator_values")(args)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
