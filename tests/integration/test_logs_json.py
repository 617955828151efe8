"""`conveyor logs BUILD JOB --json`: one document with the attempt's steps and each step's log
as text, against a real coordinator and agent; `--follow --json` is refused, not half-done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness import Cluster, write_pipeline

# The CLI's rendering of a log and its steps: the log is a file, the steps are read as
# test_builds reads them on both backends.
pytestmark = pytest.mark.any_store

TWO_STEPS = """\
name: talk
image: conveyor/busybox
jobs:
  talk:
    steps:
      - name: greet
        run: echo hello; echo world
      - name: quiet
        run: "true"
      - name: bye
        run: echo bye; exit 3
"""


def test_logs_json_is_one_document_of_steps_and_their_text(
    cluster: Cluster, unique: str, tmp_path: Path
) -> None:
    cluster.start_agent(f"talker-{unique}")
    path = write_pipeline(tmp_path, "talk.yml", TWO_STEPS)
    ran = cluster.cli("run", str(path), "--json")
    assert ran.returncode == 1, ran.stderr.decode()
    build_id = json.loads(ran.stdout)["id"]

    doc = cluster.json("logs", str(build_id), "talk")
    steps = [
        (s["index"], s["name"], s["status"], s["exit_code"], s["log"], s["log_bytes"], s["exact"])
        for s in doc["steps"]
    ]
    assert (doc["build"], doc["job"], doc["attempt"]) == (build_id, "talk", 1)
    assert steps == [
        (0, "greet", "succeeded", 0, "hello\nworld\n", 12, True),
        (1, "quiet", "succeeded", 0, "", 0, True),
        (2, "bye", "failed", 3, "bye\n", 4, True),
    ]
    assert doc["steps"][0]["started_at"].endswith("Z")
    # The same bytes as the plain command prints.
    plain = cluster.cli("logs", str(build_id), "talk")
    assert plain.stdout.decode() == "".join(s["log"] for s in doc["steps"])

    one = cluster.json("logs", str(build_id), "talk", "--step", "bye", "--attempt", "1")
    assert [(s["name"], s["log"]) for s in one["steps"]] == [("bye", "bye\n")]

    refused = cluster.cli("logs", str(build_id), "talk", "--follow", "--json")
    assert refused.returncode == 2
    assert "use --follow without --json" in refused.stderr.decode()
    assert refused.stdout == b""
