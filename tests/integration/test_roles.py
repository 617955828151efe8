"""Named tokens and their roles over the real server (DESIGN §8): each role is refused what it
may not do, with nothing changed and no audit event, and allowed what it may, recorded under the
token's name."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import MetaData, create_engine, select

from conveyor import wire
from conveyor.times import iso_utc
from conveyor.v1 import control_pb2, control_pb2_grpc
from tests.harness import Cluster, job, write_pipeline

# Jobs no agent carries the label for: they stay queued, so nothing here needs an agent to run.
PARKED = """
name: parked
image: conveyor/busybox
jobs:
  wait:
    labels: {pool: nobody}
    steps: [{run: "true"}]
"""
GATE = """
name: gated
jobs:
  ship-it:
    approval: {prompt: "Ship?", roles: [ROLE]}
"""
ROLES = ("viewer", "developer", "deployer", "admin")
WAIT_S = 60.0


class Farm:
    """A coordinator, one agent, and a token of each role (`dev`... as named in TOKENS)."""

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = root
        self.agent = f"worker-{uuid.uuid4().hex[:6]}"
        cluster.start_agent(self.agent)
        self.secrets = {role: self.create_token(f"the-{role}", role) for role in ROLES}
        self.value = str(root / "secret-value")
        Path(self.value).write_text("s3cr3t-value\n")

    def create_token(self, name: str, role: str) -> str:
        done = self.cluster.cli("token", "create", name, "--role", role, "--json")
        assert done.returncode == 0, done.stderr.decode()
        doc = json.loads(done.stdout)
        assert (doc["name"], doc["role"]) == (name, role)
        secret: str = doc["token"]
        return secret

    def submit(self, text: str) -> int:
        path = write_pipeline(self.root, f"p-{uuid.uuid4().hex[:6]}.yml", text)
        done = self.cluster.cli("run", str(path), "--no-follow", "--json")
        assert done.returncode == 0, done.stderr.decode()
        build_id: int = json.loads(done.stdout)["id"]
        return build_id

    def gate(self, role: str) -> int:
        build_id = self.submit(GATE.replace("ROLE", role))
        self.cluster.wait_build(
            build_id,
            lambda doc: job(doc, "ship-it")["status"] == "waiting_for_approval",
            WAIT_S,
            "the gate to wait",
        )
        return build_id

    def canceled(self) -> int:
        build_id = self.submit(PARKED)
        assert self.cluster.cli("cancel", str(build_id)).returncode == 0
        return build_id

    def audit(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.cluster.json("audit")["events"]
        return events


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("roles")
    cluster = Cluster(root, executor="fake")
    cluster.start_server()
    try:
        yield Farm(cluster, root)
    finally:
        cluster.close()


# What each action needs prepared (as the admin), and the CLI arguments that then attempt it.
Prepare = Callable[[Farm], list[str]]
ACTIONS: dict[str, Prepare] = {
    "read": lambda f: ["show", str(f.submit(PARKED))],
    "run": lambda f: ["run", str(write_pipeline(f.root, "run.yml", PARKED)), "--no-follow"],
    "cancel": lambda f: ["cancel", str(f.submit(PARKED))],
    "retry": lambda f: ["retry", str(f.canceled())],
    "approve": lambda f: ["approve", str(f.gate("deployer")), "ship-it"],
    "approve-admin-gate": lambda f: ["approve", str(f.gate("admin")), "ship-it"],
    "gc": lambda f: ["gc", "--older-than", "3650d"],
    "token-create": lambda f: ["token", "create", f"t-{uuid.uuid4().hex[:6]}", "--role", "viewer"],
    "pause": lambda f: ["pause", f.agent],
    # The role is checked before anything is looked up: no deployment needs to exist.
    "rollback": lambda f: ["rollback", "production"],
    "secret-set": lambda f: ["secret", "set", f"S_{uuid.uuid4().hex[:6]}", "--from-file", f.value],
}
# The audit event an allowed action leaves ("" for none: reads, runs and gc are not audited).
AUDITED = {
    "cancel": "cancel",
    "retry": "retry",
    "approve": "approve",
    "approve-admin-gate": "approve",
    "token-create": "token_create",
    "pause": "agent_pause",
    "secret-set": "secret_set",
}
# (role, action, allowed): the table of DESIGN §8's roles.
CASES = [
    ("viewer", "read", True),
    ("viewer", "run", False),
    ("viewer", "cancel", False),
    ("viewer", "retry", False),
    ("viewer", "approve", False),
    ("viewer", "gc", False),
    ("viewer", "token-create", False),
    ("viewer", "pause", False),
    ("developer", "run", True),
    ("developer", "cancel", True),
    ("developer", "retry", True),
    ("developer", "approve", False),
    ("developer", "gc", False),
    ("deployer", "approve", True),
    ("deployer", "approve-admin-gate", False),
    ("deployer", "token-create", False),
    ("deployer", "pause", False),
    ("admin", "approve-admin-gate", True),
    ("admin", "token-create", True),
    ("admin", "gc", True),
    ("admin", "pause", True),
    ("viewer", "rollback", False),
    ("developer", "rollback", False),
    ("deployer", "secret-set", False),
    ("admin", "secret-set", True),
]


# Who may do what is decided by `Access` before the store is reached: one backend is enough.
@pytest.mark.any_store
@pytest.mark.parametrize(
    ("role", "action", "allowed"), CASES, ids=[f"{r}-{a}" for r, a, _ in CASES]
)
def test_each_role_is_allowed_what_it_may_and_refused_the_rest(
    farm: Farm, role: str, action: str, allowed: bool
) -> None:
    args = ACTIONS[action](farm)
    builds_before = len(farm.cluster.json("builds", "--limit", "1000"))
    audit_before = farm.audit()
    done = farm.cluster.cli(*args, token=farm.secrets[role])
    stderr = done.stderr.decode()
    if not allowed:
        assert done.returncode == 2, (args, stderr)
        assert f"token 'the-{role}' (role {role}) may not" in stderr, stderr
        assert "allowed:" in stderr and "or above" in stderr, stderr
        assert farm.audit() == audit_before, "a refused change left an audit event"
        assert len(farm.cluster.json("builds", "--limit", "1000")) == builds_before
        return
    assert done.returncode == 0, (args, stderr)
    if action in AUDITED:
        newest = farm.audit()[0]
        assert (newest["by"], newest["action"]) == (f"the-{role}", AUDITED[action]), newest
        assert len(farm.audit()) == len(audit_before) + 1
    if action == "pause":
        assert farm.cluster.cli("resume", farm.agent).returncode == 0


def test_a_build_records_who_started_it_and_a_cancel_who_canceled(farm: Farm) -> None:
    path = write_pipeline(farm.root, "mine.yml", PARKED)
    done = farm.cluster.cli(
        "run", str(path), "--no-follow", "--json", token=farm.secrets["developer"]
    )
    build_id = json.loads(done.stdout)["id"]
    assert farm.cluster.show(build_id)["started_by"] == "the-developer"
    assert farm.cluster.cli("cancel", str(build_id)).returncode == 0  # the server's own token
    newest = farm.audit()[0]
    assert newest == {
        "at_ms": newest["at_ms"],
        "at": iso_utc(newest["at_ms"]),
        "by": "admin",
        "action": "cancel",
        "target": f"build {build_id}",
        "detail": "",
    }
    approved = farm.cluster.cli(
        "approve",
        str(farm.gate("deployer")),
        "ship-it",
        "--comment",
        "ok",
        "--json",
        token=farm.secrets["deployer"],
    )
    assert json.loads(approved.stdout)["by"] == "the-deployer"


def _call(secret: str, method: str, request: Any, address: str) -> grpc.StatusCode:
    with wire.insecure_channel(address) as channel:
        stub = control_pb2_grpc.ControlServiceStub(channel)
        try:
            getattr(stub, method)(request, metadata=wire.bearer(secret), timeout=30)
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            return error.code()
    return grpc.StatusCode.OK


def test_the_wire_says_permission_denied_for_a_role_and_unauthenticated_once_revoked(
    farm: Farm,
) -> None:
    secret = farm.create_token("short-lived", "viewer")
    address = farm.cluster.address
    listing = control_pb2.ListBuildsRequest()
    cancel = control_pb2.CancelBuildRequest(build_id=1)
    assert _call(secret, "ListBuilds", listing, address) is grpc.StatusCode.OK
    assert _call(secret, "CancelBuild", cancel, address) is grpc.StatusCode.PERMISSION_DENIED
    listed = farm.cluster.json("token", "list")["tokens"]
    assert {"name": "short-lived", "role": "viewer"}.items() <= next(
        t for t in listed if t["name"] == "short-lived"
    ).items()
    assert all("token" not in t for t in listed)
    assert farm.cluster.cli("token", "revoke", "short-lived").returncode == 0
    # At once: the very next call is refused, on the wire and by the CLI.
    assert _call(secret, "ListBuilds", listing, address) is grpc.StatusCode.UNAUTHENTICATED
    refused = farm.cluster.cli("builds", token=secret)
    assert refused.returncode == 2
    assert b"refused the client token" in refused.stderr
    assert farm.audit()[0]["action"] == "token_revoke"
    assert farm.cluster.cli("token", "revoke", "admin").returncode == 2


def test_only_hashes_of_tokens_are_stored(farm: Farm) -> None:
    secret = farm.create_token("hashed", "developer")
    assert farm.cluster.cli("builds", token=secret).returncode == 0
    url = farm.cluster.db_url or f"sqlite:///{farm.cluster.data_dir / 'conveyor.db'}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            stored = [
                repr(tuple(row))
                for table in metadata.sorted_tables
                for row in connection.execute(select(table))
            ]
    finally:
        engine.dispose()
    assert any("hashed" in row for row in stored)
    assert not any(secret in row for row in stored)
    if farm.cluster.db_url is None:  # the SQLite file and its write-ahead log, byte for byte
        for path in farm.cluster.data_dir.glob("conveyor.db*"):
            assert secret.encode() not in path.read_bytes(), path
