"""`conveyor token ...`, `conveyor agents revoke` and `conveyor audit`: who may do what, and
who did."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_OK
from conveyor.cli.terminal import table
from conveyor.cli.times import shown
from conveyor.times import with_times
from conveyor.v1 import control_pb2


def _emit(doc: Any) -> None:
    print(json.dumps(doc, indent=2))


def cmd_token_create(args: argparse.Namespace) -> int:
    reply = Client.from_args(args).create_token(args.name, args.role)
    if args.json:
        _emit({"name": reply.token.name, "role": reply.token.role, "token": reply.secret})
    else:
        print(reply.secret)
        print(
            f"token {printable(reply.token.name)} (role {reply.token.role}) created: keep it "
            "now, it is not shown again",
            file=sys.stderr,
        )
    return EXIT_OK


def token_doc(token: control_pb2.Token) -> dict[str, Any]:
    return with_times(
        {
            "name": token.name,
            "role": token.role,
            "created_at_ms": token.created_at_ms,
            "last_used_ms": token.last_used_ms or None,
        }
    )


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = Client.from_args(args).tokens()
    if args.json:
        _emit({"tokens": [token_doc(t) for t in tokens]})
    else:
        print_tokens(tokens, absolute=args.absolute)
    return EXIT_OK


def print_tokens(
    tokens: Sequence[control_pb2.Token], out: TextIO = sys.stdout, absolute: bool = False
) -> None:
    rows: list[list[str]] = [
        [
            printable(t.name),
            t.role,
            shown(t.created_at_ms, absolute),
            shown(t.last_used_ms, absolute),
        ]
        for t in tokens
    ]
    table(rows, ["NAME", "ROLE", "CREATED", "LAST USED"], out)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    token = Client.from_args(args).revoke_token(args.name)
    if args.json:
        _emit(token_doc(token))
    else:
        print(f"token {printable(token.name)} (role {token.role}) revoked")
    return EXIT_OK


def audit_doc(event: control_pb2.AuditEvent) -> dict[str, Any]:
    return with_times(
        {
            "at_ms": event.at_ms,
            "by": event.by,
            "action": event.action,
            "target": event.target,
            "detail": event.detail,
        }
    )


def cmd_audit(args: argparse.Namespace) -> int:
    events = Client.from_args(args).audit(args.limit)
    if args.json:
        _emit({"events": [audit_doc(e) for e in events]})
    else:
        rows: list[list[str]] = [
            [
                shown(e.at_ms, args.absolute),
                printable(e.by),
                e.action,
                printable(e.target),
                printable(e.detail) or "-",
            ]
            for e in events
        ]
        table(rows, ["WHEN", "BY", "ACTION", "TARGET", "DETAIL"], sys.stdout)
    return EXIT_OK
