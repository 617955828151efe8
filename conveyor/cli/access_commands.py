"""`conveyor token ...`, `conveyor agents revoke` and `conveyor audit`: who may do what, and
who did."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from rich.text import Text

from conveyor.cli.bounds import int_in, printable
from conveyor.cli.client import EXIT_OK, Client
from conveyor.cli.terminal import table
from conveyor.v1 import control_pb2

ROLES = ("viewer", "developer", "deployer", "admin")
MAX_AUDIT_LIMIT = 10_000  # the coordinator's cap too


def add_commands(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    token = sub.add_parser(
        "token",
        help="create, list or revoke named client tokens (admin)",
        description="Named client tokens, each with a role: viewer reads; developer also runs, "
        "cancels and retries; deployer also approves, rejects and rolls back; admin also "
        "manages agents, tokens, secrets, repositories and garbage collection.",
    )
    verbs = token.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser(
        "create", parents=[common], help="make a token; its secret is printed this once only"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=ROLES)
    p.set_defaults(handler=cmd_token_create)
    p = verbs.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    p.set_defaults(handler=cmd_token_list)
    p = verbs.add_parser("revoke", parents=[common], help="refuse a token from now on")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=cmd_token_revoke)

    p = sub.add_parser("audit", parents=[common], help="who changed what, and when")
    p.add_argument(
        "--limit",
        type=int_in(1, MAX_AUDIT_LIMIT),
        default=100,
        help=f"how many events, newest first (default 100, at most {MAX_AUDIT_LIMIT})",
    )
    p.set_defaults(handler=cmd_audit)


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
    return {
        "name": token.name,
        "role": token.role,
        "created_at_ms": token.created_at_ms,
        "last_used_ms": token.last_used_ms or None,
    }


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = Client.from_args(args).tokens()
    if args.json:
        _emit({"tokens": [token_doc(t) for t in tokens]})
    else:
        print_tokens(tokens)
    return EXIT_OK


def print_tokens(tokens: Sequence[control_pb2.Token], out: TextIO = sys.stdout) -> None:
    rows: list[list[str | Text]] = [
        [printable(t.name), t.role, _when(t.created_at_ms), _when(t.last_used_ms)] for t in tokens
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
    return {
        "at_ms": event.at_ms,
        "by": event.by,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
    }


def cmd_audit(args: argparse.Namespace) -> int:
    events = Client.from_args(args).audit(args.limit)
    if args.json:
        _emit({"events": [audit_doc(e) for e in events]})
    else:
        rows: list[list[str | Text]] = [
            [
                _when(e.at_ms),
                printable(e.by),
                e.action,
                printable(e.target),
                printable(e.detail) or "-",
            ]
            for e in events
        ]
        table(rows, ["WHEN", "BY", "ACTION", "TARGET", "DETAIL"], sys.stdout)
    return EXIT_OK


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))
