"""`conveyor approve` and `conveyor reject`: a person's decision on an approval gate."""

from __future__ import annotations

import argparse
import json

from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_OK
from conveyor.documents import decision_doc


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide(args, approve=True)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide(args, approve=False)


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    client = Client.from_args(args)
    build = client.decide(args.build, args.job, args.comment or "", approve=approve)
    approval = decision_doc(build, args.job)
    if args.json:
        print(json.dumps(approval, indent=2))
    else:
        print(
            f"build {build.id} job {printable(args.job)}: {approval['decision']} by "
            f"{printable(approval['by'] or '')}"
        )
    return EXIT_OK
