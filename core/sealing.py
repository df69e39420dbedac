"""Sealing (niêm phong / mã hóa dữ liệu lúc lưu trữ): personal data encrypted at rest.

A dossier holds personal data (dữ liệu cá nhân, NĐ 13/2023): names, ID numbers, addresses,
family relations, scanned papers. Citizens fear it leaks, and a copied database or backup is the
usual way it does. So every personal field and file is sealed with AES-256-GCM under a key kept
outside the database (the instance folder or the environment, see core.keys): the database alone
gives nothing away, and a changed ciphertext fails to open instead of yielding altered data.

Forms:

- text token for a database column: ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``
  (base64url without padding);
- file form for uploads on disk (`seal_file_bytes`): ``CKS1`` ‖ key id length (1 byte) ‖ key id
  (ASCII) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes).

Every seal takes a *context*, e.g. ``b"dossier:<commune id>:<dossier uuid>"``, authenticated as
associated data: a sealed value copied into another row, or another commune's row, does not open.
The associated data is ``b"commune-kiosk/seal/v1/<form>\\x00" + context``, so a token and a file
never stand in for each other either.

Nonces are 12 random bytes. With random nonces one key should seal fewer than 2^32 values (the
NIST bound); a commune seals thousands a year, and rotation resets the count anyway.

Rotation (xoay vòng khóa): the keyring has one current key that seals and any number of older ones
that still open. `needs_reseal` tells which values a background job should re-seal under the
current key before an old key can be retired.

Blind index (chỉ mục mù): to find dossiers by ID number or phone without storing either in clear,
store `blind_index(value, index_key)`, an HMAC, and look up by recomputing it. The index key must
be a separate, never-rotated key (rotating it means recomputing every index). Without the key the
index reveals nothing; with the key, a 12-digit ID number can be brute-forced, which is why the key
never sits in the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.signing import canonical_bytes

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16
TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
FILE_MAGIC = b"CKS1"
BLIND_INDEX_CHARS = 32  # 128 bits of HMAC-SHA256
MIN_INDEX_KEY_BYTES = 16

# Key ids appear in tokens (split on "."), file headers and file names: keep them plain.
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

_TEXT_AAD = b"commune-kiosk/seal/v1/text\x00"
_FILE_AAD = b"commune-kiosk/seal/v1/file\x00"
_INDEX_DOMAIN = b"commune-kiosk/blind-index/v1\x00"


class SealError(Exception):
    """A sealed value cannot be opened: malformed, unknown key, tampered with, or wrong context.

    The message says which, for the operator's log; it never contains plaintext or key material.
    """


@dataclass(frozen=True, slots=True)
class Keyring:
    """Sealing keys by id, and the id of the one that seals new values."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(f"A sealing key id is 1–64 letters, digits, - or _: {key_id!r}")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ValueError(f"Sealing key {key_id!r} must be {KEY_BYTES} bytes")
        if self.current not in self.keys:
            raise ValueError(f"The current sealing key {self.current!r} is not in the keyring")
        # A private copy: a caller mutating its dict later must not change the keyring.
        object.__setattr__(self, "keys", dict(self.keys))

    def __repr__(self) -> str:
        return f"Keyring(ids={sorted(self.keys)!r}, current={self.current!r})"


# --- text tokens --------------------------------------------------------------------------------


def seal(plaintext: bytes, keyring: Keyring, *, context: bytes) -> str:
    """Encrypt `plaintext` under the current key, bound to `context`; a text token."""
    nonce, sealed = _encrypt(plaintext, keyring, _TEXT_AAD + context)
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
    return f"{TOKEN_VERSION}.{keyring.current}.{body}"


def unseal(token: str, keyring: Keyring, *, context: bytes) -> bytes:
    """The plaintext of a token sealed with the same `context`; SealError on anything wrong."""
    key_id, blob = _parse_token(token)
    return _decrypt(key_id, blob, keyring, _TEXT_AAD + context)


def seal_json(value: Mapping[str, Any], keyring: Keyring, *, context: bytes) -> str:
    """Seal a JSON object, written as canonical_bytes (no floats, NFC strings)."""
    return seal(canonical_bytes(value), keyring, context=context)


def unseal_json(token: str, keyring: Keyring, *, context: bytes) -> dict[str, Any]:
    """The JSON object sealed by `seal_json`; SealError if it is not one."""
    plaintext = unseal(token, keyring, context=context)
    try:
        value = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SealError("The sealed value is not JSON") from exc
    if not isinstance(value, dict):
        raise SealError("The sealed value is not a JSON object")
    return value


def sealed_key_id(token: str) -> str:
    """The id of the key that sealed `token` (no key needed); SealError if malformed."""
    return _parse_token(token)[0]


def needs_reseal(token: str, keyring: Keyring) -> bool:
    """True when `token` was sealed with a key other than the current one."""
    return sealed_key_id(token) != keyring.current


def reseal(token: str, keyring: Keyring, *, context: bytes) -> str:
    """`token` sealed under the current key (unchanged if it already is)."""
    if not needs_reseal(token, keyring):
        return token
    return seal(unseal(token, keyring, context=context), keyring, context=context)


def _parse_token(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise SealError("A sealed value is text")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise SealError(f"Not a sealed value of version {TOKEN_VERSION}")
    key_id, body = parts[1], parts[2]
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise SealError("The sealed value names a malformed key id")
    blob = _b64url_decode(body)
    if blob is None:
        raise SealError("The sealed value is not canonical base64url")
    return key_id, blob


def _b64url_decode(body: str) -> bytes | None:
    if not body.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    # One spelling per value: refuse stray characters and non-zero unused bits.
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == body else None


# --- files --------------------------------------------------------------------------------------


def seal_file_bytes(data: bytes, keyring: Keyring, *, context: bytes) -> bytes:
    """Encrypt a file's content for writing to disk (binary form, header + ciphertext)."""
    nonce, sealed = _encrypt(data, keyring, _FILE_AAD + context)
    key_id = keyring.current.encode("ascii")
    return FILE_MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed


def unseal_file_bytes(blob: bytes, keyring: Keyring, *, context: bytes) -> bytes:
    """The content sealed by `seal_file_bytes` with the same `context`; SealError otherwise."""
    key_id, rest = _parse_file(blob)
    return _decrypt(key_id, rest, keyring, _FILE_AAD + context)


def file_needs_reseal(blob: bytes, keyring: Keyring) -> bool:
    """True when a sealed file was sealed with a key other than the current one."""
    return _parse_file(blob)[0] != keyring.current


def _parse_file(blob: bytes) -> tuple[str, bytes]:
    if not isinstance(blob, bytes) or not blob.startswith(FILE_MAGIC) or len(blob) < 5:
        raise SealError("Not a sealed file")
    length = blob[4]
    key_id_bytes = blob[5 : 5 + length]
    if len(key_id_bytes) != length:
        raise SealError("The sealed file is truncated")
    key_id = key_id_bytes.decode("ascii", "replace")
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise SealError("The sealed file names a malformed key id")
    return key_id, blob[5 + length :]


# --- the cipher ---------------------------------------------------------------------------------


def _encrypt(plaintext: bytes, keyring: Keyring, aad: bytes) -> tuple[bytes, bytes]:
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise TypeError("Only bytes are sealed; encode text first")
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(keyring.keys[keyring.current]).encrypt(nonce, bytes(plaintext), aad)


def _decrypt(key_id: str, blob: bytes, keyring: Keyring, aad: bytes) -> bytes:
    key = keyring.keys.get(key_id)
    if key is None:
        raise SealError(
            f"Sealed with key {key_id!r}, which this install does not have "
            "(a retired key, or key files from another install)"
        )
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SealError("The sealed value is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError(
            "The sealed value does not open: it was altered, or belongs to another record"
        ) from None


# --- blind index --------------------------------------------------------------------------------


def blind_index(value: str, key: bytes) -> str:
    """A keyed fingerprint of `value` for exact-match lookups: HMAC-SHA256, first 32 hex digits.

    The caller normalises first (a CCCD as its 12 digits, a phone in E.164) so equal values give
    equal indexes; the text is also NFC-normalised here.
    """
    if len(key) < MIN_INDEX_KEY_BYTES:
        raise ValueError(f"A blind-index key needs at least {MIN_INDEX_KEY_BYTES} bytes")
    message = _INDEX_DOMAIN + unicodedata.normalize("NFC", value).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:BLIND_INDEX_CHARS]
