"""Canonical bytes, Ed25519 signatures with key ids, and signed receipts (core.signing)."""

from __future__ import annotations

import base64
import hashlib
import json
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import signing
from core.signing import (
    MAX_SAFE_INTEGER,
    RECEIPT_FORMAT,
    Signature,
    SigningKey,
    VerifyKey,
    canonical_bytes,
    generate_signing_key,
    key_id_for,
    make_receipt,
    sign,
    verify,
    verify_receipt,
)
from core.text import Message

KEY = SigningKey.from_private_bytes(bytes(range(32)))
OTHER = SigningKey.from_private_bytes(bytes(range(1, 33)))
KEYRING = {KEY.key_id: KEY.verify_key}

PAYLOAD: dict[str, Any] = {
    "kind": "dossier",
    "code": "27517-250701-0001",
    "procedure": "khai-sinh",
    "applicant": {"name": "Nguyễn Thị Ánh", "cccd": "079301000123"},
    "copies": 2,
    "on_time": True,
    "note": None,
    "files": ["giay-chung-sinh.pdf"],
    "submitted_at": "2025-07-01T08:30:00+07:00",
}

# --- canonical bytes --------------------------------------------------------------------------


def test_canonical_bytes_of_a_known_value() -> None:
    value = {"b": 1, "a": [True, None, "x"], "c": {"é": "dòng\nmới", "-": -5}}
    expected = '{"a":[true,null,"x"],"b":1,"c":{"-":-5,"é":"dòng\\nmới"}}'.encode()
    assert canonical_bytes(value) == expected


def test_key_order_does_not_depend_on_insertion_order() -> None:
    expected = b'{"a":2,"b":1}'
    assert canonical_bytes({"b": 1, "a": 2}) == canonical_bytes({"a": 2, "b": 1}) == expected


def test_keys_sort_by_utf16_code_units_like_rfc8785() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16, which sorts before U+E000.
    value = {"\ue000": 1, "\U0001f600": 2, "z": 3}
    assert canonical_bytes(value) == '{"z":3,"\U0001f600":2,"\ue000":1}'.encode()


def test_strings_and_keys_are_nfc_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn")
    assert decomposed != "Nguyễn"
    assert canonical_bytes({decomposed: decomposed}) == canonical_bytes({"Nguyễn": "Nguyễn"})
    assert canonical_bytes({"n": decomposed}) == '{"n":"Nguyễn"}'.encode()


def test_escapes_exactly_what_rfc8785_escapes() -> None:
    text = '"\\\x08\t\n\x0c\r\x01\x1f\x7f\u2028é'
    expected = '{"s":"\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\x7f\u2028é"}'.encode()
    assert canonical_bytes({"s": text}) == expected


def test_booleans_stay_booleans_and_integers_are_plain() -> None:
    assert canonical_bytes({"t": True, "f": False, "n": -0, "big": MAX_SAFE_INTEGER}) == (
        b'{"big":9007199254740991,"f":false,"n":0,"t":true}'
    )


@pytest.mark.parametrize(
    "value",
    [1.5, 1.0, float("nan"), b"raw", bytearray(b"x"), datetime(2025, 7, 1, tzinfo=UTC), {1, 2}],
    ids=["float", "integral float", "nan", "bytes", "bytearray", "datetime", "set"],
)
def test_refuses_values_that_have_no_single_spelling(value: object) -> None:
    with pytest.raises(TypeError):
        canonical_bytes({"v": value})
    with pytest.raises(TypeError):
        canonical_bytes({"nested": [{"v": value}]})


def test_refuses_non_string_keys_and_non_mapping_payloads() -> None:
    with pytest.raises(TypeError):
        canonical_bytes({1: "x"})  # type: ignore[dict-item]  # the point of the test
    with pytest.raises(TypeError):
        canonical_bytes(["not", "an", "object"])  # type: ignore[arg-type]  # same


@pytest.mark.parametrize(
    "value",
    [
        {"n": MAX_SAFE_INTEGER + 1},
        {"n": -MAX_SAFE_INTEGER - 1},
        {"Nguyễn": 1, unicodedata.normalize("NFD", "Nguyễn"): 2},
        {"s": "\ud800"},
    ],
    ids=["int too large", "int too small", "keys equal after NFC", "lone surrogate"],
)
def test_refuses_values_a_verifier_could_not_reproduce(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        canonical_bytes(value)


_safe_integers = st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
_scalars = st.none() | st.booleans() | _safe_integers | st.text()
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_objects = st.dictionaries(st.text(max_size=8), _json, max_size=5)


def _normalise(value: Any, form: str) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize(form, value)
    if isinstance(value, dict):
        return {unicodedata.normalize(form, k): _normalise(v, form) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, form) for v in value]
    return value


def _nfc_keys_distinct(value: Any) -> bool:
    if isinstance(value, dict):
        keys = [unicodedata.normalize("NFC", k) for k in value]
        return len(set(keys)) == len(keys) and all(_nfc_keys_distinct(v) for v in value.values())
    if isinstance(value, list):
        return all(_nfc_keys_distinct(v) for v in value)
    return True


@given(_objects.filter(_nfc_keys_distinct))
def test_nfc_equivalent_values_give_the_same_bytes(value: dict[str, Any]) -> None:
    reference = canonical_bytes(value)
    assert canonical_bytes(_normalise(value, "NFD")) == reference
    assert canonical_bytes(_normalise(value, "NFC")) == reference


@given(_objects.filter(_nfc_keys_distinct))
def test_canonical_bytes_parse_back_to_the_nfc_value_and_are_a_fixed_point(
    value: dict[str, Any],
) -> None:
    data = canonical_bytes(value)
    parsed = json.loads(data)
    assert parsed == _normalise(value, "NFC")
    assert canonical_bytes(parsed) == data
    compact = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    if all(ord(ch) < 0xE000 for ch in data.decode()):  # no key where UTF-16 order differs
        assert data == compact.encode()


_anything = st.recursive(
    _scalars | st.floats() | st.binary(max_size=4) | st.integers(),
    lambda inner: st.lists(inner, max_size=4)
    | st.tuples(inner)
    | st.dictionaries(st.text(max_size=8) | st.integers(0, 3), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), _anything, max_size=5))
def test_the_fast_path_gives_what_the_path_tracking_one_gives(value: dict[str, Any]) -> None:
    """`_canonical_fast` (plain types, no paths) answers or refuses exactly as
    `_canonical_value` does, astral keys, floats, bytes and huge integers included."""
    try:
        expected: object = signing._canonical_value(value, "$")
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        fast: object = signing._canonical_fast(value)
    except (TypeError, ValueError) as exc:
        fast = type(exc)
    assert fast == expected
    if not isinstance(expected, type):  # the same key order, nested objects' too
        assert json.dumps(fast, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


# --- keys -------------------------------------------------------------------------------------


def test_key_ids_are_derived_from_the_public_key() -> None:
    assert KEY.key_id == hashlib.sha256(KEY.public_bytes()).hexdigest()[:16]
    assert key_id_for(KEY.public_bytes()) == KEY.key_id == KEY.verify_key.key_id
    with pytest.raises(ValueError):
        SigningKey("0123456789abcdef", KEY.private_key)
    with pytest.raises(ValueError):
        VerifyKey(OTHER.key_id, KEY.verify_key.public_key)


def test_generated_keys_differ_and_survive_serialisation() -> None:
    first, second = generate_signing_key(), generate_signing_key()
    assert first.key_id != second.key_id
    restored = SigningKey.from_private_bytes(first.private_bytes())
    assert restored.key_id == first.key_id
    assert len(first.private_bytes()) == 32
    public = VerifyKey.from_public_b64(first.verify_key.public_b64())
    assert public.public_bytes() == first.public_bytes()
    assert verify(PAYLOAD, sign(PAYLOAD, restored), {public.key_id: public})


def test_private_key_never_appears_in_repr() -> None:
    assert KEY.private_bytes().hex() not in repr(KEY)
    assert base64.b64encode(KEY.private_bytes()).decode() not in repr(KEY)


@pytest.mark.parametrize(
    "text",
    ["", "not base64!", base64.b64encode(b"\x01" * 31).decode(), "A" * 43, "A" * 43 + "B"],
    ids=["empty", "garbage", "31 bytes", "unpadded", "unused bits set"],
)
def test_public_key_from_base64_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        VerifyKey.from_public_b64(text)


# --- sign and verify --------------------------------------------------------------------------


def test_signature_verifies_and_names_its_key() -> None:
    signature = sign(PAYLOAD, KEY)
    assert signature.key_id == KEY.key_id
    assert len(base64.b64decode(signature.value)) == 64
    assert verify(PAYLOAD, signature, KEYRING)


def test_signature_covers_the_nfc_value() -> None:
    nfd = _normalise(PAYLOAD, "NFD")
    assert verify(PAYLOAD, sign(nfd, KEY), KEYRING)


@pytest.mark.parametrize(
    "change",
    [
        {"copies": 3},
        {"on_time": False},
        {"applicant": {"name": "Nguyễn Thị Anh", "cccd": "079301000123"}},
        {"extra": None},
    ],
)
def test_tampered_payload_does_not_verify(change: dict[str, Any]) -> None:
    signature = sign(PAYLOAD, KEY)
    assert not verify({**PAYLOAD, **change}, signature, KEYRING)


def test_tampered_signature_does_not_verify() -> None:
    signature = sign(PAYLOAD, KEY)
    raw = bytearray(base64.b64decode(signature.value))
    for position in (0, 31, 63):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        forged = Signature(KEY.key_id, base64.b64encode(bytes(flipped)).decode())
        assert not verify(PAYLOAD, forged, KEYRING)


@pytest.mark.parametrize(
    "signature",
    [
        Signature("0000000000000000", "AAAA"),
        Signature(KEY.key_id, "not base64 at all"),
        Signature(KEY.key_id, base64.b64encode(b"\x00" * 63).decode()),
        Signature(KEY.key_id, ""),
        Signature(KEY.key_id, None),  # type: ignore[arg-type]  # garbage from outside
        Signature(None, "AAAA"),  # type: ignore[arg-type]  # same
        "a string",
        None,
    ],
)
def test_garbage_never_verifies_and_never_raises(signature: object) -> None:
    assert verify(PAYLOAD, signature, KEYRING) is False


def test_unknown_key_id_does_not_verify() -> None:
    assert not verify(PAYLOAD, sign(PAYLOAD, OTHER), KEYRING)


def test_key_filed_under_the_wrong_id_does_not_verify() -> None:
    signature = sign(PAYLOAD, OTHER)
    assert not verify(PAYLOAD, signature, {OTHER.key_id: KEY.verify_key})


def test_unsignable_payload_gives_false_not_an_exception() -> None:
    signature = sign(PAYLOAD, KEY)
    assert not verify({**PAYLOAD, "fee": 8000.0}, signature, KEYRING)
    assert not verify(["list"], signature, KEYRING)


def test_after_rotation_old_signatures_still_verify() -> None:
    old_signature = sign(PAYLOAD, KEY)
    new_signature = sign(PAYLOAD, OTHER)
    keyring = {KEY.key_id: KEY.verify_key, OTHER.key_id: OTHER.verify_key}
    assert verify(PAYLOAD, old_signature, keyring)
    assert verify(PAYLOAD, new_signature, keyring)
    # Dropping the old public key is what would break old signatures: keep retired keys.
    assert not verify(PAYLOAD, old_signature, {OTHER.key_id: OTHER.verify_key})


# --- receipts ---------------------------------------------------------------------------------

RECEIPT = make_receipt(PAYLOAD, KEY)


def test_receipt_is_readable_json_with_the_documented_layout() -> None:
    text = RECEIPT.decode("utf-8")
    assert "Nguyễn Thị Ánh" in text  # readable, not \u-escaped
    assert text.endswith("}\n") and '\n  "payload": {' in text
    document = json.loads(text)
    assert document["format"] == RECEIPT_FORMAT == "commune-kiosk-receipt/1"
    assert document["payload"] == PAYLOAD
    assert document["signature"]["alg"] == "Ed25519"
    assert document["signature"]["key_id"] == KEY.key_id
    assert document["signature"]["public_key"] == KEY.verify_key.public_b64()
    signature = Signature(KEY.key_id, document["signature"]["value"])
    assert verify(document["payload"], signature, KEYRING)


def test_receipt_round_trip() -> None:
    check = verify_receipt(RECEIPT, KEYRING)
    assert check.valid
    assert check.reason == signing.RECEIPT_VALID
    assert check.payload == PAYLOAD
    assert check.key_id == KEY.key_id


def test_receipt_without_trusted_keys_is_only_self_consistent() -> None:
    check = verify_receipt(RECEIPT, None)
    assert check.valid
    assert check.reason == signing.RECEIPT_SELF_CONSISTENT


def test_receipt_shows_the_nfc_payload_that_was_signed() -> None:
    data = make_receipt(_normalise(PAYLOAD, "NFD"), KEY)
    assert data == RECEIPT


def test_forged_receipt_with_the_attackers_own_key_is_rejected_against_our_keys() -> None:
    forged = make_receipt({**PAYLOAD, "copies": 9}, OTHER)
    assert verify_receipt(forged, None).valid  # self-consistent: that is all it can be
    check = verify_receipt(forged, KEYRING)
    assert not check.valid
    assert check.reason == signing.RECEIPT_UNKNOWN_KEY
    assert check.payload is None


def _edit(data: bytes, edit: Any) -> bytes:
    document = json.loads(data)
    edit(document)
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()


def test_forger_who_claims_our_key_id_with_his_key_is_rejected() -> None:
    def claim_our_id(document: dict[str, Any]) -> None:
        document["payload"]["copies"] = 9
        forged = sign(document["payload"], OTHER)
        document["signature"]["value"] = forged.value
        document["signature"]["key_id"] = KEY.key_id

    check = verify_receipt(_edit(make_receipt(PAYLOAD, OTHER), claim_our_id), KEYRING)
    assert not check.valid
    assert check.reason == signing.RECEIPT_BAD_KEY
    check = verify_receipt(_edit(make_receipt(PAYLOAD, OTHER), claim_our_id), None)
    assert not check.valid


def test_receipt_under_a_key_we_know_by_id_but_with_another_public_key_is_rejected() -> None:
    trusted_wrongly = {OTHER.key_id: KEY.verify_key}
    forged = make_receipt(PAYLOAD, OTHER)
    check = verify_receipt(forged, trusted_wrongly)
    assert not check.valid
    assert check.reason == signing.RECEIPT_UNKNOWN_KEY


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["payload"].update(copies=3), signing.RECEIPT_BAD_SIGNATURE),
        (lambda d: d["payload"].pop("note"), signing.RECEIPT_BAD_SIGNATURE),
        (lambda d: d.update(format="commune-kiosk-receipt/2"), signing.RECEIPT_WRONG_FORMAT),
        (lambda d: d.update(comment="added"), signing.RECEIPT_WRONG_FORMAT),
        (lambda d: d["signature"].update(alg="RS256"), signing.RECEIPT_WRONG_FORMAT),
        (lambda d: d["signature"].pop("public_key"), signing.RECEIPT_WRONG_FORMAT),
        (lambda d: d.update(payload=["list"]), signing.RECEIPT_WRONG_FORMAT),
        (lambda d: d["signature"].update(public_key="AAAA"), signing.RECEIPT_BAD_KEY),
        (lambda d: d["signature"].update(value="AAAA"), signing.RECEIPT_BAD_SIGNATURE),
    ],
    ids=[
        "payload value",
        "payload field removed",
        "format",
        "extra member",
        "algorithm",
        "no public key",
        "payload not an object",
        "public key garbage",
        "signature garbage",
    ],
)
def test_edited_receipt_is_rejected_with_the_right_reason(edit: Any, reason: object) -> None:
    check = verify_receipt(_edit(RECEIPT, edit), KEYRING)
    assert not check.valid
    assert check.reason == reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", signing.RECEIPT_UNREADABLE),
        (b"\xff\xfe{}", signing.RECEIPT_UNREADABLE),
        (b"[1, 2]", signing.RECEIPT_UNREADABLE),
        (b'{"format": 1.5}', signing.RECEIPT_UNREADABLE),
        (b'{"format": NaN}', signing.RECEIPT_UNREADABLE),
        (b"[" * 100_000 + b"]" * 100_000, signing.RECEIPT_UNREADABLE),
        (b" " * (signing.MAX_RECEIPT_BYTES + 1), signing.RECEIPT_TOO_LARGE),
        (b"{}", signing.RECEIPT_WRONG_FORMAT),
    ],
    ids=["empty", "not utf-8", "array", "float", "nan", "deep nesting", "too large", "empty obj"],
)
def test_files_that_are_not_receipts(data: bytes, reason: object) -> None:
    check = verify_receipt(data, KEYRING)
    assert not check.valid
    assert check.reason == reason


def test_duplicate_member_smuggling_a_second_payload_is_rejected() -> None:
    text = RECEIPT.decode()
    smuggled = text.replace('  "payload": {', '  "payload": {"copies": 9},\n  "payload": {', 1)
    check = verify_receipt(smuggled.encode(), KEYRING)
    assert not check.valid
    assert check.reason == signing.RECEIPT_UNREADABLE


def test_receipt_saved_again_by_an_editor_is_reported_as_changed_layout() -> None:
    for changed in (RECEIPT.replace(b"\n", b"\r\n"), RECEIPT.rstrip(b"\n"), b" " + RECEIPT):
        check = verify_receipt(changed, KEYRING)
        assert not check.valid
        assert check.reason == signing.RECEIPT_LAYOUT_CHANGED


@given(position=st.integers(0, len(RECEIPT) - 1), xor=st.integers(1, 255))
def test_any_byte_changed_in_a_receipt_makes_it_invalid(position: int, xor: int) -> None:
    changed = bytearray(RECEIPT)
    changed[position] ^= xor
    assert not verify_receipt(bytes(changed), KEYRING).valid
    assert not verify_receipt(bytes(changed), None).valid


@given(position=st.integers(0, len(RECEIPT)), data=st.binary(min_size=1, max_size=3))
def test_any_bytes_inserted_into_a_receipt_make_it_invalid(position: int, data: bytes) -> None:
    changed = RECEIPT[:position] + data + RECEIPT[position:]
    assert not verify_receipt(changed, None).valid


def test_reasons_are_bilingual() -> None:
    reasons = [value for name, value in vars(signing).items() if name.startswith("RECEIPT_")]
    messages = [m for m in reasons if isinstance(m, Message)]
    assert len(messages) == 9
    for message in messages:
        assert message.vi and message.en and message.vi != message.en
        assert any(ch in message.vi for ch in "ảạấầẩậắằẳặếềểệốồổộớờởợứừửựđ")
