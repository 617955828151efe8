"""What `conveyor __complete builds|jobs` asks the coordinator: its newest builds, a build's
jobs. Imported by name only when asked, so the rest of `__complete` loads no gRPC."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from conveyor.cli.client import Client
from conveyor.v1 import control_pb2, control_pb2_grpc, types_pb2

# Newest builds offered.
BUILDS_OFFERED = 50


def coordinator_values(args: argparse.Namespace) -> Iterator[str]:
    """`args.call_limit_s`: each call's deadline, inside `__complete`'s own limit."""
    client = Client.from_args(args)
    stub = control_pb2_grpc.ControlServiceStub(client.channel)
    if args.kind == "builds":
        request = control_pb2.ListBuildsRequest(limit=BUILDS_OFFERED)
        reply = stub.ListBuilds(request, metadata=client.metadata, timeout=args.call_limit_s)
        for build in reply.builds:
            status = types_pb2.BuildStatus.Name(build.status).removeprefix("BUILD_STATUS_")
            yield f"{build.id}\t{_inert(build.name)} {status.lower()}"
        return
    if args.build is None:
        return
    build = stub.GetBuild(
        control_pb2.GetBuildRequest(build_id=args.build),
        metadata=client.metadata,
        timeout=args.call_limit_s,
    )
    for job in build.jobs:
        status = types_pb2.JobStatus.Name(job.status).removeprefix("JOB_STATUS_")
        yield f"{_inert(job.name)}\t{status.lower()}"


def _inert(text: str) -> str:
    # Names are other people's: no tab, newline or escape may reach the shell's display.
    return "".join(char if char.isprintable() and char != "\t" else "?" for char in text)
