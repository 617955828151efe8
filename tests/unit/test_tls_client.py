"""Which CA a client verifies the coordinator with, and the words for a refused handshake."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import tls
from conveyor.tls import CaFileError, TrustedCa, handshake_problem, resolve_target
from coordinator.tls import ensure_auto


@pytest.fixture
def local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A default local server with a `--tls auto` CA, at 0.0.0.0:7500."""
    server_dir = tmp_path / "server"
    ensure_auto(server_dir, "127.0.0.1:0")
    (server_dir / "server.addr").write_text("0.0.0.0:7500\n")
    monkeypatch.setattr("conveyor.local.DEFAULT_SERVER_DIR", server_dir)
    monkeypatch.delenv("CONVEYOR_ADDR", raising=False)
    monkeypatch.delenv("CONVEYOR_CA", raising=False)
    return server_dir


def test_the_local_server_is_dialled_on_loopback_and_verified_with_its_ca(
    local_server: Path,
) -> None:
    target = resolve_target(None, None)
    assert target.address == "127.0.0.1:7500"
    assert target.ca is not None and target.ca.path == local_server / "tls" / "ca.pem"


def test_an_address_given_is_another_server_the_local_ca_says_nothing_about(
    local_server: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_target("build-1.example:7420", None).ca is None
    monkeypatch.setenv("CONVEYOR_ADDR", "build-2.example:7420")
    assert resolve_target(None, None) == tls.Target("build-2.example:7420", None)
    # ... unless a CA is given too.
    given = str(local_server / "tls" / "ca.pem")
    assert resolve_target("build-1.example:7420", given).ca is not None
    monkeypatch.setenv("CONVEYOR_CA", given)
    assert resolve_target(None, None).ca is not None


def test_a_ca_file_that_is_no_certificate_is_refused(local_server: Path) -> None:
    with pytest.raises(CaFileError, match=r"--ca .*: not a PEM certificate"):
        resolve_target(None, str(local_server / "tls" / "ca-key.pem"))
    with pytest.raises(CaFileError, match="cannot read it"):
        resolve_target(None, str(local_server / "missing.pem"))


def test_handshake_failures_in_words() -> None:
    ca = TrustedCa(Path("/etc/conveyor/ca.pem"), b"")
    address = "build-1.example:7420"
    verify = "Tls handshake failed (TSI_PROTOCOL_FAILURE): ... CERTIFICATE_VERIFY_FAILED: ..."
    assert handshake_problem(verify, ca, address) == (
        "the coordinator at build-1.example:7420: the server's certificate is not signed by "
        "the CA in /etc/conveyor/ca.pem"
    )
    name = "Custom verification check failed with error: Hostname Verification Check failed."
    assert "does not name build-1.example" in str(handshake_problem(name, ca, address))
    plain = "Tls handshake failed ... WRONG_VERSION_NUMBER ..."
    assert "does not speak TLS" in str(handshake_problem(plain, ca, address))
    assert "pass --ca FILE" in str(
        handshake_problem("ipv4:1.2.3.4:7: Socket closed", None, address)
    )
    assert handshake_problem("Connection refused", ca, address) is None
    assert handshake_problem("Connection refused", None, address) is None
