"""`conveyor dora [--env ENV] [--since 30d]`: the delivery figures from the deployment records."""

from __future__ import annotations

import argparse
import time
from typing import Any

from conveyor.cli.client import EXIT_OK, Client
from conveyor.cli.delivery import environment_name
from conveyor.cli.dora_view import DEFAULT_SINCE, dora_json, print_dora, since
from conveyor.cli.dora_view import since_ms as window_start
from conveyor.documents import figures_doc


def add_command(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "dora",
        parents=[common],
        help="delivery figures: deployment frequency, lead time, failure rate, time to restore",
        description="The four delivery figures (DORA) over a window ending now, computed from "
        "the recorded deployments of one environment or of all.",
    )
    p.add_argument("--env", type=environment_name, metavar="ENV", help="only this environment")
    p.add_argument(
        "--since",
        type=since,
        default=since(DEFAULT_SINCE),
        metavar="AGE",
        help=f"the window, back from now (default {DEFAULT_SINCE})",
    )
    p.set_defaults(handler=cmd_dora)


def cmd_dora(args: argparse.Namespace) -> int:
    start = window_start(args.since, int(time.time() * 1000))
    reply = Client.from_args(args).delivery_figures(args.env or "", start)
    doc = figures_doc(reply)
    if args.json:
        print(dora_json(doc))
    else:
        print_dora(doc)
    return EXIT_OK
