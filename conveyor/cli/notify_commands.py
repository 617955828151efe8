"""`conveyor notify add | list | remove`: where build, deployment and gate events are POSTed.

Two kinds of target: a webhook (`notify add URL`), which gets the event's JSON signed with its
secret, and a forge's commit statuses (`notify add BASE --commit-status OWNER/REPO`), which
shows a build's result on its commit. Secrets and tokens go in once and are never printed back.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import grpc

from conveyor.cli.bounds import printable
from conveyor.cli.client import CALL_TIMEOUT_S, Client
from conveyor.cli.errors import EXIT_OK, CliError
from conveyor.cli.terminal import table
from conveyor.cli.times import due
from conveyor.times import with_times
from conveyor.v1 import notify_pb2, notify_pb2_grpc

# A secret or token file is read up to this much (the coordinator takes 4096 characters).
MAX_SECRET_READ_BYTES = 8 * 1024
KINDS = {
    notify_pb2.NOTIFY_TARGET_KIND_WEBHOOK: "webhook",
    notify_pb2.NOTIFY_TARGET_KIND_COMMIT_STATUS: "commit-status",
}


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
    rows: list[list[str]] = [
        [
            str(t.id),
            KINDS.get(t.kind, "?"),
            printable(f"{t.url} {t.repo}".strip()),
            ",".join(t.events),
            f"{t.delivered}/{t.pending}/{t.failed}",
            printable(t.last_error[:60]) or "-",
            due(t.next_try_at_ms, args.absolute) if t.HasField("next_try_at_ms") else "-",
        ]
        for t in reply.targets
    ]
    table(rows, ["ID", "KIND", "URL", "EVENTS", "DELIVERED/PENDING/FAILED", "LAST ERROR", "NEXT"])
    return EXIT_OK


def target_doc(target: notify_pb2.NotifyTarget) -> dict[str, Any]:
    return with_times(
        {
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
    )


def _report(args: argparse.Namespace, what: str, target: notify_pb2.NotifyTarget) -> None:
    if args.json:
        print(json.dumps(target_doc(target), indent=2))
        return
    where = printable(f"{target.url} {target.repo}".strip())
    signed = "" if target.signed else " (unsigned)"
    print(f"notification target {target.id} {what}: {where}{signed}")
