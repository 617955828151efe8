"""Secrets at rest: AES-256-GCM under one key, from CONVEYOR_SECRET_KEY or the data dir's key file.

The key file is made on first use with mode 0600 (a server that never stores a secret never has
one). Each value is sealed with a fresh 96-bit nonce and bound to its name and scope (the
associated data), so a sealed value copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coordinator.domain.errors import SealError

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = b"v1"  # first bytes of every sealed value: a later format can tell them apart


class SecretKeyError(ValueError):
    """CONVEYOR_SECRET_KEY or the key file does not hold a usable key (the message says why)."""


def parse_key(text: str, where: str) -> bytes:
    """32 bytes from their URL-safe base64 form (as `generate_key` writes them)."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"{where}: not a secret key (expected {KEY_BYTES} bytes in URL-safe base64, e.g. "
            'from `python3 -c "import base64,os; print(base64.urlsafe_b64encode(os.urandom(32))'
            '.decode())"`)'
        )
    return key


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


class SecretBox:
    """`SecretSealer` over AES-GCM; safe to use from several threads."""

    def __init__(self, key_path: Path, given_key: str | None = None) -> None:
        """`given_key` (CONVEYOR_SECRET_KEY) is checked now; the file only when first needed."""
        self._key_path = key_path
        self._lock = threading.Lock()
        self._cipher: AESGCM | None = None
        if given_key is not None:
            self._cipher = AESGCM(parse_key(given_key, "CONVEYOR_SECRET_KEY"))

    def seal(self, name: str, scope: str, value: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead().encrypt(nonce, value.encode(), _bound(name, scope))
        return _FORMAT + nonce + sealed

    def open(self, name: str, scope: str, sealed: bytes) -> str:
        if not sealed.startswith(_FORMAT) or len(sealed) < len(_FORMAT) + NONCE_BYTES:
            raise SealError("not a value this coordinator sealed")
        nonce = sealed[len(_FORMAT) : len(_FORMAT) + NONCE_BYTES]
        try:
            plain = self._aead().decrypt(
                nonce, sealed[len(_FORMAT) + NONCE_BYTES :], _bound(name, scope)
            )
        except InvalidTag:
            raise SealError(
                "it was sealed with another key (was CONVEYOR_SECRET_KEY or the data dir's "
                "secret.key changed?) or is damaged; set it again"
            ) from None
        return plain.decode()

    def _aead(self) -> AESGCM:
        with self._lock:
            if self._cipher is None:
                self._cipher = AESGCM(self._load_or_create())
            return self._cipher

    def _load_or_create(self) -> bytes:
        path = self._key_path
        try:
            return parse_key(path.read_text(), str(path))
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = generate_key()
        # O_EXCL: a key file that appeared meanwhile is read, never replaced.
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return parse_key(path.read_text(), str(path))
        with os.fdopen(handle, "w") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        return parse_key(text, str(path))


def _bound(name: str, scope: str) -> bytes:
    return f"conveyor-secret\0{name}\0{scope}".encode()
