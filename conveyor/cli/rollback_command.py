"""`conveyor rollback ENV [--to DEPLOYMENT]`: redeploy an earlier deployment, nothing rebuilt."""

from __future__ import annotations

import argparse
import json
from typing import Any

from conveyor import wire
from conveyor.cli.client import EXIT_FAILED, EXIT_OK, Client
from conveyor.cli.delivery import environment_name
from conveyor.cli.follow import follow_build
from conveyor.cli.render import print_build
from conveyor.documents import build_doc
from conveyor.states import BuildStatus


def add_command(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="deploy an earlier deployment's commit and artifacts again (nothing is rebuilt)",
        description=(
            "Starts a build that runs only the deployment job of an earlier deployment of ENV, "
            "with its recorded pipeline, commit and artifacts (by digest), and follows it like "
            "`conveyor run`. Default: the last successful deployment before the current one that "
            "deployed something else."
        ),
    )
    p.add_argument("environment", type=environment_name, metavar="ENV")
    p.add_argument(
        "--to",
        type=_deployment_id,
        metavar="DEPLOYMENT",
        help="the id of the deployment to deploy again (see `conveyor deployments ENV`)",
    )
    p.add_argument("--no-follow", action="store_true", help="return once the build is queued")
    p.set_defaults(handler=cmd_rollback)


def _deployment_id(text: str) -> int:
    if not text.isdigit() or int(text) < 1 or int(text) > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"invalid deployment id {text!r} (a positive number)")
    return int(text)


def cmd_rollback(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    started = client.rollback(args.environment, args.to)
    if args.no_follow:
        if args.json:
            print(json.dumps({"id": started.build_id, "redeploys": started.redeploys}, indent=2))
        else:
            print(
                f"build {started.build_id} redeploys deployment {started.redeploys} to "
                f"{args.environment}; follow it with: conveyor show {started.build_id}"
            )
        return EXIT_OK
    if not args.json:
        print(
            f"build {started.build_id} redeploys deployment {started.redeploys} to "
            f"{args.environment}",
            flush=True,
        )
    build = follow_build(client, started.build_id, show_progress=not args.json)
    if args.json:
        print(json.dumps(build_doc(build), indent=2))
    else:
        print_build(build)
    succeeded = wire.build_status_from_pb(build.status) is BuildStatus.SUCCEEDED
    return EXIT_OK if succeeded else EXIT_FAILED
