"""Sealing personal data at rest with AES-256-GCM, blind indexes and key rotation (core.sealing)."""

from __future__ import annotations

import base64
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.sealing import (
    FILE_MAGIC,
    Keyring,
    SealError,
    blind_index,
    file_needs_reseal,
    needs_reseal,
    reseal,
    seal,
    seal_file_bytes,
    seal_json,
    sealed_key_id,
    unseal,
    unseal_file_bytes,
    unseal_json,
)

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
RING = Keyring({"k1": OLD}, "k1")
ROTATED = Keyring({"k1": OLD, "k2": NEW}, "k2")
CONTEXT = b"dossier:7:5b0c0a7e-0d3c-4a61-9d7e-3c1f2b1a0e99"
SECRET = "Nguyễn Thị Ánh, CCCD 079301000123".encode()


def test_round_trip_and_token_shape() -> None:
    token = seal(SECRET, RING, context=CONTEXT)
    assert re.fullmatch(r"v1\.k1\.[A-Za-z0-9_-]+", token)
    assert unseal(token, RING, context=CONTEXT) == SECRET
    # nonce 12 + ciphertext + tag 16, base64url without padding
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 12 + len(SECRET) + 16


def test_plaintext_does_not_appear_and_each_seal_differs() -> None:
    first, second = seal(SECRET, RING, context=CONTEXT), seal(SECRET, RING, context=CONTEXT)
    assert first != second  # fresh nonce each time
    assert b"079301000123" not in first.encode()
    assert b"079301000123" not in base64.urlsafe_b64decode(first.split(".")[2] + "==")


@pytest.mark.parametrize(
    "context",
    [b"dossier:7:another-uuid", b"dossier:8:5b0c0a7e-0d3c-4a61-9d7e-3c1f2b1a0e99", b""],
    ids=["other row", "other commune", "empty"],
)
def test_a_sealed_value_copied_to_another_row_does_not_open(context: bytes) -> None:
    token = seal(SECRET, RING, context=CONTEXT)
    with pytest.raises(SealError, match="another record"):
        unseal(token, RING, context=context)


def test_unknown_key_id_is_refused() -> None:
    token = seal(SECRET, ROTATED, context=CONTEXT)  # sealed with k2
    with pytest.raises(SealError, match="'k2'"):
        unseal(token, RING, context=CONTEXT)


def test_renaming_the_key_id_in_a_token_does_not_open_it() -> None:
    token = seal(SECRET, RING, context=CONTEXT)
    relabelled = token.replace("v1.k1.", "v1.k2.", 1)
    with pytest.raises(SealError):
        unseal(relabelled, ROTATED, context=CONTEXT)


@given(position=st.integers(0, 200), replacement=st.sampled_from("AQgw_-"))
def test_any_change_in_the_sealed_text_is_refused(position: int, replacement: str) -> None:
    token = seal(SECRET, RING, context=CONTEXT)
    position %= len(token)
    if token[position] == replacement:
        replacement = "B"
    changed = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(SealError):
        unseal(changed, RING, context=CONTEXT)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.k1",
        "v2.k1.AAAA",
        "v1.k1.AAAA.extra",
        "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k 1.AAAA",
        "v1.k1.AAAA",  # too short to hold a nonce and a tag
        "v1.k1.not base64!",
        "v1.k1.AAB",  # non-zero unused bits: not the canonical spelling
        "v1.k1.ÀÀÀÀ",
    ],
)
def test_malformed_tokens_raise_seal_error(token: str) -> None:
    with pytest.raises(SealError):
        unseal(token, RING, context=CONTEXT)


def test_tokens_are_text_only() -> None:
    with pytest.raises(SealError):
        unseal(b"v1.k1.AAAA", RING, context=CONTEXT)  # type: ignore[arg-type]  # garbage in
    with pytest.raises(TypeError):
        seal("text", RING, context=CONTEXT)  # type: ignore[arg-type]  # encode first


@given(plaintext=st.binary(max_size=2048), context=st.binary(max_size=64))
def test_seal_unseal_round_trip(plaintext: bytes, context: bytes) -> None:
    token = seal(plaintext, ROTATED, context=context)
    assert unseal(token, ROTATED, context=context) == plaintext
    blob = seal_file_bytes(plaintext, ROTATED, context=context)
    assert unseal_file_bytes(blob, ROTATED, context=context) == plaintext


# --- JSON ---------------------------------------------------------------------------------------


def test_json_round_trip_is_canonical_and_nfc() -> None:
    value = {"ho_ten": unicodedata.normalize("NFD", "Trần Văn Bình"), "so_ban_sao": 2, "ok": True}
    token = seal_json(value, RING, context=CONTEXT)
    assert unseal_json(token, RING, context=CONTEXT) == {
        "ho_ten": "Trần Văn Bình",
        "so_ban_sao": 2,
        "ok": True,
    }
    assert unseal(token, RING, context=CONTEXT) == (
        '{"ho_ten":"Trần Văn Bình","ok":true,"so_ban_sao":2}'.encode()
    )


def test_json_refuses_floats_before_sealing() -> None:
    with pytest.raises(TypeError):
        seal_json({"fee": 8000.5}, RING, context=CONTEXT)


@pytest.mark.parametrize("plaintext", [b"[1, 2]", b"\xff", b"not json"])
def test_unseal_json_of_something_else_is_a_seal_error(plaintext: bytes) -> None:
    token = seal(plaintext, RING, context=CONTEXT)
    with pytest.raises(SealError):
        unseal_json(token, RING, context=CONTEXT)


# --- files --------------------------------------------------------------------------------------

SCAN = b"%PDF-1.7\n" + bytes(range(256)) * 40


def test_file_round_trip_and_header() -> None:
    blob = seal_file_bytes(SCAN, RING, context=b"file:7:abc")
    assert blob.startswith(FILE_MAGIC + bytes([2]) + b"k1")
    assert len(blob) == 4 + 1 + 2 + 12 + len(SCAN) + 16
    assert b"%PDF" not in blob
    assert unseal_file_bytes(blob, RING, context=b"file:7:abc") == SCAN


def test_file_with_wrong_context_or_tampering_does_not_open() -> None:
    blob = seal_file_bytes(SCAN, RING, context=b"file:7:abc")
    with pytest.raises(SealError):
        unseal_file_bytes(blob, RING, context=b"file:7:abd")
    for position in (0, 4, 6, 7, 20, len(blob) // 2, len(blob) - 1):
        changed = bytearray(blob)
        changed[position] ^= 0x40
        with pytest.raises(SealError):
            unseal_file_bytes(bytes(changed), RING, context=b"file:7:abc")


@pytest.mark.parametrize("cut", [0, 3, 5, 6, 7, 20, 34])
def test_truncated_file_does_not_open(cut: int) -> None:
    blob = seal_file_bytes(b"short", RING, context=CONTEXT)
    with pytest.raises(SealError):
        unseal_file_bytes(blob[:cut], RING, context=CONTEXT)


def test_a_file_blob_cannot_stand_in_for_a_token_or_back() -> None:
    blob = seal_file_bytes(SECRET, RING, context=CONTEXT)
    body = base64.urlsafe_b64encode(blob[7:]).rstrip(b"=").decode()
    with pytest.raises(SealError):
        unseal(f"v1.k1.{body}", RING, context=CONTEXT)
    token = seal(SECRET, RING, context=CONTEXT)
    raw = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    with pytest.raises(SealError):
        unseal_file_bytes(FILE_MAGIC + b"\x02k1" + raw, RING, context=CONTEXT)


# --- rotation -----------------------------------------------------------------------------------


def test_after_rotation_old_values_open_and_are_flagged_for_resealing() -> None:
    old_token = seal(SECRET, RING, context=CONTEXT)
    old_file = seal_file_bytes(SCAN, RING, context=CONTEXT)
    assert unseal(old_token, ROTATED, context=CONTEXT) == SECRET
    assert unseal_file_bytes(old_file, ROTATED, context=CONTEXT) == SCAN
    assert needs_reseal(old_token, ROTATED) and file_needs_reseal(old_file, ROTATED)
    assert not needs_reseal(old_token, RING) and not file_needs_reseal(old_file, RING)

    new_token = seal(SECRET, ROTATED, context=CONTEXT)
    assert sealed_key_id(new_token) == "k2" and not needs_reseal(new_token, ROTATED)

    resealed = reseal(old_token, ROTATED, context=CONTEXT)
    assert sealed_key_id(resealed) == "k2"
    assert reseal(resealed, ROTATED, context=CONTEXT) == resealed
    # Once everything is resealed the old key can be retired.
    assert unseal(resealed, Keyring({"k2": NEW}, "k2"), context=CONTEXT) == SECRET


def test_needs_reseal_of_garbage_is_a_seal_error() -> None:
    with pytest.raises(SealError):
        needs_reseal("garbage", ROTATED)
    with pytest.raises(SealError):
        file_needs_reseal(b"garbage", ROTATED)


@pytest.mark.parametrize(
    ("keys", "current"),
    [
        ({"k1": OLD}, "k2"),
        ({"k1": OLD[:16]}, "k1"),
        ({"k1": OLD + b"x"}, "k1"),
        ({"k.1": OLD}, "k.1"),
        ({"": OLD}, ""),
        ({"k1": "not bytes"}, "k1"),
    ],
    ids=["current missing", "AES-128 key", "33 bytes", "dot in id", "empty id", "text key"],
)
def test_keyring_refuses_unusable_keys(keys: dict[str, bytes], current: str) -> None:
    with pytest.raises(ValueError):
        Keyring(keys, current)


def test_keyring_copies_its_keys_and_hides_them() -> None:
    keys = {"k1": OLD}
    ring = Keyring(keys, "k1")
    keys["k1"] = NEW
    assert ring.keys["k1"] == OLD
    assert OLD.hex() not in repr(ring) and repr(OLD) not in repr(ring)


# --- blind index --------------------------------------------------------------------------------

INDEX_KEY = bytes(range(50, 82))


def test_blind_index_is_stable_short_hex_and_keyed() -> None:
    index = blind_index("079301000123", INDEX_KEY)
    assert re.fullmatch(r"[0-9a-f]{32}", index)
    assert blind_index("079301000123", INDEX_KEY) == index
    assert blind_index("079301000124", INDEX_KEY) != index
    assert blind_index("079301000123", bytes(range(51, 83))) != index
    assert "079301000123" not in index


def test_blind_index_treats_nfc_equivalent_text_alike() -> None:
    nfd = unicodedata.normalize("NFD", "Lê Thị Huệ")
    assert blind_index(nfd, INDEX_KEY) == blind_index("Lê Thị Huệ", INDEX_KEY)


def test_blind_index_refuses_a_short_key() -> None:
    with pytest.raises(ValueError):
        blind_index("+84912345678", b"short")
