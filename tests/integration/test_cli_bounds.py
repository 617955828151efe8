"""CLI bounds (DESIGN §8): out-of-range numbers and impossible values are usage errors (exit 2)
in one line naming the flag, never tracebacks; names from others print inert; `cancel` of a
finished build says so; `version` names both sides, with a coordinator or without. Through the
real CLI, against a real coordinator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from conveyor import PROTOCOL_VERSION, __version__, wire
from conveyor.v1 import agent_pb2, agent_pb2_grpc
from tests.harness import AGENT_TOKEN, CLI, Cluster, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

HUGE = "99999999999999999999999"
USAGE = {
    "show_huge_id": (["show", HUGE], "argument BUILD"),
    "logs_huge_id": (["logs", HUGE, "j"], "argument BUILD"),
    "cancel_huge_id": (["cancel", HUGE], "argument BUILD"),
    "artifacts_huge_id": (["artifacts", HUGE], "argument BUILD"),
    "show_zero_id": (["show", "0"], "argument BUILD"),
    "logs_huge_attempt": (["logs", "1", "j", "--attempt", "99999999999"], "argument --attempt"),
    "logs_negative_attempt": (["logs", "1", "j", "--attempt", "-1"], "argument --attempt"),
    # Attempts count from 1: 0 is no attempt (not "the latest", which is leaving it out).
    "logs_zero_attempt": (["logs", "1", "j", "--attempt", "0"], "argument --attempt"),
    "builds_huge_limit": (["builds", "--limit", "99999999999"], "argument --limit"),
    "builds_zero_limit": (["builds", "--limit", "0"], "argument --limit"),
    "builds_negative_limit": (["builds", "--limit", "-5"], "argument --limit"),
    "gc_huge_age": (["gc", "--older-than", "99999999999999d"], "argument --older-than"),
    "gc_bad_age": (["gc", "--older-than", "soon"], "argument --older-than"),
    "agent_huge_concurrency": (
        ["agent", "--concurrency", "100000000000"],
        "argument --concurrency",
    ),
    "agent_label_value_with_equals": (["agent", "--labels", "os=a=b"], "argument --labels"),
    "agent_label_bad_name": (["agent", "--labels", "o s=linux"], "argument --labels"),
    "agent_control_in_name": (["agent", "--name", "evil\x1b[2J"], "argument --name"),
    "agent_nan_grace": (["agent", "--stop-grace", "nan"], "argument --stop-grace"),
}


def _usage_error(result: subprocess.CompletedProcess[bytes], field: str) -> None:
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    assert result.returncode == 2, (result.returncode, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert field in lines[0], stderr


@pytest.mark.parametrize("case", sorted(USAGE))
def test_out_of_range_values_are_usage_errors(shared_cluster: Cluster, case: str) -> None:
    args, field = USAGE[case]
    before = shared_cluster.json("builds", "--limit", "1000")
    _usage_error(shared_cluster.cli(*args, timeout_s=30), field)
    assert shared_cluster.json("builds", "--limit", "1000") == before


def test_a_pipeline_label_no_agent_could_offer_is_refused(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    for value in ("a,b", "a=b"):
        text = (
            "name: p\nimage: conveyor/busybox\njobs:\n  a:\n"
            f"    labels: {{os: '{value}'}}\n    steps: [{{run: 'true'}}]\n"
        )
        result = shared_cluster.cli("run", str(write_pipeline(tmp_path, "l.yml", text)))
        _usage_error(result, "jobs.a.labels.os")


def test_download_into_an_existing_file_is_a_usage_error(
    shared_cluster: Cluster, tmp_path: Path
) -> None:
    text = "name: one\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{run: 'true'}]\n"
    done = shared_cluster.json("run", str(write_pipeline(tmp_path, "one.yml", text)))
    target = tmp_path / "a-file"
    target.write_text("keep me")
    result = shared_cluster.cli("artifacts", str(done["id"]), "--download", str(target))
    _usage_error(result, "--download")
    assert target.read_text() == "keep me"


def test_names_with_control_characters_print_escaped(
    shared_cluster: Cluster, tmp_path: Path, unique: str
) -> None:
    evil = '"evil\\e]0;pwned\\a\\e[2J\\u202e"'  # YAML escapes: ESC, BEL, bidi override
    text = f"name: {evil}\nimage: conveyor/busybox\njobs:\n  a:\n    steps: [{{run: 'true'}}]\n"
    build = shared_cluster.json("run", str(write_pipeline(tmp_path, "evil.yml", text)))
    # The coordinator refuses control characters in an agent's name and labels at registration,
    # so `agents` can only show escaped what the pipeline brought: build names.
    channel = wire.insecure_channel(shared_cluster.address)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            agent_pb2_grpc.AgentServiceStub(channel).Register(
                agent_pb2.RegisterRequest(
                    join_token=AGENT_TOKEN,
                    name=f"agent-{unique}",
                    labels={"os": "linux\x1b[31m\x9b"},
                    capacity=1,
                    protocol_version=PROTOCOL_VERSION,
                ),
                timeout=10,
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "labels.os" in (refused.value.details() or "")
    finally:
        channel.close()
    for args in (["builds"], ["show", str(build["id"])]):
        result = shared_cluster.cli(*args)
        assert result.returncode == 0, result.stderr.decode()
        out = result.stdout.decode()
        for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
            assert raw not in out, (args, out)
        assert "\\x1b" in out, (args, out)
    # JSON stays exact (escaped by JSON itself).
    shown = shared_cluster.show(build["id"])
    assert shown["name"] == "evil\x1b]0;pwned\x07\x1b[2J\u202e"


def test_version_names_this_cli_and_the_coordinator(shared_cluster: Cluster) -> None:
    doc = shared_cluster.json("version")
    assert doc["cli"] == {"version": __version__, "protocol": PROTOCOL_VERSION}
    assert doc["coordinator"] == {
        "address": shared_cluster.address,
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
    }
    shown = shared_cluster.cli("version")
    assert shown.returncode == 0, shown.stderr.decode()
    assert shown.stdout.decode().splitlines() == [
        f"cli: conveyor {__version__} (protocol {PROTOCOL_VERSION})",
        f"coordinator at {shared_cluster.address}: conveyor {__version__} "
        f"(protocol {PROTOCOL_VERSION})",
    ]


def test_version_without_a_coordinator_still_names_this_cli() -> None:
    closed = "127.0.0.1:1"  # nothing listens on port 1
    result = subprocess.run(
        [*CLI, "version", "--coordinator", closed, "--token", "t"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    cli_line, coordinator_line = result.stdout.decode().splitlines()
    assert cli_line == f"cli: conveyor {__version__} (protocol {PROTOCOL_VERSION})"
    unreachable = f"coordinator: unknown (cannot reach the coordinator at {closed}"
    assert coordinator_line.startswith(unreachable), coordinator_line
