"""`conveyor dora [--env ENV] [--since 30d]`: the delivery figures from the deployment records."""

from __future__ import annotations

import argparse
import time

from conveyor.cli.client import Client
from conveyor.cli.dora_view import dora_json, print_dora
from conveyor.cli.dora_view import since_ms as window_start
from conveyor.cli.errors import EXIT_OK
from conveyor.documents import figures_doc


def cmd_dora(args: argparse.Namespace) -> int:
    start = window_start(args.since, int(time.time() * 1000))
    reply = Client.from_args(args).delivery_figures(args.env or "", start)
    doc = figures_doc(reply)
    if args.json:
        print(dora_json(doc))
    else:
        print_dora(doc)
    return EXIT_OK
