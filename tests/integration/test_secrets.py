"""Secrets through the whole system (DESIGN §4.1 `secrets:`, §7.7): set with the CLI, given to
the steps of the jobs that name them, masked in every log, stored nowhere in clear.

Real coordinator and agent processes, with a shell agent and a Docker agent."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from coordinator.storage.secretbox import generate_key
from tests.databases import DATABASES
from tests.harness import CLI, CLIENT_TOKEN, Cluster, job, write_pipeline


def set_secret(
    cluster: Cluster, name: str, value: str, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    """`conveyor secret set NAME` with the value on standard input, as a person would pipe it."""
    command = [*CLI, "secret", "set", name, *extra, "--coordinator", cluster.address]
    return subprocess.run(
        [*command, "--token", CLIENT_TOKEN],
        input=value.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under `root` whose raw bytes contain one of `needles`, with the needle."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            try:
                data = path.read_bytes()
            except OSError:  # a socket, or a file gone meanwhile
                continue
            found += [f"{path}: {needle!r}" for needle in needles if needle in data]
    return found


def database_files_holding(needles: list[bytes]) -> list[str]:
    """The same over the PostgreSQL cluster's files, once its buffers are on disk; [] on SQLite
    (its file is in the data dir, which the caller searches)."""
    server = DATABASES.server
    if server is None or server.private is None:
        return []
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")
    return files_holding(server.private.directory, needles)


# The Docker agent's builds take the shell agent's paths through the store: the PostgreSQL pass
# runs the shell farm (and searches the database's files), the SQLite pass both farms.
DOCKER = pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.any_store])


@pytest.fixture(scope="module", params=["shell", DOCKER])
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A coordinator and one agent of each kind in turn (jobs of the shell agent ask for it)."""
    if request.param == "docker":
        request.getfixturevalue("docker_ready")
    created = Cluster(tmp_path_factory.mktemp(f"secrets-{request.param}"), executor=request.param)
    created.start_server()
    created.start_agent(f"{request.param}-agent", concurrency=2)
    try:
        yield created
    finally:
        created.close()


def labels(cluster: Cluster) -> str:
    return "{executor: shell}" if cluster.executor == "shell" else "{}"


def test_secrets_are_masked_whole_in_pieces_and_line_by_line_and_stored_nowhere(
    farm: Cluster, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:12]
    whole = f"whole-{tag}-value"
    first, second = f"pc{tag[:6]}", f"{tag[6:]}ep"
    multi = f"line-one-{tag}\nline-two-{tag}\n-----END {tag}-----"
    for name, value in (("WHOLE", whole), ("PIECES", first + second)):
        result = set_secret(farm, name, value + "\n")
        assert result.returncode == 0, result.stderr.decode()
        assert value.encode() not in result.stdout + result.stderr
    key_file = tmp_path / "key.pem"
    key_file.write_text(multi + "\n")
    result = set_secret(farm, "MULTI", "", "--from-file", str(key_file))
    assert result.returncode == 0, result.stderr.decode()
    key_file.unlink()
    pipeline = f"""
name: masked
image: conveyor/busybox
jobs:
  leak:
    labels: {labels(farm)}
    secrets: [WHOLE, PIECES, MULTI]
    steps:
      - name: print
        run: |
          echo "whole: $WHOLE"
          printf 'p: {first}'; sleep 1; printf '{second}\\n'
          printf '%s\\n' "$MULTI"
          test "$PIECES" = "$(printf '%s%s' '{first}' '{second}')" && echo "pieces arrived whole"
"""
    path = write_pipeline(tmp_path, "masked.yml", pipeline)
    # Followed as a person would: the log lines stream to the terminal as they come.
    result = farm.cli("run", str(path))
    assert result.returncode == 0, result.stderr.decode()
    assert b"leak/print | p: [masked]" in result.stdout, result.stdout.decode()
    doc = farm.json("builds", "--limit", "1")[0]
    doc = farm.show(doc["id"])
    assert job(doc, "leak")["status"] == "succeeded"
    log = farm.cli("logs", str(doc["id"]), "leak")
    assert log.returncode == 0, log.stderr.decode()
    assert log.stdout == (
        b"whole: [masked]\np: [masked]\n[masked]\n[masked]\n[masked]\npieces arrived whole\n"
    )
    values = [whole, first + second, *multi.split("\n")]
    needles = [value.encode() for value in values]
    shown = farm.cli("show", str(doc["id"]), "--json").stdout
    listed = farm.cli("secret", "list", "--json").stdout + farm.cli("secret", "list").stdout
    assert not [n for n in needles if n in shown + listed + result.stdout]
    # The cluster's root holds the coordinator's data dir (the SQLite file, the log files, the
    # key), the agent's work dir (spool, workspaces) and both processes' own logs.
    assert files_holding(farm.root, needles) == []
    assert database_files_holding(needles) == []
    # The search does reach the stored rows: the pipeline's text, with the halves apart, is there.
    assert files_holding(farm.root, [first.encode()]) + database_files_holding([first.encode()])


def test_secret_list_shows_names_and_scopes_never_values(farm: Cluster) -> None:
    value = f"listed-{uuid.uuid4().hex}"
    assert set_secret(farm, "LISTED", value, "--env", "production").returncode == 0
    human = farm.cli("secret", "list")
    assert human.returncode == 0, human.stderr.decode()
    assert b"LISTED" in human.stdout and b"production" in human.stdout
    listed = farm.json("secret", "list")
    entry = next(s for s in listed["secrets"] if s["name"] == "LISTED")
    assert (entry["environment"], entry["updated_by"]) == ("production", "admin")
    assert value.encode() not in human.stdout + json.dumps(listed).encode()
    removed = farm.cli("secret", "rm", "LISTED", "--env", "production")
    assert removed.returncode == 0, removed.stderr.decode()
    assert "LISTED" not in [s["name"] for s in farm.json("secret", "list")["secrets"]]
    again = farm.cli("secret", "rm", "LISTED", "--env", "production")
    assert again.returncode == 2
    assert b"no secret 'LISTED' for environment production" in again.stderr


@pytest.mark.any_store  # refused before the store is written
def test_a_value_is_never_taken_from_an_argument_nor_empty_nor_too_short(farm: Cluster) -> None:
    value = f"argv-{uuid.uuid4().hex}"
    result = farm.cli("secret", "set", "ARGV", value)
    assert result.returncode == 2
    assert b"never taken from an argument" in result.stderr
    empty = set_secret(farm, "ARGV", "\n")
    assert (empty.returncode, empty.stderr) == (
        2,
        b"conveyor: the value is empty (pipe it in, or use --from-file)\n",
    )
    short = set_secret(farm, "ARGV", "abc")
    assert short.returncode == 2
    assert b"too short to be masked in logs (3 < 4 bytes)" in short.stderr
    assert b"abc" not in short.stderr.replace(b"ARGV", b"")
    assert "ARGV" not in [s["name"] for s in farm.json("secret", "list")["secrets"]]


SCOPED = """
name: scoped
image: conveyor/busybox
jobs:
  build:
    labels: LABELS
    secrets: [TOKEN]
    steps: [{run: 'echo "build got ${TOKEN%%-*}"'}]
  staging:
    labels: LABELS
    needs: [build]
    environment: staging
    secrets: [TOKEN]
    steps: [{run: 'echo "staging got ${TOKEN%%-*}"'}]
  production:
    labels: LABELS
    needs: [staging]
    environment: production
    secrets: [TOKEN]
    steps: [{run: 'echo "production got ${TOKEN%%-*}"'}]
"""


def test_a_scoped_secret_reaches_only_the_deployment_job_of_its_environment(
    farm: Cluster, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    assert set_secret(farm, "TOKEN", f"everyone-{tag}").returncode == 0
    assert set_secret(farm, "TOKEN", f"prodonly-{tag}", "--env", "production").returncode == 0
    path = write_pipeline(tmp_path, "scoped.yml", SCOPED.replace("LABELS", labels(farm)))
    result = farm.cli("run", str(path), "--json")
    assert result.returncode == 0, result.stderr.decode()
    build = str(json.loads(result.stdout)["id"])
    for name, prefix in (
        ("build", "everyone"),
        ("staging", "everyone"),
        ("production", "prodonly"),
    ):
        log = farm.cli("logs", build, name).stdout
        assert log == f"{name} got {prefix}\n".encode(), (name, log)


def test_an_unknown_secret_fails_the_submission_and_queues_nothing(
    farm: Cluster, tmp_path: Path
) -> None:
    before = len(farm.json("builds", "--limit", "1000"))
    pipeline = f"""
name: unknown
image: conveyor/busybox
jobs:
  deploy:
    labels: {labels(farm)}
    environment: staging
    secrets: [NO_SUCH_SECRET_{uuid.uuid4().hex[:6]}]
    steps: [{{run: "true"}}]
"""
    result = farm.cli("run", str(write_pipeline(tmp_path, "unknown.yml", pipeline)))
    assert result.returncode == 2
    assert b"jobs.deploy.secrets[0]: unknown secret 'NO_SUCH_SECRET_" in result.stderr
    assert len(farm.json("builds", "--limit", "1000")) == before


KEYED = """
name: keyed
image: conveyor/busybox
jobs:
  use:
    labels: {executor: shell}
    secrets: [KEYED]
    steps: [{run: 'test -n "$KEYED"'}]
"""


@pytest.mark.any_store  # the key and the sealing, not the rows
def test_the_key_can_come_from_the_environment_and_another_key_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONVEYOR_SECRET_KEY replaces the key file; a coordinator restarted with another key
    fails a job naming a secret sealed under the first (it never runs it without); a malformed
    key stops the server at start (exit 2)."""
    cluster = Cluster(tmp_path, executor="shell")
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", generate_key())
    try:
        server = cluster.start_server()
        assert set_secret(cluster, "KEYED", f"keyed-{uuid.uuid4().hex}").returncode == 0
        assert not (cluster.data_dir / "secret.key").exists()
        server.stop()
        monkeypatch.setenv("CONVEYOR_SECRET_KEY", generate_key())
        cluster.start_server()
        cluster.start_agent("host")
        result = cluster.cli("run", str(write_pipeline(tmp_path, "keyed.yml", KEYED)), "--json")
        assert result.returncode == 1, result.stderr.decode()
        used = job(json.loads(result.stdout), "use")
        assert (used["status"], used["reason"]) == ("failed", "error")
        assert (
            "secret 'KEYED' cannot be decrypted: it was sealed with another key" in used["message"]
        )
    finally:
        cluster.close()
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", "not-a-key")
    refused = subprocess.run(
        [*CLI, *cluster.server_argv()], capture_output=True, timeout=60, check=False
    )
    assert refused.returncode == 2
    assert b"CONVEYOR_SECRET_KEY: not a secret key" in refused.stdout + refused.stderr
