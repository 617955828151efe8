"""`--tls auto`'s CA and server certificate, and the operator's own certificate and key."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from coordinator.tls import TlsError, ensure_auto, load, server_names


def _names(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return ips | set(sans.get_values_for_type(x509.DNSName))


def test_auto_makes_a_ca_once_and_a_server_certificate_it_signed(tmp_path: Path) -> None:
    first = ensure_auto(tmp_path, "10.1.2.3:7420")
    assert first.ca_path == tmp_path / "tls" / "ca.pem"
    ca = x509.load_pem_x509_certificate(first.ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(first.cert_pem)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # IP addresses as IP names (a client dialling 10.1.2.3 checks an IP name), names as DNS.
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert _names(first.cert_pem) == {"10.1.2.3", "localhost", "127.0.0.1"}
    for key in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE(os.stat(tmp_path / "tls" / key).st_mode) == 0o600

    again = ensure_auto(tmp_path, "10.1.2.3:7420")
    assert again.ca_path is not None
    assert again.ca_path.read_bytes() == first.ca_path.read_bytes()
    assert (again.cert_pem, again.key_pem) == (first.cert_pem, first.key_pem)


def test_a_new_listen_address_gets_a_new_certificate_from_the_same_ca(tmp_path: Path) -> None:
    first = ensure_auto(tmp_path, "127.0.0.1:0")
    assert first.ca_path is not None
    ca_pem = first.ca_path.read_bytes()
    moved = ensure_auto(tmp_path, "build-1.example:7420")
    assert moved.cert_pem != first.cert_pem
    assert "build-1.example" in _names(moved.cert_pem)
    assert first.ca_path.read_bytes() == ca_pem
    ca = x509.load_pem_x509_certificate(ca_pem)
    x509.load_pem_x509_certificate(moved.cert_pem).verify_directly_issued_by(ca)


def test_a_wildcard_listen_address_names_this_machine(tmp_path: Path) -> None:
    names = server_names("0.0.0.0:7420")
    assert "0.0.0.0" not in names
    assert {"localhost", "127.0.0.1"} <= set(names)
    assert len(names) > 2


def test_a_ca_without_its_key_is_not_replaced(tmp_path: Path) -> None:
    ensure_auto(tmp_path, "127.0.0.1:0")
    (tmp_path / "tls" / "ca-key.pem").unlink()
    with pytest.raises(TlsError, match=r"ca-key\.pem does not"):
        ensure_auto(tmp_path, "127.0.0.1:0")


def test_the_operators_certificate_and_key_must_belong_together(tmp_path: Path) -> None:
    one = ensure_auto(tmp_path / "one", "127.0.0.1:0")
    two = ensure_auto(tmp_path / "two", "127.0.0.1:0")
    assert load(one.cert_path, one.key_path).cert_pem == one.cert_pem
    with pytest.raises(TlsError, match="is not the key of --tls-cert"):
        load(one.cert_path, two.key_path)
    with pytest.raises(TlsError, match="not a PEM certificate"):
        load(one.key_path, one.key_path)
    with pytest.raises(TlsError, match="cannot read it"):
        load(tmp_path / "missing.pem", one.key_path)
