"""The coordinator's TLS material: the operator's certificate and key, or (`--tls auto`) a
private CA and a server certificate it signed, made in the data dir once and kept.

Every listener takes its certificate from here (:class:`ServerTls` has both the PEM bytes and
the files, for gRPC's credentials and for an `ssl.SSLContext`), so they present the same one.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coordinator.config import (
    TLS_CA_VALIDITY_DAYS,
    TLS_DIR,
    TLS_RENEW_BEFORE_DAYS,
    TLS_SERVER_VALIDITY_DAYS,
    CoordinatorConfig,
)

LOGGER = logging.getLogger(__name__)

CA_FILE, CA_KEY_FILE = "ca.pem", "ca-key.pem"
SERVER_FILE, SERVER_KEY_FILE = "server.pem", "server-key.pem"
# Names a wildcard listen address stands for: none a client could dial.
_WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_PrivateKey = ec.EllipticCurvePrivateKey


class TlsError(ValueError):
    """The certificate or key cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class ServerTls:
    cert_path: Path
    key_path: Path
    cert_pem: bytes
    key_pem: bytes
    # The CA that signed the certificate when this server made it (`--tls auto`).
    ca_path: Path | None = None


def for_config(config: CoordinatorConfig) -> ServerTls | None:
    """The listeners' TLS as configured; None for plaintext (said loudly off loopback, where
    tokens and logs would cross the network readable)."""
    if config.tls_cert is not None and config.tls_key is not None:
        return load(config.tls_cert, config.tls_key)
    if config.tls_auto:
        return ensure_auto(config.data_dir, config.listen)
    if (config.data_dir / TLS_DIR / CA_FILE).exists():
        LOGGER.warning(
            "serving without TLS, though %s holds the CA of an earlier --tls auto: clients "
            "on this machine that find it will try TLS and fail (start with --tls auto)",
            config.data_dir / TLS_DIR,
        )
    if not _loopback(config.listen):
        LOGGER.warning(
            "serving %s without TLS: tokens and logs cross the network in the clear "
            "(start with --tls auto, or --tls-cert and --tls-key)",
            config.listen,
        )
    return None


def _loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load(cert_path: Path, key_path: Path) -> ServerTls:
    """The operator's certificate (chain) and key, checked to belong together."""
    cert_pem, key_pem = _read(cert_path, "--tls-cert"), _read(key_path, "--tls-key")
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        raise TlsError(f"--tls-cert {cert_path}: not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise TlsError(f"--tls-key {key_path}: not an unencrypted PEM private key") from None
    if key.public_key() != cert.public_key():
        raise TlsError(f"--tls-key {key_path} is not the key of --tls-cert {cert_path}")
    return ServerTls(cert_path, key_path, cert_pem, key_pem)


def ensure_auto(data_dir: Path, listen: str) -> ServerTls:
    """`--tls auto`: the data dir's CA (made on first use, then kept, so clients keep trusting
    it) and a server certificate it signed for `listen`'s host, `localhost` and 127.0.0.1
    (made again when it names fewer or nears its end)."""
    tls_dir = data_dir / TLS_DIR
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_key, ca_cert = _ensure_ca(tls_dir)
    names = server_names(listen)
    cert_path, key_path = tls_dir / SERVER_FILE, tls_dir / SERVER_KEY_FILE
    if not _covers(cert_path, key_path, ca_cert, names):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _server_cert(key, ca_key, ca_cert, names)
        _write(key_path, _key_pem(key), private=True)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        LOGGER.info("TLS: server certificate for %s in %s", ", ".join(names), cert_path)
    served = load(cert_path, key_path)
    return ServerTls(cert_path, key_path, served.cert_pem, served.key_pem, tls_dir / CA_FILE)


def server_names(listen: str) -> list[str]:
    """What clients may dial: the listen host (for a wildcard, this machine's names and
    addresses), then `localhost` and 127.0.0.1."""
    host = listen.rpartition(":")[0].strip("[]")
    if host in _WILDCARDS:
        hosts = [socket.gethostname(), socket.getfqdn(), *_addresses(socket.gethostname())]
    else:
        hosts = [host]
    return list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))


def _addresses(name: str) -> list[str]:
    try:
        found = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(entry[4][0]) for entry in found]


def _ensure_ca(tls_dir: Path) -> tuple[_PrivateKey, x509.Certificate]:
    cert_path, key_path = tls_dir / CA_FILE, tls_dir / CA_KEY_FILE
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, _PrivateKey):
            raise TlsError(f"{key_path}: not the elliptic-curve key this server makes")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert_path.exists():
        # A new CA would silently break every client that trusts the old one.
        raise TlsError(f"{cert_path} exists but its key {key_path} does not: restore it")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"Conveyor CA {socket.gethostname()}")]
    )
    now = _now()
    cert = (
        _builder(name, name, key.public_key(), now, TLS_CA_VALIDITY_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    LOGGER.info("TLS: made a private CA in %s (give it to agents and clients as --ca)", cert_path)
    return key, cert


def _server_cert(
    key: _PrivateKey, ca_key: _PrivateKey, ca_cert: x509.Certificate, names: list[str]
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (
        _builder(subject, ca_cert.subject, key.public_key(), _now(), TLS_SERVER_VALIDITY_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _covers(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: list[str]) -> bool:
    """Whether the kept server certificate is the CA's, names all of `names` and has time left."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    renew_at = cert.not_valid_after_utc - datetime.timedelta(days=TLS_RENEW_BEFORE_DAYS)
    return (
        cert.issuer == ca_cert.subject
        and _now() < renew_at
        and all(_general_name(name) in sans for name in names)
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        # An hour back: a client whose clock is a little behind still accepts it.
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise TlsError(f"{flag} {path}: cannot read it ({error.strerror})") from None


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Written beside, then renamed: a crash never leaves half a key or certificate."""
    partial = path.with_name(path.name + ".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
