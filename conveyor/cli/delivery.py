"""`conveyor envs` and `conveyor deployments ENV`: what runs where, and how it got there."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_OK
from conveyor.cli.terminal import Cell, cell, table
from conveyor.cli.times import shown
from conveyor.documents import deployments_doc, environments_doc
from conveyor.pipeline.issues import quote
from conveyor.pipeline.values import NAME_RE, NAME_RULE
from conveyor.v1 import control_pb2


def environment_name(text: str) -> str:
    if not NAME_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid environment name {quote(text)} ({NAME_RULE})")
    return text


def cmd_envs(args: argparse.Namespace) -> int:
    environments = Client.from_args(args).environments()
    if args.json:
        _emit(environments_doc(list(environments)))
    else:
        print_environments(environments, absolute=args.absolute)
    return EXIT_OK


def cmd_deployments(args: argparse.Namespace) -> int:
    reply = Client.from_args(args).deployments(args.environment, args.limit)
    if args.json:
        _emit(deployments_doc(reply))
    else:
        print_deployments(reply.deployments, absolute=args.absolute)
    return EXIT_OK


def _emit(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def print_environments(
    environments: Sequence[control_pb2.Environment],
    out: TextIO = sys.stdout,
    absolute: bool = False,
) -> None:
    rows: list[list[str | Cell]] = []
    for environment in environments:
        current = environment.current if environment.HasField("current") else None
        rows.append(
            [
                printable(environment.name),
                str(current.build_id) if current else "-",
                printable(current.commit[:12]) if current and current.commit else "-",
                shown(current.finished_at_ms, absolute) if current else "-",
                printable(environment.url) or "-",
            ]
        )
    table(rows, ["NAME", "BUILD", "COMMIT", "DEPLOYED", "URL"], out)


def print_deployments(
    deployments: Sequence[control_pb2.Deployment],
    out: TextIO = sys.stdout,
    absolute: bool = False,
) -> None:
    rows: list[list[str | Cell]] = [
        [
            str(d.id),
            str(d.build_id),
            printable(d.job),
            cell(d.status, d.status),
            printable(d.commit[:12]) if d.commit else "-",
            f"rollback to {d.redeploys}" if d.redeploys else "",
            printable(d.actor),
            shown(d.finished_at_ms, absolute),
        ]
        for d in deployments
    ]
    table(rows, ["ID", "BUILD", "JOB", "STATUS", "COMMIT", "NOTE", "BY", "FINISHED"], out)
