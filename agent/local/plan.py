"""What `conveyor exec` is asked to run, checked before anything runs: the pipeline, the jobs
(`--job` and what they need, in `needs` order), gates and secrets. Any problem is a CliError
(exit 2) and nothing runs."""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from conveyor.cli.errors import CliError
from conveyor.cli.run_command import parse_env
from conveyor.pipeline import JobDef, Pipeline, PipelineError, load_pipeline


def read_plan_input(args: argparse.Namespace) -> tuple[Pipeline, dict[str, str]]:
    env = parse_env(args.env or [])
    try:
        data = Path(args.pipeline).read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {args.pipeline}: {error.strerror}") from None
    try:
        return load_pipeline(data, args.pipeline), env
    except PipelineError as error:
        raise CliError(str(error)) from None


def _needed(pipeline: Pipeline, names: list[str]) -> set[str]:
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(pipeline.job(name).needs)
    return wanted


def _ordered(jobs: list[JobDef]) -> list[JobDef]:
    """File order, each job moved after what it needs (the graph is acyclic: validated)."""
    done: set[str] = set()
    ordered: list[JobDef] = []
    pending = list(jobs)
    while pending:
        ready = next(job for job in pending if set(job.needs) <= done)
        pending.remove(ready)
        ordered.append(ready)
        done.add(ready.name)
    return ordered


def select_jobs(pipeline: Pipeline, only: list[str] | None, *, approve_all: bool) -> list[JobDef]:
    names = [job.name for job in pipeline.jobs]
    for name in only or ():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (jobs: {', '.join(names)})"
            raise CliError(f"--job {name!r}: no such job in pipeline {pipeline.name!r}{hint}")
    wanted = _needed(pipeline, only) if only else set(names)
    jobs = _ordered([job for job in pipeline.jobs if job.name in wanted])
    gates = [job.name for job in jobs if job.approval is not None]
    if gates and not approve_all:
        raise CliError(
            f"job {gates[0]!r} is an approval gate, and exec has no one to ask: pass "
            "--approve-all to take every gate as approved, or --job to run only jobs before it"
        )
    return jobs


def secrets_of(jobs: list[JobDef], pairs: list[str]) -> dict[str, str]:
    """The `--secret NAME=VALUE` values; every secret a chosen job names must be given."""
    given: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--secret {name or '...'}=...: expected NAME=VALUE")
        given[name] = value
    for job in jobs:
        missing = [name for name in job.secrets if name not in given]
        if missing:
            raise CliError(
                f"job {job.name!r} needs the secret {missing[0]!r}: pass --secret "
                f"{missing[0]}=VALUE (exec has no secret store)"
            )
    return given
