"""The clients' side of TLS (the CLI and agents alike): which CA verifies the coordinator, and
what a failed handshake means, in words.

A CA given (`--ca`, `CONVEYOR_CA`) or found beside the local server (its `--tls auto` CA)
means TLS, verified against it; none means plaintext. There is no TLS without verification.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conveyor.local import CA_FILE, DEFAULT_ADDRESS, local_address, local_file

# Largest CA file read: a bundle of a few hundred certificates.
MAX_CA_FILE_BYTES = 1024 * 1024


class CaFileError(ValueError):
    """The CA file cannot be used; the message names it and why."""


@dataclass(frozen=True)
class TrustedCa:
    path: Path
    pem: bytes


def load_ca(path: Path, what: str) -> TrustedCa:
    """The PEM certificates in `path`; `what` names where the path came from."""
    try:
        with path.open("rb") as handle:
            pem = handle.read(MAX_CA_FILE_BYTES + 1)
    except OSError as error:
        raise CaFileError(f"{what} {path}: cannot read it ({error.strerror})") from None
    if len(pem) > MAX_CA_FILE_BYTES:
        raise CaFileError(f"{what} {path}: larger than a CA bundle ({MAX_CA_FILE_BYTES} bytes)")
    # Imported here: it takes a tenth of a second, which every CLI call without TLS would pay.
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CaFileError(f"{what} {path}: not a PEM certificate") from None
    return TrustedCa(path, pem)


@dataclass(frozen=True)
class Target:
    """The coordinator to dial, and the CA that verifies it (None: plaintext)."""

    address: str
    ca: TrustedCa | None

    @property
    def root_ca(self) -> bytes | None:
        return self.ca.pem if self.ca is not None else None


def resolve_target(address: str | None, ca: str | None, data_dir: Path | None = None) -> Target:
    """The address from `--coordinator`, `CONVEYOR_ADDR`, the local server's address file (of
    the server whose `--data-dir` is `data_dir`), or the default; the CA from `--ca`,
    `CONVEYOR_CA`, or, only for that local server, the CA it keeps (an address given
    explicitly is another server, which that CA says nothing about)."""
    given = address or os.environ.get("CONVEYOR_ADDR")
    local = local_address(data_dir)
    trusted = resolve_ca(ca, local=not given, data_dir=data_dir)
    return Target(given or local or DEFAULT_ADDRESS, trusted)


def resolve_ca(given: str | None, *, local: bool, data_dir: Path | None = None) -> TrustedCa | None:
    if given:
        return load_ca(Path(given).expanduser(), "--ca")
    if os.environ.get("CONVEYOR_CA"):
        return load_ca(Path(os.environ["CONVEYOR_CA"]).expanduser(), "CONVEYOR_CA")
    path = data_dir / CA_FILE if data_dir is not None else local_file(CA_FILE)
    return load_ca(path, "the local server's CA") if local and path.is_file() else None


def handshake_problem(detail: str, ca: TrustedCa | None, address: str) -> str | None:
    """The words for a TLS failure that gRPC reported as `detail`; None if it was not one."""
    if ca is None:
        if detail.endswith("Socket closed"):
            return (
                f"the coordinator at {address} closed the connection: if it serves TLS, "
                "pass --ca FILE (its CA, DATA_DIR/tls/ca.pem with --tls auto) or set CONVEYOR_CA"
            )
        return None
    if "certificate has expired" in detail:
        return f"the coordinator at {address} presented an expired certificate"
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return (
            f"the coordinator at {address}: the server's certificate is not signed by the CA "
            f"in {ca.path}"
        )
    if "Hostname Verification" in detail:
        host = address.rpartition(":")[0] or address
        return (
            f"the coordinator at {address}: the server's certificate does not name {host} "
            "(connect by a name or address it was made for)"
        )
    if "WRONG_VERSION_NUMBER" in detail:
        return (
            f"the coordinator at {address} does not speak TLS (it runs without --tls?), "
            f"but the CA in {ca.path} says to use it"
        )
    return None
