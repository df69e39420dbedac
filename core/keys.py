"""Key material (khóa bí mật) of an install, kept in files outside the database.

The database holds sealed personal data and sealed commune signing keys; the keys that open them
live elsewhere, so a stolen database or backup alone is useless. They sit in the instance folder::

    instance/keys/              mode 0700
        secret.key              Flask session and CSRF secret (32 random bytes)
        index.key               blind-index key for lookups by ID number or phone; never rotated
        sealing-<id>.key        AES-256 sealing keys, one per id (core.sealing)
        sealing.current         the id of the key that seals new data
        poster-<id>.key         HMAC keys of poster tokens, id = one poster-alphabet character
        poster.current          the id that signs new posters

Each key file is mode 0600 and holds the key in standard base64 and a newline, so an operator can
copy it into an environment variable. Files are written atomically (a temporary file, then a hard
link to the final name, which fails rather than overwrite) and never replaced: `init` run twice,
or by two processes at once, changes nothing the second time.

Each commune's Ed25519 signing key (core.signing) is stored in the database sealed with the
sealing keyring under the context ``b"signing-key:<commune id>:<key id>"`` (`wrap_signing_key`), so
the sealing keys are the only master keys.

Several hosts serving one install must share the same keys. They can copy the folder, or pass the
keys in the environment, which wins over the files for each kind of key:

- ``KIOSK_SECRET_KEY``, ``KIOSK_INDEX_KEY``: base64;
- ``KIOSK_SEALING_KEYS="id1:base64,id2:base64"`` and ``KIOSK_SEALING_CURRENT`` (default: the last
  listed);
- ``KIOSK_POSTER_KEYS="K:base64,..."`` and ``KIOSK_POSTER_CURRENT`` (default: the last listed).

Rotation (`rotate_sealing_key`, `rotate_poster_key`) adds a key and makes it current; old keys stay
so old data still opens and old posters still scan.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.posters import ALPHABET as POSTER_ALPHABET
from core.posters import MIN_KEY_BYTES as MIN_POSTER_KEY_BYTES
from core.posters import poster_key_id
from core.sealing import KEY_BYTES as SEALING_KEY_BYTES
from core.sealing import KEY_ID_PATTERN, Keyring, SealError, seal, unseal
from core.signing import SigningKey
from core.text import Message

KEYS_DIR = "keys"
SECRET_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
INDEX_FILE = "index.key"
SECRET_BYTES = 32
NEW_KEY_BYTES = 32
INIT_COMMAND = "flask --app wsgi init"

_DIR_MODE = 0o700
_FILE_MODE = 0o600


class MissingKeys(Exception):
    """The install cannot start: key material is missing or unusable. The message says which."""

    def __init__(self, message: Message) -> None:
        super().__init__(f"{message.en}\n{message.vi}")
        self.message = message


class InvalidKeys(MissingKeys):
    """A key file or variable exists but does not hold a usable key; for the install that is the
    same as a missing key, and `init` will not replace it (it never overwrites keys)."""


@dataclass(frozen=True)
class KeyMaterial:
    """Every key a running install needs, from the instance folder or the environment."""

    secret_key: bytes
    index_key: bytes
    sealing: Keyring
    poster_keys: Mapping[str, bytes]
    poster_current: str
    # Which kinds came from environment variables ("secret", "index", "sealing", "poster").
    from_env: frozenset[str] = field(default_factory=frozenset)

    @property
    def poster_key(self) -> bytes:
        """The key that signs new posters."""
        return self.poster_keys[self.poster_current]

    def __repr__(self) -> str:
        return (
            f"KeyMaterial(sealing={self.sealing!r}, poster_ids={sorted(self.poster_keys)!r}, "
            f"poster_current={self.poster_current!r}, from_env={sorted(self.from_env)!r})"
        )


# --- loading ------------------------------------------------------------------------------------


def load_or_create_keys(
    instance_dir: Path, *, create: bool, env: Mapping[str, str] | None = None
) -> KeyMaterial:
    """The install's keys; with `create`, make whatever is missing (never replacing a file).

    Without `create`, nothing is written, and a missing file raises MissingKeys naming every
    missing file. `env` (normally os.environ) provides keys that win over the files.
    """
    # An empty variable counts as unset: `KIOSK_SECRET_KEY=` in a unit file is a placeholder.
    environ = {name: value for name, value in (env or {}).items() if value.strip()}
    keys_dir = Path(instance_dir) / KEYS_DIR
    if create:
        _ensure_dir(keys_dir)
    missing: list[str] = []
    from_env: set[str] = set()

    def single(kind: str, variable: str, filename: str, min_bytes: int) -> bytes:
        if variable in environ:
            from_env.add(kind)
            return _env_single(environ[variable], variable, min_bytes)
        return _file_single(keys_dir / filename, create, missing, min_bytes)

    secret_key = single("secret", "KIOSK_SECRET_KEY", SECRET_FILE, SECRET_BYTES)
    index_key = single("index", "KIOSK_INDEX_KEY", INDEX_FILE, SECRET_BYTES)
    sealing = _ring(_SEALING, keys_dir, environ, create, missing, from_env)
    posters = _ring(_POSTER, keys_dir, environ, create, missing, from_env)
    if missing:
        raise MissingKeys(_missing_message(keys_dir, missing))
    assert sealing is not None and posters is not None  # noqa: S101 - None only when missing
    return KeyMaterial(
        secret_key=secret_key,
        index_key=index_key,
        sealing=Keyring(sealing[0], sealing[1]),
        poster_keys=posters[0],
        poster_current=posters[1],
        from_env=frozenset(from_env),
    )


@dataclass(frozen=True)
class _Kind:
    """One family of rotating keys: sealing or poster."""

    name: str  # file prefix and from_env label
    keys_variable: str
    current_variable: str
    exact_bytes: int | None
    min_bytes: int
    id_ok: Callable[[str], bool]
    id_rule: Message
    # A fresh (id, key) whose id is not among the existing ones.
    new_key: Callable[[set[str]], tuple[str, bytes]]


def _new_sealing_key(existing: set[str]) -> tuple[str, bytes]:
    while True:
        key_id = secrets.token_hex(4)
        if key_id not in existing:
            return key_id, secrets.token_bytes(SEALING_KEY_BYTES)


def _new_poster_key(existing: set[str]) -> tuple[str, bytes]:
    # The id is derived from the key (core.posters), so posters also verify against a plain list
    # of keys; draw keys until the derived id is a free one.
    if len(existing) >= len(POSTER_ALPHABET):
        raise ValueError(
            f"All {len(POSTER_ALPHABET)} poster key ids are in use; retire an old poster key first"
        )
    while True:
        key = secrets.token_bytes(NEW_KEY_BYTES)
        if poster_key_id(key) not in existing:
            return poster_key_id(key), key


_SEALING = _Kind(
    name="sealing",
    keys_variable="KIOSK_SEALING_KEYS",
    current_variable="KIOSK_SEALING_CURRENT",
    exact_bytes=SEALING_KEY_BYTES,
    min_bytes=SEALING_KEY_BYTES,
    id_ok=lambda key_id: KEY_ID_PATTERN.fullmatch(key_id) is not None,
    id_rule=Message(
        vi="mã khóa niêm phong gồm 1–64 chữ cái không dấu, chữ số, dấu - hoặc _",
        en="a sealing key id is 1–64 ASCII letters, digits, - or _",
    ),
    new_key=_new_sealing_key,
)
_POSTER = _Kind(
    name="poster",
    keys_variable="KIOSK_POSTER_KEYS",
    current_variable="KIOSK_POSTER_CURRENT",
    exact_bytes=None,
    min_bytes=MIN_POSTER_KEY_BYTES,
    id_ok=lambda key_id: len(key_id) == 1 and key_id in POSTER_ALPHABET,
    id_rule=Message(
        vi=f"mã khóa áp phích là đúng một ký tự trong {POSTER_ALPHABET}",
        en=f"a poster key id is exactly one character of {POSTER_ALPHABET}",
    ),
    new_key=_new_poster_key,
)


def _ring(
    kind: _Kind,
    keys_dir: Path,
    env: Mapping[str, str],
    create: bool,
    missing: list[str],
    from_env: set[str],
) -> tuple[dict[str, bytes], str] | None:
    """The keys of one kind and the current id, from the environment or the files."""
    if kind.keys_variable in env:
        from_env.add(kind.name)
        keys = _env_ring(kind, env[kind.keys_variable])
        default_current = list(keys)[-1]
    else:
        keys = _file_ring(kind, keys_dir)
        if not keys:
            if not create:
                missing.append(f"{kind.name}-<id>.key")
                return None
            key_id, key = kind.new_key(set())
            _write_new(keys_dir / f"{kind.name}-{key_id}.key", _encode_key(key))
            keys = _file_ring(kind, keys_dir)
        recorded = _file_current(kind, keys_dir, keys, create, missing)
        if recorded is None:
            return None
        default_current = recorded
    current = env.get(kind.current_variable, default_current).strip()
    if current not in keys:
        raise InvalidKeys(
            Message(
                vi=f"{kind.current_variable} chỉ tới khóa “{current}” nhưng không có khóa này.",
                en=f"{kind.current_variable} names key '{current}', which does not exist.",
            )
        )
    return keys, current


def _file_ring(kind: _Kind, keys_dir: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    if not keys_dir.is_dir():
        return keys
    for path in sorted(keys_dir.glob(f"{kind.name}-*.key")):
        key_id = path.name[len(kind.name) + 1 : -len(".key")]
        if not kind.id_ok(key_id):
            raise InvalidKeys(
                Message(
                    vi=f"Tên tệp {path} không hợp lệ: {kind.id_rule.vi}.",
                    en=f"The file name {path} is not valid: {kind.id_rule.en}.",
                )
            )
        keys[key_id] = _read_key(path, kind.min_bytes, kind.exact_bytes)
    return keys


def _file_current(
    kind: _Kind, keys_dir: Path, keys: Mapping[str, bytes], create: bool, missing: list[str]
) -> str | None:
    """The id in `<kind>.current`, else the newest key file (and, with `create`, record it)."""
    current_path = keys_dir / f"{kind.name}.current"
    try:
        current = current_path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        # File times are a weak witness (a copy without -p resets them), but any key of the ring
        # still opens everything, so a wrong pick only seals new data under an older key.
        current = max(keys, key=lambda key_id: (_mtime(keys_dir, kind, key_id), key_id))
        if create:
            _write_new(current_path, f"{current}\n".encode("ascii"))
            current = current_path.read_text(encoding="ascii").strip()
    except (UnicodeDecodeError, ValueError):
        current = ""
    if current not in keys:
        if kind.id_ok(current):
            missing.append(f"{kind.name}-{current}.key ({kind.name}.current names it)")
            return None
        raise InvalidKeys(
            Message(
                vi=f"Tệp {current_path} không chứa một mã khóa hợp lệ: {kind.id_rule.vi}.",
                en=f"The file {current_path} does not hold a valid key id: {kind.id_rule.en}.",
            )
        )
    return current


def _mtime(keys_dir: Path, kind: _Kind, key_id: str) -> int:
    return (keys_dir / f"{kind.name}-{key_id}.key").stat().st_mtime_ns


def _file_single(path: Path, create: bool, missing: list[str], min_bytes: int) -> bytes:
    if not path.exists():
        if not create:
            missing.append(path.name)
            return b""
        _write_new(path, _encode_key(secrets.token_bytes(NEW_KEY_BYTES)))
    return _read_key(path, min_bytes, None)


def _read_key(path: Path, min_bytes: int, exact_bytes: int | None) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        key = base64.b64decode(text, validate=True)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        key = b""
    if len(key) < min_bytes or (exact_bytes is not None and len(key) != exact_bytes):
        size = exact_bytes or min_bytes
        raise InvalidKeys(
            Message(
                vi=(
                    f"Tệp khóa {path} bị hỏng (cần {size} byte ngẫu nhiên dạng base64). "
                    "Hãy khôi phục tệp này từ bản sao lưu; không xóa nó đi, vì dữ liệu đã mã hóa "
                    "bằng khóa này sẽ không mở được nữa."
                ),
                en=(
                    f"The key file {path} is damaged (it must hold {size} random bytes in base64). "
                    "Restore it from the backup; do not delete it, or data sealed with this key "
                    "can no longer be opened."
                ),
            )
        )
    return key


def _env_single(value: str, variable: str, min_bytes: int) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < min_bytes:
        raise InvalidKeys(_bad_variable(variable, f"at least {min_bytes} bytes", min_bytes))
    return key


def _env_ring(kind: _Kind, value: str) -> dict[str, bytes]:
    variable = kind.keys_variable
    keys: dict[str, bytes] = {}
    for entry in value.split(","):
        key_id, sep, encoded = entry.strip().partition(":")
        if not sep or not kind.id_ok(key_id) or key_id in keys:
            raise InvalidKeys(
                Message(
                    vi=(
                        f"Biến môi trường {variable} phải có dạng “mã1:base64,mã2:base64”, mỗi mã "
                        f"một lần; {kind.id_rule.vi}."
                    ),
                    en=(
                        f"The environment variable {variable} must read 'id1:base64,id2:base64', "
                        f"each id once; {kind.id_rule.en}."
                    ),
                )
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) < kind.min_bytes or (
            kind.exact_bytes is not None and len(key) != kind.exact_bytes
        ):
            size = kind.exact_bytes or kind.min_bytes
            raise InvalidKeys(_bad_variable(f"{variable} (key '{key_id}')", f"{size} bytes", size))
        keys[key_id] = key
    return keys


def _bad_variable(what: str, size_en: str, size: int) -> Message:
    return Message(
        vi=f"Khóa trong {what} không hợp lệ: cần ít nhất {size} byte ngẫu nhiên viết dạng base64.",
        en=f"The key in {what} is not valid: it must be {size_en} of random data in base64.",
    )


def _missing_message(keys_dir: Path, missing: list[str]) -> Message:
    names = ", ".join(missing)
    where = keys_dir if keys_dir.is_dir() else f"{keys_dir} (the folder itself does not exist)"
    noi = keys_dir if keys_dir.is_dir() else f"{keys_dir} (chưa có cả thư mục này)"
    return Message(
        vi=(
            f"Thiếu tệp khóa trong {noi}: {names}. Chạy `{INIT_COMMAND}` để tạo khóa cho bản cài "
            "đặt mới. Nếu bản cài đặt này đã có dữ liệu, hãy khôi phục thư mục khóa từ bản sao lưu "
            "thay vì tạo khóa mới: dữ liệu đã mã hóa bằng khóa cũ chỉ mở được bằng chính khóa đó."
        ),
        en=(
            f"Key files missing in {where}: {names}. Run `{INIT_COMMAND}` to create the keys of "
            "a new install. If this install already holds data, restore the keys folder from the "
            "backup instead: data sealed with the old keys opens only with those keys."
        ),
    )


def _encode_key(key: bytes) -> bytes:
    return base64.b64encode(key) + b"\n"


# --- rotation -----------------------------------------------------------------------------------


def rotate_sealing_key(instance_dir: Path) -> str:
    """Add a sealing key file, make it current, keep the old ones; the new key's id."""
    return _rotate(_SEALING, Path(instance_dir) / KEYS_DIR)


def rotate_poster_key(instance_dir: Path) -> str:
    """Add a poster key file, make it current, keep the old ones; the new key's id."""
    return _rotate(_POSTER, Path(instance_dir) / KEYS_DIR)


def _rotate(kind: _Kind, keys_dir: Path) -> str:
    existing = _file_ring(kind, keys_dir)
    if not existing:
        raise MissingKeys(_missing_message(keys_dir, [f"{kind.name}-<id>.key"]))
    key_id, key = kind.new_key(set(existing))
    _write_new(keys_dir / f"{kind.name}-{key_id}.key", _encode_key(key))
    # The one file that is replaced on purpose: which key is current.
    _write_replace(keys_dir / f"{kind.name}.current", f"{key_id}\n".encode("ascii"))
    return key_id


# --- the commune signing keys, sealed in the database ---------------------------------------------


def signing_key_context(commune_id: int, key_id: str) -> bytes:
    """The sealing context of a commune's private signing key."""
    return f"signing-key:{commune_id}:{key_id}".encode("ascii")


def wrap_signing_key(key: SigningKey, *, commune_id: int, keyring: Keyring) -> str:
    """The commune's private key sealed for its database row."""
    return seal(key.private_bytes(), keyring, context=signing_key_context(commune_id, key.key_id))


def unwrap_signing_key(
    sealed: str, *, commune_id: int, key_id: str, keyring: Keyring
) -> SigningKey:
    """The private key of a database row; SealError if it does not open or is not that key."""
    raw = unseal(sealed, keyring, context=signing_key_context(commune_id, key_id))
    try:
        key = SigningKey.from_private_bytes(raw)
    except ValueError as exc:
        raise SealError("The sealed signing key is not an Ed25519 key") from exc
    if key.key_id != key_id:
        raise SealError(f"The sealed signing key is not key {key_id!r}")
    return key


# --- files --------------------------------------------------------------------------------------


def _ensure_dir(keys_dir: Path) -> None:
    keys_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode passes through the umask, and an existing folder may be wider: fix both.
    if keys_dir.stat().st_mode & 0o777 != _DIR_MODE:
        keys_dir.chmod(_DIR_MODE)


def _write_temp(path: Path, data: bytes) -> Path:
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        os.fchmod(fd, _FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _write_new(path: Path, data: bytes) -> bool:
    """Create `path` with `data` atomically unless it exists; True if this call created it."""
    temp = _write_temp(path, data)
    try:
        # link() fails when the name exists, so a concurrent writer's key is never replaced.
        os.link(temp, path)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A filesystem without hard links: check, then rename (a narrow race, not data loss
        # unless two first-time inits run at the same instant on such a filesystem).
        created = not path.exists()
        if created:
            os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return created


def _write_replace(path: Path, data: bytes) -> None:
    temp = _write_temp(path, data)
    try:
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Make the new name itself durable; some platforms cannot open a folder, which is harmless.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
