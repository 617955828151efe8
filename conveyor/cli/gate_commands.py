"""`conveyor approve` and `conveyor reject`: a person's decision on an approval gate."""

from __future__ import annotations

import argparse
import json

from conveyor.cli.bounds import printable
from conveyor.cli.client import EXIT_OK, Client
from conveyor.cli.render import build_doc


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    client = Client.from_args(args)
    build = client.decide(args.build, args.job, args.comment or "", approve=approve)
    doc = build_doc(build)
    gate = next(job for job in doc["jobs"] if job["name"] == args.job)
    if args.json:
        print(json.dumps({"build": build.id, "job": args.job, **gate["approval"]}, indent=2))
    else:
        approval = gate["approval"]
        print(
            f"build {build.id} job {printable(args.job)}: {approval['decision']} by "
            f"{printable(approval['by'] or '')}"
        )
    return EXIT_OK
