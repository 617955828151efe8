"""`conveyor artifacts` and `conveyor gc`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from conveyor.cli.artifacts import Transfers
from conveyor.cli.bounds import printable
from conveyor.cli.client import Client
from conveyor.cli.errors import EXIT_FAILED, EXIT_OK, CliError
from conveyor.cli.terminal import table
from conveyor.paths import format_size
from conveyor.v1 import blobs_pb2


def _artifact_doc(artifact: blobs_pb2.Artifact) -> dict[str, Any]:
    return {
        "job": artifact.job,
        "name": artifact.name,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "mode": oct(artifact.mode),
        "attempt": artifact.attempt_number,
    }


def _source_doc(listing: blobs_pb2.ListArtifactsResponse) -> dict[str, str] | None:
    if listing.HasField("git"):
        return {"git": listing.git.url, "ref": listing.git.ref, "commit": listing.git.commit}
    if listing.snapshot_sha256:
        return {"snapshot": listing.snapshot_sha256}
    return None


def _print_listing(listing: blobs_pb2.ListArtifactsResponse) -> None:
    source = _source_doc(listing)
    if source is not None:
        print("source: " + " ".join(f"{k}={printable(v) or '-'}" for k, v in source.items()))
    if not listing.artifacts:
        print("no artifacts")
        return
    rows = [
        (printable(a.job), printable(a.name), format_size(a.size), a.sha256)
        for a in listing.artifacts
    ]
    table(rows, ("JOB", "NAME", "SIZE", "SHA256"))


def _download_root(text: str) -> Path:
    """--download DIR, made if missing; a usage error if it cannot be a directory."""
    root = Path(text)
    if root.exists() and not root.is_dir():
        raise CliError(f"--download {printable(text)}: exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(
            f"--download {printable(text)}: cannot create it ({error.strerror})"
        ) from None
    return root


def cmd_artifacts(args: argparse.Namespace) -> int:
    root = _download_root(args.download) if args.download else None
    transfers = Transfers(Client.from_args(args))
    listing = transfers.list(args.build)
    chosen = [
        a
        for a in listing.artifacts
        if (not args.job or a.job == args.job) and (not args.name or a.name == args.name)
    ]
    written = []
    if root is not None:
        for artifact in chosen:
            try:
                path = transfers.download(args.build, artifact, root)
            except OSError as error:
                where = printable(error.filename or str(root))
                raise CliError(f"cannot write {where}: {error.strerror}", EXIT_FAILED) from None
            written.append(str(path))
            if not args.json:
                print(f"{printable(str(path))} ({format_size(artifact.size)}, sha256 verified)")
    if args.json:
        doc: dict[str, Any] = {
            "source": _source_doc(listing),
            "artifacts": [_artifact_doc(a) for a in chosen],
        }
        if args.download:
            doc["downloaded"] = written
        print(json.dumps(doc, indent=2))
    elif not args.download:
        shown = blobs_pb2.ListArtifactsResponse(artifacts=chosen)
        shown.git.CopyFrom(listing.git)
        shown.snapshot_sha256 = listing.snapshot_sha256
        if not listing.HasField("git"):
            shown.ClearField("git")
        _print_listing(shown)
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    result = Transfers(Client.from_args(args)).collect(args.older_than)
    if args.json:
        print(json.dumps({"builds": result.builds, "blobs": result.blobs, "bytes": result.bytes}))
    else:
        print(
            f"dropped artifacts and sources of {result.builds} builds; "
            f"removed {result.blobs} files ({format_size(result.bytes)})"
        )
    return EXIT_OK
