"""What the CLI prints for people: the tables (the JSON documents are `conveyor.documents`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from conveyor import wire
from conveyor.cli.bounds import printable
from conveyor.cli.terminal import Cell, cell, colour, table
from conveyor.cli.times import shown
from conveyor.documents import build_doc
from conveyor.v1 import control_pb2


def _duration(start_ms: int, end_ms: int) -> str:
    if not start_ms:
        return "-"
    end = end_ms or int(time.time() * 1000)
    return f"{(end - start_ms) / 1000:.1f}s"


def print_build(build: control_pb2.Build, out: TextIO = sys.stdout) -> None:
    doc = build_doc(build)
    status = colour(doc["status"], doc["status"], out)
    origin = f", redeploys deployment {doc['redeploys']}" if doc["redeploys"] else ""
    print(f"build {build.id} ({printable(build.name)}{origin}): {status}", file=out)
    trigger = doc["trigger"]
    if trigger is not None:
        ref = f"tag {trigger['tag']}" if trigger["tag"] else f"branch {trigger['branch']}"
        print(
            f"{trigger['event']} of {printable(trigger['repo'])} {printable(ref)} at "
            f"{trigger['commit'][:12]} by {printable(trigger['author'])}: "
            f"{printable(trigger['message'])}",
            file=out,
        )
    for line in (doc["error"] or "").splitlines():
        print(f"error: {printable(line)}", file=out)
    rows: list[list[str | Cell]] = []
    for job, job_pb in zip(doc["jobs"], build.jobs, strict=True):
        latest = job_pb.attempts[-1] if job_pb.attempts else None
        why = job["message"] or job["reason"] or ""
        if job["reason"] and job["message"] and job["status"] != "waiting":
            why = f"{job['reason']}: {job['message']}"
        rows.append(
            [
                printable(job["name"]),
                cell(job["status"], job["status"]),
                str(job["attempts"]),
                "" if job["exit_code"] is None else str(job["exit_code"]),
                printable(job["agent"] or ""),
                _duration(latest.started_at_ms, latest.finished_at_ms) if latest else "-",
                printable(why),
            ]
        )
    table(rows, ["JOB", "STATUS", "ATTEMPTS", "EXIT", "AGENT", "TIME", "REASON"], out)


def print_builds(
    builds: Sequence[control_pb2.Build], out: TextIO = sys.stdout, absolute: bool = False
) -> None:
    rows: list[list[str | Cell]] = []
    for build in builds:
        status = wire.build_status_from_pb(build.status).value
        rows.append(
            [
                str(build.id),
                printable(build.name),
                cell(status, status),
                str(build.job_count),
                shown(build.created_at_ms, absolute),
                _duration(build.created_at_ms, build.finished_at_ms),
                _origin(build),
            ]
        )
    table(rows, ["ID", "NAME", "STATUS", "JOBS", "CREATED", "DURATION", "TRIGGER"], out)


def _origin(build: control_pb2.Build) -> str:
    """What started a repository's build, or why it could not run (its first line)."""
    if build.error:
        return printable("error: " + build.error.splitlines()[0])
    if not build.HasField("trigger"):
        return ""
    trigger = build.trigger
    return printable(f"{trigger.event} {trigger.repo} {trigger.branch or trigger.tag}")


def print_agents(
    agents: Sequence[control_pb2.Agent], out: TextIO = sys.stdout, absolute: bool = False
) -> None:
    rows: list[list[str | Cell]] = []
    for agent in agents:
        labels = ",".join(f"{k}={v}" for k, v in sorted(agent.labels.items())) or "-"
        rows.append(
            [
                printable(agent.name),
                cell(agent.state, agent.state),
                f"{agent.running}/{agent.capacity}",
                printable(labels),
                shown(agent.last_seen_ms, absolute),
            ]
        )
    table(rows, ["NAME", "STATE", "RUNNING", "LABELS", "LAST SEEN"], out)
