"""Runs a command line in a fresh interpreter under a probe script and takes what the probe
wrote last to stderr after its marker (what the process loaded, or how it left the collector)."""

from __future__ import annotations

import subprocess
import sys


def probed(probe: str, marker: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _, found, report = done.stderr.rpartition(f"\n{marker} ")
    assert found, done.stderr
    return done, report
