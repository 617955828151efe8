"""`conveyor notify add | list | remove`: where build, deployment and gate events are POSTed.

Two kinds of target: a webhook (`notify add URL`), which gets the event's JSON signed with its
secret, and a forge's commit statuses (`notify add BASE --commit-status OWNER/REPO`), which
shows a build's result on its commit. Secrets and tokens go in once and are never printed back.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import grpc
from rich.text import Text

from conveyor.cli.bounds import int_in, printable
from conveyor.cli.client import CALL_TIMEOUT_S, EXIT_OK, Client, CliError
from conveyor.cli.terminal import table
from conveyor.v1 import notify_pb2, notify_pb2_grpc

EVENTS = ("build", "deployment", "gate")
MAX_ROW_ID = 2**31 - 1  # the coordinator's bound on ids too
# A secret or token file is read up to this much (the coordinator takes 4096 characters).
MAX_SECRET_READ_BYTES = 8 * 1024
KINDS = {
    notify_pb2.NOTIFY_TARGET_KIND_WEBHOOK: "webhook",
    notify_pb2.NOTIFY_TARGET_KIND_COMMIT_STATUS: "commit-status",
}


def add_commands(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "notify",
        help="add, list or remove notification targets (admin)",
        description="Targets the coordinator POSTs events to: a build finished, a deployment "
        "finished, a gate waits for approval. Each event is kept until delivered (a 2xx "
        "answer), retried with backoff, in order per target, across restarts.",
    )
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = verbs.add_parser(
        "add",
        parents=[common],
        help="add a webhook, or a forge's commit statuses",
        description="Add a webhook URL (JSON events, signed X-Conveyor-Signature: sha256=HEX "
        "with --secret/--secret-file; unsigned without), or with --commit-status OWNER/REPO "
        "a forge's API base (e.g. https://gitea.example/api/v1 or https://api.github.com) "
        "whose statuses API shows each build's result on its commit.",
    )
    s.add_argument("url", metavar="URL")
    s.add_argument(
        "--events",
        type=_events,
        default=(),
        metavar="LIST",
        help="comma-separated: build,deployment,gate (default: all; commit statuses: build,gate)",
    )
    s.add_argument("--secret", metavar="S", help="HMAC secret (shows in process listings)")
    s.add_argument("--secret-file", metavar="FILE", help="read the HMAC secret from FILE")
    s.add_argument("--commit-status", metavar="OWNER/REPO", help="post commit statuses there")
    s.add_argument("--forge-token-file", metavar="FILE", help="the forge's API token")
    s.add_argument("--link", metavar="URL", help="statuses link URL/builds/ID (the web view)")
    s.set_defaults(handler=cmd_add)
    s = verbs.add_parser("list", parents=[common], help="list targets and their deliveries")
    s.set_defaults(handler=cmd_list)
    s = verbs.add_parser("remove", parents=[common], help="remove a target and its events")
    s.add_argument("id", type=int_in(1, MAX_ROW_ID), metavar="ID")
    s.set_defaults(handler=cmd_remove)


def _events(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in EVENTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown event {unknown[0]!r}" if unknown else "no event named"
        )
    return names


def _stub(client: Client) -> notify_pb2_grpc.NotifyServiceStub:
    return notify_pb2_grpc.NotifyServiceStub(client.channel)


def _call(client: Client, method: Any, request: object) -> Any:
    try:
        return method(request, metadata=client.metadata, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        raise client.explain(error) from None


def _read_file(path: str, flag: str) -> str:
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_SECRET_READ_BYTES)
    except OSError as error:
        raise CliError(f"{flag}: cannot read {path}: {error.strerror}") from None
    text = raw.decode(errors="replace").strip()
    if not text:
        raise CliError(f"{flag}: {path} is empty")
    return text


def _request(args: argparse.Namespace) -> notify_pb2.AddNotifyTargetRequest:
    if args.secret is not None and args.secret_file:
        raise CliError("give --secret or --secret-file, not both")
    if args.commit_status:
        if args.secret is not None or args.secret_file:
            raise CliError("a commit-status target takes --forge-token-file, not a secret")
        if not args.forge_token_file:
            raise CliError("--commit-status needs --forge-token-file FILE (the forge's token)")
        secret = _read_file(args.forge_token_file, "--forge-token-file")
        kind = notify_pb2.NOTIFY_TARGET_KIND_COMMIT_STATUS
    else:
        if args.forge_token_file or args.link:
            raise CliError("--forge-token-file and --link are for --commit-status targets")
        secret = args.secret or ""
        if args.secret_file:
            secret = _read_file(args.secret_file, "--secret-file")
        kind = notify_pb2.NOTIFY_TARGET_KIND_WEBHOOK
    return notify_pb2.AddNotifyTargetRequest(
        kind=kind,
        url=args.url,
        repo=args.commit_status or "",
        events=list(args.events),
        secret=secret,
        link=args.link or "",
    )


def cmd_add(args: argparse.Namespace) -> int:
    request = _request(args)
    client = Client.from_args(args)
    target = _call(client, _stub(client).AddNotifyTarget, request)
    _report(args, "added", target)
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    request = notify_pb2.RemoveNotifyTargetRequest(id=args.id)
    target = _call(client, _stub(client).RemoveNotifyTarget, request)
    _report(args, "removed", target)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    client = Client.from_args(args)
    reply = _call(client, _stub(client).ListNotifyTargets, notify_pb2.ListNotifyTargetsRequest())
    if args.json:
        print(json.dumps({"targets": [target_doc(t) for t in reply.targets]}, indent=2))
        return EXIT_OK
    rows: list[list[str | Text]] = [
        [
            str(t.id),
            KINDS.get(t.kind, "?"),
            printable(f"{t.url} {t.repo}".strip()),
            ",".join(t.events),
            f"{t.delivered}/{t.pending}/{t.failed}",
            printable(t.last_error[:60]) or "-",
            _next_try(t),
        ]
        for t in reply.targets
    ]
    table(rows, ["ID", "KIND", "URL", "EVENTS", "DELIVERED/PENDING/FAILED", "LAST ERROR", "NEXT"])
    return EXIT_OK


def _next_try(target: notify_pb2.NotifyTarget) -> str:
    if not target.HasField("next_try_at_ms"):
        return "-"
    seconds = max(0, int(target.next_try_at_ms / 1000 - time.time()))
    return f"in {seconds}s" if seconds else "now"


def target_doc(target: notify_pb2.NotifyTarget) -> dict[str, Any]:
    return {
        "id": target.id,
        "kind": KINDS.get(target.kind, "unknown"),
        "url": target.url,
        "repo": target.repo or None,
        "events": list(target.events),
        "signed": target.signed,
        "created_at_ms": target.created_at_ms,
        "created_by": target.created_by,
        "delivered": target.delivered,
        "pending": target.pending,
        "failed": target.failed,
        "last_error": target.last_error or None,
        "next_try_at_ms": target.next_try_at_ms if target.HasField("next_try_at_ms") else None,
    }


def _report(args: argparse.Namespace, what: str, target: notify_pb2.NotifyTarget) -> None:
    if args.json:
        print(json.dumps(target_doc(target), indent=2))
        return
    where = printable(f"{target.url} {target.repo}".strip())
    signed = "" if target.signed else " (unsigned)"
    print(f"notification target {target.id} {what}: {where}{signed}")
