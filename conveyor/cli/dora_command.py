"""`conveyor dora [--env ENV] [--since 30d]`: the delivery figures from the deployment records."""

from __future__ import annotations

import argparse
import time
from typing import Any

from conveyor.cli.client import EXIT_OK, Client
from conveyor.cli.delivery import environment_name
from conveyor.cli.dora_view import DEFAULT_SINCE, DoraDocument, dora_json, print_dora, since
from conveyor.cli.dora_view import since_ms as window_start
from conveyor.v1 import control_pb2


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


def figures_doc(reply: control_pb2.DeliveryFigures) -> DoraDocument:
    """The §8 document; an unset optional field is null (no data), never 0."""
    has = reply.HasField
    frequency = reply.deployment_frequency_per_day
    return {
        "environment": reply.environment or None,
        "since_ms": reply.since_ms,
        "deployments": reply.deployments,
        "deployment_frequency_per_day": frequency if has("deployment_frequency_per_day") else None,
        "lead_time_s": {
            "median": reply.lead_time_median_s if has("lead_time_median_s") else None,
            "p90": reply.lead_time_p90_s if has("lead_time_p90_s") else None,
        },
        "change_failure_rate": reply.change_failure_rate if has("change_failure_rate") else None,
        "time_to_restore_s": {
            "median": (reply.time_to_restore_median_s if has("time_to_restore_median_s") else None)
        },
    }
