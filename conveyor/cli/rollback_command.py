"""`conveyor rollback ENV [--to DEPLOYMENT]`: redeploy an earlier deployment, nothing rebuilt."""

from __future__ import annotations

import argparse
import json

from conveyor import wire
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_FAILED, EXIT_OK
from conveyor.cli.follow import follow_build
from conveyor.cli.render import print_build
from conveyor.cli.views import again, open_view, stopped_following
from conveyor.documents import build_doc
from conveyor.states import BuildStatus


def cmd_rollback(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    started = client.rollback(args.environment, args.to)
    if args.no_follow:
        if args.json:
            print(json.dumps({"id": started.build_id, "redeploys": started.redeploys}, indent=2))
        else:
            print(
                f"build {started.build_id} redeploys deployment {started.redeploys} to "
                f"{args.environment}; follow it with: "
                f"{again(args, f'show {started.build_id} --follow')}"
            )
        return EXIT_OK
    if not args.json:
        print(
            f"build {started.build_id} redeploys deployment {started.redeploys} to "
            f"{args.environment}",
            flush=True,
        )
    try:
        view = None if args.json else open_view(args)
        build = follow_build(client, started.build_id, not args.json, view=view)
    except KeyboardInterrupt:
        return stopped_following(started.build_id, args)
    if args.json:
        print(json.dumps(build_doc(build), indent=2))
    else:
        print_build(build)
    succeeded = wire.build_status_from_pb(build.status) is BuildStatus.SUCCEEDED
    return EXIT_OK if succeeded else EXIT_FAILED
