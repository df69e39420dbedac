"""Signatures (chữ ký số) on dossiers, supplements, decisions and receipts.

Whatever the commune issues or receives is signed with the commune's Ed25519 key the moment it is
stored: a dossier (hồ sơ), a supplement (hồ sơ bổ sung), an official's decision (quyết định) and the
receipt (giấy biên nhận) handed to the citizen. Whoever can write to the database (a DB admin, a
restored backup, an attacker) can change a row, but cannot produce a signature that verifies under
the commune's public key, so a changed row shows as changed.

What is signed is never a Python object but `canonical_bytes(payload)`: one exact byte string per
value, written down precisely enough that a third party (an inspector, a court, another system)
re-implements it from the docstring and verifies a receipt without this code.

Keys carry an id derived from the public key (`key_id_for`), so ids are never chosen and a
signature names the key that made it. Rotation is adding a key: old signatures keep verifying as
long as the old public key stays in the keyring (`verify` takes {key id: VerifyKey}).

The signed receipt (`make_receipt`) is a self-contained JSON file the citizen keeps. It embeds the
public key so anyone can check it offline; `verify_receipt` with the install's own keys also checks
that the embedded key is one of ours, since a forger can always embed a key of his own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from core.text import Message

# Integers beyond ±(2^53 − 1) lose precision in JavaScript and in many JSON libraries; refusing
# them keeps canonical_bytes re-implementable anywhere.
MAX_SAFE_INTEGER = 2**53 - 1

RECEIPT_FORMAT = "commune-kiosk-receipt/1"
RECEIPT_ALG = "Ed25519"
# A receipt is a few kilobytes; anything far larger is not one, and is not parsed.
MAX_RECEIPT_BYTES = 256 * 1024

_PUBLIC_KEY_BYTES = 32
_PRIVATE_KEY_BYTES = 32
_SIGNATURE_BYTES = 64


# --- canonical bytes --------------------------------------------------------------------------


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed or hashed for `payload`.

    The rules, enough to re-implement it:

    1. The value is a JSON object. Allowed values inside are: objects (string keys only), arrays,
       strings, integers in the range −(2^53 − 1) … 2^53 − 1, ``true``, ``false`` and ``null``.
       Floating-point numbers are refused (``TypeError``): amounts are whole đồng, and float
       formatting differs between languages. Bytes, datetimes and any other type are refused
       (``TypeError``): dates and times are written as ISO 8601 strings by the caller first.
    2. Every string, object keys included, is normalised to Unicode NFC first, so "Nguyễn" typed
       with combining marks and "Nguyễn" typed precomposed give the same bytes. Two keys of one
       object that become equal after NFC are refused (``ValueError``), as are strings that are not
       valid Unicode (lone surrogates, ``ValueError``).
    3. Object members are sorted by key, comparing the keys as sequences of UTF-16 code units (the
       order of RFC 8785 and of JavaScript's default sort; it equals code point order for every key
       without characters above U+FFFF).
    4. Output is JSON without any whitespace: ``{"a":1,"b":[true,null]}``. Strings are written as
       UTF-8 as they are, except that ``"`` and ``\\`` are escaped as ``\\"`` and ``\\\\``, the
       control characters U+0008, U+0009, U+000A, U+000C, U+000D as ``\\b \\t \\n \\f \\r`` and the
       other characters below U+0020 as ``\\u00xx`` (lower-case hex). Nothing else is escaped.
       Integers are written in decimal without sign for positives, without leading zeros.

    For every allowed value this is exactly the RFC 8785 (JSON Canonicalization Scheme) encoding of
    the NFC-normalised value, so any JCS library verifies our signatures after NFC normalisation.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(
            f"A signed payload is a mapping (JSON object), not {type(payload).__name__}"
        )
    try:
        value = _canonical_fast(payload)
    except (TypeError, ValueError):
        value = _canonical_value(payload, "$")  # the same refusal, saying where
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # A lone surrogate passes json.dumps but cannot be encoded: UnicodeEncodeError is a ValueError.
    return text.encode("utf-8")


def _canonical_fast(value: object) -> object:
    """`_canonical_value` for the plain types a payload is made of (dict, list, str, int, bool,
    None), without tracking where it is: a signed dossier has a few dozen values, and writing
    each one's path cost more than the rest. Anything else goes to `_canonical_value`; a refusal
    is raised again by `_canonical_value` over the whole payload, with its path."""
    kind = type(value)
    if kind is str:
        return unicodedata.normalize("NFC", value)  # type: ignore[arg-type]
    if value is None or kind is bool:
        return value
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            raise ValueError("integer out of range")
        return value
    if kind is dict:
        members: dict[str, object] = {}
        plain = True  # every key below U+10000: code point order is UTF-16 order
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise TypeError("object key")
            nfc_key = unicodedata.normalize("NFC", key)
            if nfc_key in members:
                raise ValueError("two keys equal after NFC")
            plain = plain and (nfc_key.isascii() or max(nfc_key) <= "\uffff")
            members[nfc_key] = _canonical_fast(item)
        order = sorted(members) if plain else sorted(members, key=_utf16_order)
        return {k: members[k] for k in order}
    if kind is list or kind is tuple:
        return [_canonical_fast(item) for item in value]  # type: ignore[attr-defined]
    return _canonical_value(value, "$")


def _canonical_value(value: object, where: str) -> object:
    # bool before int: bool is a subclass of int, and True must stay `true`, not `1`.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"{where}: integer {value} is outside ±(2^53 − 1)")
        return int(value)
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, Mapping):
        members: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: object keys are strings, not {type(key).__name__}")
            nfc_key = unicodedata.normalize("NFC", key)
            if nfc_key in members:
                raise ValueError(
                    f"{where}: two keys are equal after NFC normalisation: {nfc_key!r}"
                )
            members[nfc_key] = _canonical_value(item, f"{where}.{nfc_key}")
        return {k: members[k] for k in sorted(members, key=_utf16_order)}
    if isinstance(value, list | tuple):
        return [_canonical_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, float):
        raise TypeError(
            f"{where}: floats are not allowed in signed data (use an integer): {value!r}"
        )
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(
            f"{where}: bytes are not allowed in signed data (encode them as text first)"
        )
    raise TypeError(
        f"{where}: {type(value).__name__} is not allowed in signed data "
        "(dates and times must already be ISO 8601 strings)"
    )


def _utf16_order(key: str) -> bytes:
    # Big-endian UTF-16 bytes compare in the same order as the code units they encode.
    return key.encode("utf-16-be", "surrogatepass")


# --- keys -------------------------------------------------------------------------------------


def key_id_for(public_key_bytes: bytes) -> str:
    """The id of a public key: the first 16 hex digits of SHA-256 over its 32 raw bytes."""
    if len(public_key_bytes) != _PUBLIC_KEY_BYTES:
        raise ValueError(f"An Ed25519 public key is {_PUBLIC_KEY_BYTES} bytes")
    return hashlib.sha256(public_key_bytes).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A public key and its derived id: what anyone needs to check a signature."""

    key_id: str
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        if self.key_id != key_id_for(self.public_bytes()):
            raise ValueError(f"Key id {self.key_id!r} is not the id of this public key")

    @classmethod
    def from_public_bytes(cls, raw: bytes) -> VerifyKey:
        """The key from its 32 raw bytes; raises ValueError on anything else."""
        if len(raw) != _PUBLIC_KEY_BYTES:
            raise ValueError(f"An Ed25519 public key is {_PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
        return cls(key_id_for(raw), Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_public_b64(cls, text: str) -> VerifyKey:
        """The key from standard base64 (as stored in the database and embedded in receipts)."""
        raw = _strict_b64decode(text)
        if raw is None:
            raise ValueError("The public key is not canonical base64")
        return cls.from_public_bytes(raw)

    def public_bytes(self) -> bytes:
        return self.public_key.public_bytes_raw()

    def public_b64(self) -> str:
        return base64.b64encode(self.public_bytes()).decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A commune's private key and its derived id. Stored only sealed (see core.keys)."""

    key_id: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        if self.key_id != key_id_for(self.public_bytes()):
            raise ValueError(f"Key id {self.key_id!r} is not the id of this key")

    def __repr__(self) -> str:
        # Never print key material, not even in a traceback.
        return f"SigningKey(key_id={self.key_id!r})"

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> SigningKey:
        """The key from its 32 raw bytes (as returned by `private_bytes`, after unsealing)."""
        if len(raw) != _PRIVATE_KEY_BYTES:
            raise ValueError(f"An Ed25519 private key is {_PRIVATE_KEY_BYTES} bytes")
        private = Ed25519PrivateKey.from_private_bytes(raw)
        return cls(key_id_for(private.public_key().public_bytes_raw()), private)

    def private_bytes(self) -> bytes:
        """The 32 raw private bytes: seal them before they go anywhere."""
        return self.private_key.private_bytes_raw()

    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.key_id, self.private_key.public_key())


def generate_signing_key() -> SigningKey:
    """A new random Ed25519 key; its id is derived from its public key."""
    private = Ed25519PrivateKey.generate()
    return SigningKey(key_id_for(private.public_key().public_bytes_raw()), private)


# --- signatures -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature over canonical_bytes(payload): the key's id and the standard base64 of
    the 64 signature bytes."""

    key_id: str
    value: str


def sign(payload: Mapping[str, Any], key: SigningKey) -> Signature:
    """Sign `payload`; raises TypeError/ValueError when it is not canonicalisable."""
    return sign_canonical(canonical_bytes(payload), key)


def sign_canonical(canonical: bytes, key: SigningKey) -> Signature:
    """Sign bytes that `canonical_bytes` made (when the caller also hashes or seals them)."""
    raw = key.private_key.sign(canonical)
    return Signature(key.key_id, base64.b64encode(raw).decode("ascii"))


def verify(payload: object, signature: object, keyring: Mapping[str, VerifyKey]) -> bool:
    """True when `signature` is a valid signature of `payload` by a key of `keyring`.

    Never raises: an unknown key id, a malformed signature or a payload that cannot be canonical
    (a float, say) all give False.
    """
    if not isinstance(signature, Signature) or not isinstance(payload, Mapping):
        return False
    key = keyring.get(signature.key_id) if isinstance(signature.key_id, str) else None
    if not isinstance(key, VerifyKey) or key.key_id != signature.key_id:
        return False
    raw = _strict_b64decode(signature.value)
    if raw is None or len(raw) != _SIGNATURE_BYTES:
        return False
    try:
        key.public_key.verify(raw, canonical_bytes(payload))
    except (InvalidSignature, TypeError, ValueError, RecursionError):
        return False
    return True


def _strict_b64decode(text: object) -> bytes | None:
    """Standard base64 in its one canonical spelling, else None.

    Plain decoding accepts several spellings of the same bytes (unused trailing bits, missing
    padding); refusing them means a changed character in a receipt always means changed bytes.
    """
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


# --- signed receipts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    """The outcome of checking a receipt file, with the reason to show the person who asked."""

    valid: bool
    reason: Message
    payload: Mapping[str, Any] | None = None
    key_id: str | None = None


RECEIPT_VALID = Message(
    vi="Biên nhận hợp lệ: chữ ký đúng và do khóa của một xã trên hệ thống này tạo ra.",
    en="The receipt is genuine: the signature is valid and made by a commune key of this system.",
)
RECEIPT_SELF_CONSISTENT = Message(
    vi=(
        "Chữ ký khớp với khóa công khai đi kèm biên nhận, nhưng chưa đối chiếu khóa đó với khóa "
        "của xã. Hãy kiểm tra trên trang tra cứu của xã để chắc chắn biên nhận là thật."
    ),
    en=(
        "The signature matches the public key embedded in the receipt, but that key has not been "
        "compared with the commune's keys. Check it on the commune's verification page to be sure."
    ),
)
RECEIPT_UNREADABLE = Message(
    vi=(
        "Tệp này không phải biên nhận: không đọc được nội dung. "
        "Hãy chọn đúng tệp biên nhận (.json) đã tải về khi nộp hồ sơ."
    ),
    en=(
        "This file is not a receipt: its content cannot be read. "
        "Choose the receipt file (.json) you downloaded when you filed the dossier."
    ),
)
RECEIPT_TOO_LARGE = Message(
    vi="Tệp quá lớn để là một biên nhận. Hãy chọn đúng tệp biên nhận (.json) đã tải về.",
    en="The file is too large to be a receipt. Choose the receipt file (.json) you downloaded.",
)
RECEIPT_WRONG_FORMAT = Message(
    vi=(
        "Tệp không phải biên nhận của hệ thống một cửa này (thiếu hoặc sai thông tin định dạng). "
        "Hãy chọn đúng tệp biên nhận đã tải về khi nộp hồ sơ."
    ),
    en=(
        "The file is not a receipt of this one-stop system (its format information is missing or "
        "wrong). Choose the receipt file you downloaded when you filed the dossier."
    ),
)
RECEIPT_BAD_KEY = Message(
    vi="Khóa công khai hoặc mã khóa trong biên nhận bị hỏng, không khớp nhau: biên nhận đã bị sửa.",
    en="The receipt's public key or key id is damaged or inconsistent: the receipt was altered.",
)
RECEIPT_BAD_SIGNATURE = Message(
    vi=(
        "Chữ ký không khớp với nội dung: biên nhận đã bị sửa sau khi xã cấp. "
        "Không dùng biên nhận này; hãy liên hệ bộ phận một cửa của xã."
    ),
    en=(
        "The signature does not match the content: the receipt was changed after the commune "
        "issued it. Do not rely on it; contact the commune's one-stop desk."
    ),
)
RECEIPT_UNKNOWN_KEY = Message(
    vi=(
        "Biên nhận được ký bằng một khóa không thuộc xã nào trên hệ thống này: có thể là giả mạo. "
        "Hãy liên hệ bộ phận một cửa của xã."
    ),
    en=(
        "The receipt was signed with a key that belongs to no commune of this system: it may be "
        "forged. Contact the commune's one-stop desk."
    ),
)
RECEIPT_LAYOUT_CHANGED = Message(
    vi=(
        "Nội dung có chữ ký vẫn khớp, nhưng tệp đã bị thay đổi cách trình bày (ví dụ mở rồi "
        "lưu lại bằng trình soạn thảo). Hãy dùng đúng tệp đã tải về, không chỉnh sửa."
    ),
    en=(
        "The signed content still matches, but the file's layout was changed (for example opened "
        "and saved again in an editor). Use the file exactly as downloaded, unedited."
    ),
)


def make_receipt(payload: Mapping[str, Any], key: SigningKey) -> bytes:
    """A signed receipt: a self-contained, human-readable JSON document (UTF-8).

    ``{"format": "commune-kiosk-receipt/1", "payload": {...}, "signature": {"alg": "Ed25519",
    "key_id": ..., "public_key": <base64>, "value": <base64>}}``, indented by two spaces with sorted
    keys and a final newline. The signature is over canonical_bytes(payload); the payload shown is
    the NFC-normalised one, exactly what was signed.
    """
    signature = sign(payload, key)
    document = {
        "format": RECEIPT_FORMAT,
        "payload": json.loads(canonical_bytes(payload)),
        "signature": {
            "alg": RECEIPT_ALG,
            "key_id": key.key_id,
            "public_key": key.verify_key.public_b64(),
            "value": signature.value,
        },
    }
    return _render_receipt(document)


def _render_receipt(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def verify_receipt(data: bytes, trusted_keys: Mapping[str, VerifyKey] | None) -> ReceiptCheck:
    """Check a receipt file; never raises.

    Valid only when the file is exactly a document `make_receipt` writes, the signature verifies
    over canonical_bytes(payload) with the embedded public key, the embedded key id is that key's
    id, and, when `trusted_keys` is given, the key id is one of them with the same public key.
    Without `trusted_keys` a valid result only says the file is self-consistent.
    """
    if len(data) > MAX_RECEIPT_BYTES:
        return ReceiptCheck(False, RECEIPT_TOO_LARGE)
    document = _parse_receipt(data)
    if document is None:
        return ReceiptCheck(False, RECEIPT_UNREADABLE)
    payload, sig = document.get("payload"), document.get("signature")
    if (
        set(document) != {"format", "payload", "signature"}
        or document["format"] != RECEIPT_FORMAT
        or not isinstance(payload, dict)
        or not isinstance(sig, dict)
        or set(sig) != {"alg", "key_id", "public_key", "value"}
        or sig["alg"] != RECEIPT_ALG
        or not all(isinstance(sig[name], str) for name in ("key_id", "public_key", "value"))
    ):
        return ReceiptCheck(False, RECEIPT_WRONG_FORMAT)
    key_id: str = sig["key_id"]
    try:
        embedded = VerifyKey.from_public_b64(sig["public_key"])
    except ValueError:
        return ReceiptCheck(False, RECEIPT_BAD_KEY)
    if embedded.key_id != key_id:
        return ReceiptCheck(False, RECEIPT_BAD_KEY)
    if trusted_keys is not None:
        ours = trusted_keys.get(key_id)
        if ours is None or ours.public_bytes() != embedded.public_bytes():
            return ReceiptCheck(False, RECEIPT_UNKNOWN_KEY, key_id=key_id)
    if not verify(payload, Signature(key_id, sig["value"]), {key_id: embedded}):
        return ReceiptCheck(False, RECEIPT_BAD_SIGNATURE, key_id=key_id)
    # The signature covers the payload only; requiring the exact bytes make_receipt writes means
    # any changed byte of the file, even in spacing or escaping, is noticed and reported.
    if _render_receipt(document) != data:
        return ReceiptCheck(False, RECEIPT_LAYOUT_CHANGED, key_id=key_id)
    reason = RECEIPT_VALID if trusted_keys is not None else RECEIPT_SELF_CONSISTENT
    return ReceiptCheck(True, reason, payload=payload, key_id=key_id)


class _NotAReceipt(ValueError):
    pass


def _parse_receipt(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_unique_members,
            parse_float=_refuse,
            parse_constant=_refuse,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError, _NotAReceipt and over-long integer literals.
        return None
    return document if isinstance(document, dict) else None


def _unique_members(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys are read differently by different JSON libraries (first wins, last wins):
    # a receipt must mean one thing to every verifier.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _NotAReceipt("duplicate key")
    return members


def _refuse(text: str) -> object:
    raise _NotAReceipt(f"not allowed in a receipt: {text}")
