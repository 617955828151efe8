"""Invalid pipelines are refused at submission with the place named, exit code 2, nothing queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from conveyor import wire
from conveyor.cli.client import Client
from conveyor.cli.errors import CliError
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import CLIENT_TOKEN, Cluster, write_pipeline

# The paths through the store are the same on both backends: the SQLite pass covers them.
pytestmark = pytest.mark.any_store

HEAD = "name: p\nimage: conveyor/busybox\n"
MANY_JOBS = (
    HEAD + "jobs:\n" + "".join(f"  j{i}:\n    steps: [{{run: 'true'}}]\n" for i in range(300))
)

CASES = {
    "syntax": ("name: p\njobs:\n  a: [unclosed\n", "bad.yml:4:1:"),
    "unknown_key": (
        HEAD + "jobs:\n  a:\n    stepz: []\n    steps: [{run: 'true'}]\n",
        "bad.yml:5:5: jobs.a.stepz: unknown key 'stepz'",
    ),
    "wrong_type": (
        HEAD + "jobs:\n  a:\n    steps: {run: 'true'}\n",
        "jobs.a.steps: expected a list",
    ),
    "cycle": (
        HEAD + "jobs:\n  a:\n    needs: [b]\n    steps: [{run: 'true'}]\n"
        "  b:\n    needs: [a]\n    steps: [{run: 'true'}]\n",
        "dependency cycle: a -> b -> a",
    ),
    "unknown_need": (
        HEAD + "jobs:\n  build:\n    steps: [{run: 'true'}]\n"
        "  test:\n    needs: [buld]\n    steps: [{run: 'true'}]\n",
        "bad.yml:7:13: jobs.test.needs[0]: unknown job 'buld' (did you mean 'build'?)",
    ),
    "duplicate_job": (
        HEAD + "jobs:\n  a:\n    steps: [{run: 'true'}]\n  a:\n    steps: [{run: 'true'}]\n",
        "duplicate key 'a'",
    ),
    "duplicate_step": (
        HEAD + "jobs:\n  a:\n    steps:\n      - {name: s, run: 'true'}\n"
        "      - {name: s, run: 'true'}\n",
        "duplicate step name 's'",
    ),
    "empty_file": ("", "pipeline is empty"),
    "no_jobs": (HEAD + "jobs: {}\n", "jobs: pipeline has no jobs"),
    "too_many_jobs": (MANY_JOBS, "too many jobs (300 > 200)"),
    "gate_with_steps": (
        HEAD + "jobs:\n  gate:\n    approval: {prompt: 'Ship?'}\n    steps: [{run: 'true'}]\n",
        "bad.yml:6:5: jobs.gate.steps: a job with 'approval' is a gate and cannot have 'steps'",
    ),
    "unknown_role": (
        HEAD + "jobs:\n  gate:\n    approval: {prompt: 'Ship?', roles: [deployr]}\n",
        "jobs.gate.approval.roles[0]: unknown role 'deployr' (did you mean 'deployer'?",
    ),
    "unknown_event": (
        HEAD + "jobs:\n  a:\n    when: {event: [pusj]}\n    steps: [{run: 'true'}]\n",
        "bad.yml:5:20: jobs.a.when.event[0]: unknown event 'pusj' (did you mean 'push'?",
    ),
    "environment_url": (
        HEAD + "jobs:\n  a:\n    environment: {name: prod, url: 'ftp://x'}\n"
        "    steps: [{run: 'true'}]\n",
        "bad.yml:5:36: jobs.a.environment.url: invalid url 'ftp://x'",
    ),
    "concurrency_order": (
        HEAD + "jobs:\n  a:\n    concurrency: {group: db, order: oldest}\n"
        "    steps: [{run: 'true'}]\n",
        "jobs.a.concurrency.order: unknown value 'oldest' (allowed: oldest_first, newest_first;"
        " did you mean 'oldest_first'?)",
    ),
    "lone_surrogate": (
        HEAD + 'jobs:\n  a:\n    steps: [{run: "echo \\ud800"}]\n',
        "bad.yml:5:19: jobs.a.steps[0].run: invalid character U+D800",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_pipeline_is_refused(shared_cluster: Cluster, tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    before = shared_cluster.json("builds", "--limit", "1000")
    path = write_pipeline(tmp_path, "bad.yml", text)
    result = shared_cluster.cli("run", str(path))
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert expected in stderr
    assert result.stdout == b""
    assert shared_cluster.json("builds", "--limit", "1000") == before


def test_coordinator_validates_too(shared_cluster: Cluster) -> None:
    """A client that skips local validation still gets the coordinator's refusal."""
    before = shared_cluster.json("builds", "--limit", "1000")
    client = Client(shared_cluster.address, CLIENT_TOKEN)
    try:
        with pytest.raises(CliError) as raised:
            client.submit(CASES["unknown_need"][0], "direct.yml", {})
    finally:
        client.close()
    assert "direct.yml:7:13: jobs.test.needs[0]: unknown job 'buld'" in str(raised.value)
    assert raised.value.exit_code == 2
    assert shared_cluster.json("builds", "--limit", "1000") == before


def test_the_wire_refuses_bad_delivery_keys_as_invalid_argument(shared_cluster: Cluster) -> None:
    before = shared_cluster.json("builds", "--limit", "1000")
    text = HEAD + "jobs:\n  a:\n    environment: [prod]\n    steps: [{run: 'true'}]\n"
    channel = wire.insecure_channel(shared_cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        request = control_pb2.SubmitBuildRequest(pipeline_yaml=text, source_name="env.yml")
        with pytest.raises(grpc.RpcError) as refused:
            control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=30)
    finally:
        channel.close()
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert "env.yml:5:18: jobs.a.environment: expected an environment name" in error.details()
    assert shared_cluster.json("builds", "--limit", "1000") == before


def test_bad_cli_input(shared_cluster: Cluster, tmp_path: Path) -> None:
    missing = shared_cluster.cli("run", str(tmp_path / "nope.yml"))
    assert missing.returncode == 2
    assert b"cannot read" in missing.stderr
    path = write_pipeline(tmp_path, "ok.yml", HEAD + "jobs:\n  a:\n    steps: [{run: 'true'}]\n")
    bad_env = shared_cluster.cli("run", str(path), "--env", "not a pair")
    assert bad_env.returncode == 2
    assert b"--env" in bad_env.stderr
    usage = shared_cluster.cli("show", "not-a-number")
    assert usage.returncode == 2


def test_a_pipeline_with_a_hundred_problems_is_refused_with_them_readable(
    cluster: Cluster,
) -> None:
    """On the wire: 100 problems are 12 KB of text, more than a status header can carry; the
    caller used to get "received metadata size exceeds soft limit" instead of the problems."""
    text = HEAD + "jobs:\n" + "".join(f"  j{i}:\n    stepz: []\n" for i in range(150))
    channel = wire.insecure_channel(cluster.address)
    control = control_pb2_grpc.ControlServiceStub(channel)
    try:
        request = control_pb2.SubmitBuildRequest(pipeline_yaml=text, source_name="many.yml")
        with pytest.raises(grpc.RpcError) as refused:
            control.SubmitBuild(request, metadata=wire.bearer(CLIENT_TOKEN), timeout=30)
    finally:
        channel.close()
    error: Any = refused.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    lines = error.details().splitlines()
    assert lines[0] == "many.yml: too many problems; stopped after the first 100"
    assert lines[1].startswith("many.yml:4:3: jobs.j0")
    assert lines[-1].endswith("more lines not shown")
    assert cluster.json("builds") == []
