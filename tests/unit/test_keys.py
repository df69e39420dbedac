"""Key material files in the instance folder, keys from the environment, rotation (core.keys)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from core.keys import (
    INIT_COMMAND,
    InvalidKeys,
    KeyMaterial,
    MissingKeys,
    load_or_create_keys,
    rotate_poster_key,
    rotate_sealing_key,
    unwrap_signing_key,
    wrap_signing_key,
)
from core.posters import ALPHABET, make_token, poster_key_id, read_token
from core.sealing import SealError, needs_reseal, seal, unseal
from core.signing import generate_signing_key


def _snapshot(instance: Path) -> dict[str, bytes]:
    keys_dir = instance / "keys"
    return {path.name: path.read_bytes() for path in sorted(keys_dir.iterdir())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_create_writes_every_key_file_private(tmp_path: Path) -> None:
    keys = load_or_create_keys(tmp_path, create=True)
    keys_dir = tmp_path / "keys"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    names = sorted(os.listdir(keys_dir))
    sealing_id, poster_id = keys.sealing.current, keys.poster_current
    assert names == sorted(
        [
            "secret.key",
            "index.key",
            f"sealing-{sealing_id}.key",
            "sealing.current",
            f"poster-{poster_id}.key",
            "poster.current",
        ]
    )
    for name in names:
        assert stat.S_IMODE((keys_dir / name).stat().st_mode) == 0o600, name
    assert len(keys.secret_key) == 32 and len(keys.index_key) == 32
    assert len(keys.sealing.keys[sealing_id]) == 32
    assert (keys_dir / f"sealing-{sealing_id}.key").read_text().strip() == _b64(
        keys.sealing.keys[sealing_id]
    )
    assert (keys_dir / "sealing.current").read_text() == f"{sealing_id}\n"
    # Poster ids are the poster alphabet's characters, derived from the key itself.
    assert poster_id in ALPHABET and poster_key_id(keys.poster_key) == poster_id
    assert keys.from_env == frozenset()


def test_keys_differ_between_installs_and_between_kinds(tmp_path: Path) -> None:
    first = load_or_create_keys(tmp_path / "a", create=True)
    second = load_or_create_keys(tmp_path / "b", create=True)
    assert first.secret_key != second.secret_key
    assert first.sealing.keys != second.sealing.keys
    assert len({first.secret_key, first.index_key, first.poster_key}) == 3


def test_second_call_changes_nothing(tmp_path: Path) -> None:
    first = load_or_create_keys(tmp_path, create=True)
    before = _snapshot(tmp_path)
    second = load_or_create_keys(tmp_path, create=True)
    third = load_or_create_keys(tmp_path, create=False)
    assert _snapshot(tmp_path) == before
    assert first == second == third


def test_existing_key_files_are_never_replaced(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir(mode=0o755)
    chosen = bytes(range(32))
    (keys_dir / "secret.key").write_text(_b64(chosen) + "\n")
    keys = load_or_create_keys(tmp_path, create=True)
    assert keys.secret_key == chosen
    assert (keys_dir / "secret.key").read_text() == _b64(chosen) + "\n"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700  # tightened on create


def test_without_create_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(MissingKeys) as caught:
        load_or_create_keys(tmp_path, create=False)
    assert not (tmp_path / "keys").exists()
    message = str(caught.value)
    for name in ("secret.key", "index.key", "sealing-<id>.key", "poster-<id>.key"):
        assert name in message
    assert INIT_COMMAND in message
    assert INIT_COMMAND in caught.value.message.vi and "Thiếu tệp khóa" in caught.value.message.vi


@pytest.mark.parametrize("name", ["secret.key", "index.key"])
def test_one_missing_file_is_named(tmp_path: Path, name: str) -> None:
    load_or_create_keys(tmp_path, create=True)
    (tmp_path / "keys" / name).unlink()
    with pytest.raises(MissingKeys) as caught:
        load_or_create_keys(tmp_path, create=False)
    message = caught.value.message.en
    assert f": {name}." in message
    other = {"secret.key", "index.key"} - {name}
    assert other.pop() not in message


def test_missing_sealing_key_named_by_the_current_file(tmp_path: Path) -> None:
    keys = load_or_create_keys(tmp_path, create=True)
    old = keys.sealing.current
    new = rotate_sealing_key(tmp_path)
    (tmp_path / "keys" / f"sealing-{new}.key").unlink()
    with pytest.raises(MissingKeys) as caught:
        load_or_create_keys(tmp_path, create=False)
    assert f"sealing-{new}.key (sealing.current names it)" in str(caught.value)
    assert f"sealing-{old}.key" not in str(caught.value)


def test_missing_current_file_falls_back_to_the_newest_key(tmp_path: Path) -> None:
    load_or_create_keys(tmp_path, create=True)
    newer = rotate_sealing_key(tmp_path)
    keys_dir = tmp_path / "keys"
    (keys_dir / "sealing.current").unlink()
    for path in keys_dir.glob("sealing-*.key"):
        os.utime(path, ns=(2_000_000_000 * 10**9,) * 2 if newer in path.name else (10**18,) * 2)
    assert load_or_create_keys(tmp_path, create=False).sealing.current == newer
    assert not (keys_dir / "sealing.current").exists()  # reading writes nothing
    assert load_or_create_keys(tmp_path, create=True).sealing.current == newer
    assert (keys_dir / "sealing.current").read_text() == f"{newer}\n"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("secret.key", "not base64\n"),
        ("secret.key", _b64(b"short") + "\n"),
        ("index.key", ""),
    ],
)
def test_damaged_key_file_is_named_and_kept(tmp_path: Path, name: str, content: str) -> None:
    load_or_create_keys(tmp_path, create=True)
    (tmp_path / "keys" / name).write_text(content)
    with pytest.raises(InvalidKeys) as caught:
        load_or_create_keys(tmp_path, create=True)
    assert name in str(caught.value) and "backup" in str(caught.value)
    assert (tmp_path / "keys" / name).read_text() == content


def test_damaged_sealing_key_or_bad_file_name_is_refused(tmp_path: Path) -> None:
    keys = load_or_create_keys(tmp_path, create=True)
    path = tmp_path / "keys" / f"sealing-{keys.sealing.current}.key"
    path.write_text(_b64(bytes(16)) + "\n")  # an AES-128 key is not ours
    with pytest.raises(InvalidKeys, match=path.name):
        load_or_create_keys(tmp_path, create=False)
    path.write_text(_b64(bytes(32)) + "\n")
    (tmp_path / "keys" / "poster-0.key").write_text(_b64(bytes(32)) + "\n")
    with pytest.raises(InvalidKeys, match="poster-0.key"):
        load_or_create_keys(tmp_path, create=False)


# --- environment --------------------------------------------------------------------------------

ENV = {
    "KIOSK_SECRET_KEY": _b64(b"s" * 32),
    "KIOSK_INDEX_KEY": _b64(b"i" * 32),
    "KIOSK_SEALING_KEYS": f"old:{_b64(b'o' * 32)}, new:{_b64(b'n' * 32)}",
    "KIOSK_POSTER_KEYS": f"K:{_b64(b'p' * 32)},M:{_b64(b'q' * 32)}",
}


def test_environment_alone_is_enough_and_nothing_is_written(tmp_path: Path) -> None:
    keys = load_or_create_keys(tmp_path, create=False, env=ENV)
    assert keys.secret_key == b"s" * 32 and keys.index_key == b"i" * 32
    assert keys.sealing.keys == {"old": b"o" * 32, "new": b"n" * 32}
    assert keys.sealing.current == "new"  # the last listed
    assert keys.poster_keys == {"K": b"p" * 32, "M": b"q" * 32}
    assert keys.poster_current == "M"
    assert keys.from_env == {"secret", "index", "sealing", "poster"}
    assert not (tmp_path / "keys").exists()
    load_or_create_keys(tmp_path, create=True, env=ENV)
    assert list((tmp_path / "keys").iterdir()) == []


def test_environment_wins_over_files(tmp_path: Path) -> None:
    files = load_or_create_keys(tmp_path, create=True)
    env = {"KIOSK_SEALING_KEYS": ENV["KIOSK_SEALING_KEYS"], "KIOSK_SEALING_CURRENT": "old"}
    keys = load_or_create_keys(tmp_path, create=False, env=env)
    assert keys.sealing.current == "old" and set(keys.sealing.keys) == {"old", "new"}
    assert keys.secret_key == files.secret_key  # kinds the environment does not give: files
    assert keys.from_env == {"sealing"}


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    files = load_or_create_keys(tmp_path, create=True)
    keys = load_or_create_keys(tmp_path, create=False, env={"KIOSK_SECRET_KEY": "  "})
    assert keys.secret_key == files.secret_key


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KIOSK_SECRET_KEY", "changeme"),
        ("KIOSK_SECRET_KEY", _b64(b"x" * 16)),
        ("KIOSK_SEALING_KEYS", f"k1{_b64(b'o' * 32)}"),
        ("KIOSK_SEALING_KEYS", f"k1:{_b64(b'o' * 16)}"),
        ("KIOSK_SEALING_KEYS", f"k.1:{_b64(b'o' * 32)}"),
        ("KIOSK_SEALING_KEYS", f"k1:{_b64(b'o' * 32)},k1:{_b64(b'p' * 32)}"),
        ("KIOSK_SEALING_KEYS", f"k1:{_b64(b'o' * 32)},"),
        ("KIOSK_POSTER_KEYS", f"KK:{_b64(b'p' * 32)}"),
        ("KIOSK_POSTER_KEYS", f"O:{_b64(b'p' * 32)}"),
        ("KIOSK_SEALING_CURRENT", "nope"),
        ("KIOSK_POSTER_CURRENT", "Z"),
    ],
)
def test_bad_environment_is_named_without_echoing_the_key(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {**ENV, variable: value}
    with pytest.raises(InvalidKeys) as caught:
        load_or_create_keys(tmp_path, create=True, env=env)
    message = str(caught.value)
    assert variable in message
    for part in value.replace(",", ":").split(":"):
        if len(part) > 8:
            assert part not in message


# --- rotation -----------------------------------------------------------------------------------


def test_sealing_rotation_keeps_old_data_open(tmp_path: Path) -> None:
    before = load_or_create_keys(tmp_path, create=True)
    token = seal(b"079301000123", before.sealing, context=b"dossier:1:x")
    new_id = rotate_sealing_key(tmp_path)
    after = load_or_create_keys(tmp_path, create=False)
    assert after.sealing.current == new_id != before.sealing.current
    assert set(after.sealing.keys) == {before.sealing.current, new_id}
    assert unseal(token, after.sealing, context=b"dossier:1:x") == b"079301000123"
    assert needs_reseal(token, after.sealing)
    assert after.secret_key == before.secret_key and after.poster_keys == before.poster_keys


def test_poster_rotation_keeps_old_posters_scanning(tmp_path: Path) -> None:
    before = load_or_create_keys(tmp_path, create=True)
    old_token = make_token(42, before.poster_key, key_id=before.poster_current)
    new_id = rotate_poster_key(tmp_path)
    after = load_or_create_keys(tmp_path, create=False)
    assert after.poster_current == new_id != before.poster_current
    assert poster_key_id(after.poster_key) == new_id
    assert read_token(old_token, after.poster_keys) == 42
    assert read_token(old_token, list(after.poster_keys.values())) == 42
    new_token = make_token(43, after.poster_key, key_id=new_id)
    assert read_token(new_token, after.poster_keys) == 43


def test_rotation_before_init_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(MissingKeys, match="sealing-<id>.key"):
        rotate_sealing_key(tmp_path)


# --- commune signing keys sealed in the database -------------------------------------------------


def test_signing_key_wrapping_round_trip_and_binding(tmp_path: Path) -> None:
    keys: KeyMaterial = load_or_create_keys(tmp_path, create=True)
    key = generate_signing_key()
    sealed = wrap_signing_key(key, commune_id=7, keyring=keys.sealing)
    assert key.private_bytes().hex() not in sealed
    restored = unwrap_signing_key(sealed, commune_id=7, key_id=key.key_id, keyring=keys.sealing)
    assert restored.private_bytes() == key.private_bytes()
    # The same context as written by hand elsewhere: b"signing-key:<commune id>:<key id>".
    by_hand = unseal(sealed, keys.sealing, context=f"signing-key:7:{key.key_id}".encode())
    assert by_hand == key.private_bytes()
    with pytest.raises(SealError):
        unwrap_signing_key(sealed, commune_id=8, key_id=key.key_id, keyring=keys.sealing)
    other = generate_signing_key()
    with pytest.raises(SealError):
        unwrap_signing_key(sealed, commune_id=7, key_id=other.key_id, keyring=keys.sealing)
