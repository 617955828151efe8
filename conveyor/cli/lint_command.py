"""`conveyor lint`: the pipeline validator's findings for files, offline."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.cli.bounds import printable
from conveyor.cli.errors import EXIT_OK, EXIT_USAGE
from conveyor.pipeline import Pipeline, PipelineError, PipelineIssue, load_pipeline


@dataclass
class Finding:
    """One file's verdict: its pipeline when valid, else every problem found in it."""

    path: str
    pipeline: Pipeline | None = None
    issues: list[PipelineIssue] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        problems = [
            {"line": i.line, "column": i.column, "path": i.path, "message": i.message}
            for i in self.issues
        ]
        return {
            "file": self.path,
            "valid": self.pipeline is not None,
            "name": self.pipeline.name if self.pipeline else None,
            "jobs": [job.name for job in self.pipeline.jobs] if self.pipeline else [],
            "problems": problems,
        }

    def lines(self) -> list[str]:
        if self.pipeline is None:
            return [issue.format(self.path) for issue in self.issues]
        jobs = len(self.pipeline.jobs)
        plural = "" if jobs == 1 else "s"
        return [f"{self.path}: OK (pipeline {self.pipeline.name!r}, {jobs} job{plural})"]


def lint_file(path: str) -> Finding:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return Finding(
            path, issues=[PipelineIssue("", f"cannot read: {error.strerror}", None, None)]
        )
    try:
        return Finding(path, load_pipeline(data, path))
    except PipelineError as error:
        return Finding(path, issues=error.issues)


def cmd_lint(args: argparse.Namespace) -> int:
    findings = [lint_file(path) for path in args.pipelines]
    if args.json:
        print(json.dumps([finding.doc() for finding in findings], indent=2))
    else:
        for finding in findings:
            for line in finding.lines():
                print(printable(line))
    valid = all(finding.pipeline is not None for finding in findings)
    return EXIT_OK if valid else EXIT_USAGE
