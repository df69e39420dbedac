"""Posters (áp phích mã QR): a procedure at a place, opened by scanning a printed QR code.

A commune prints one poster per procedure and place ("Đăng ký khai sinh" on the "Bảng tin UBND xã",
in the "Công viên ấp 3" …). Fraudsters paste fake QR stickers over real ones (domain.md §8), so the
code a poster carries must be provably ours, short enough for a small, robust QR symbol, and
revocable. This module holds the pure part:

- the **token** (mã áp phích) in the poster's URL `<base>/q/<token>`: a key id, the poster's number
  and an HMAC-SHA256 tag made with a server secret. Only the server can mint one; a forged or
  altered token is refused before any database lookup. Revocation and expiry are rows in the
  database, checked by the caller after `read_token` names the poster.
- the **short code** printed under the QR ("K7P3-9XQA-BC") that a citizen can type on the public
  "check a poster" page (kiểm tra áp phích). It is the token's first characters: key id, poster
  number and the first 35 bits of the same tag, so it is derived from the token without any key
  and the server verifies it on its own.
- the **QR matrix** of a URL, at the strongest error correction that keeps the symbol at version 5
  (37×37 modules) or smaller, and its SVG and PNG renderings. The print-ready PDF is in
  `core.poster_print`.

Token layout, every character from one 32-letter alphabet without 0/O/1/I::

    K  7P  39XQABCDEFGHJ
    |  |   └ tag: first 65 bits of HMAC-SHA256(key, domain ‖ key id ‖ number), 13 characters
    |  └ poster number, base 32, at least 2 characters, no leading "2" (the alphabet's zero)
    └ key id: which server key signed it, so posters printed under a retired key still verify

Why 65 bits of tag is plenty: the tag only has to stop someone from inventing a valid token
offline and pasting it on a fake sticker. Every guess costs an HTTP request to a rate-limited
server; at a million guesses a day, finding one valid token takes about 10^13 years. A genuine
token copied onto a fake poster is beyond what any tag can prevent: the landing page states the
commune, procedure and place, and a leaked poster is revoked in the database.

The short code keeps 35 bits of the tag (one chance in 34 billion per guess), enough for a lookup
page behind the same rate limit, where a correct guess reveals only a public poster's place.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal
from urllib.parse import urlsplit

import qrcode
from PIL import Image
from qrcode.util import MODE_8BIT_BYTE, QRData

from core.text import Message

# Digits 2–9 and the letters without I and O: no 0/O or 1/I pair to confuse on paper or on screen,
# and nothing that needs escaping in a URL.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}

TAG_CHARS = 13  # 65 bits in the token
CODE_TAG_CHARS = 7  # 35 bits in the short code
MIN_NUMBER_CHARS = 2  # posters 0–1023 get a 10-character short code
MAX_NUMBER_CHARS = 8  # up to 32^8 − 1 ≈ 1.1 × 10^12 posters
MAX_POSTER_ID = 32**MAX_NUMBER_CHARS - 1
MIN_KEY_BYTES = 16
CODE_GROUP = 4  # "K7P3-9XQA-BC"

_TAG_DOMAIN = b"commune-kiosk/poster-token/v1\x00"
_KEY_ID_DOMAIN = b"commune-kiosk/poster-key-id/v1"

# What the "check a poster" page says when a typed code cannot be one of ours.
SHORT_CODE_HELP = Message(
    vi=(
        "Mã áp phích gồm 10 đến 16 ký tự in dưới mã QR, ví dụ K7P3-9XQA-BC. "
        "Mã không bao giờ có chữ O, chữ I, số 0 hay số 1: hãy kiểm tra lại từng ký tự."
    ),
    en=(
        "The poster code is the 10 to 16 characters printed under the QR code, e.g. "
        "K7P3-9XQA-BC. It never contains the letters O or I or the digits 0 or 1: "
        "please check each character again."
    ),
)


# --- tokens ---------------------------------------------------------------------------------


def poster_key_id(key: bytes) -> str:
    """The one-character id of a poster key, derived from the key itself.

    Used when keys are handed over as a plain list: two keys may share an id (one chance in 32),
    which costs one extra HMAC when reading, never a wrong answer.
    """
    _check_key(key)
    return ALPHABET[hmac.digest(key, _KEY_ID_DOMAIN, hashlib.sha256)[0] % 32]


def make_token(poster_id: int, key: bytes, *, key_id: str | None = None) -> str:
    """The signed token of poster `poster_id`; `key_id` defaults to `poster_key_id(key)`."""
    _check_key(key)
    if key_id is None:
        key_id = poster_key_id(key)
    if len(key_id) != 1 or key_id not in _VALUE:
        raise ValueError(f"A poster key id is one character of {ALPHABET!r}, not {key_id!r}")
    if not 0 <= poster_id <= MAX_POSTER_ID:
        raise ValueError(f"Poster id out of range 0..{MAX_POSTER_ID}: {poster_id}")
    signed = key_id + _encode(poster_id, MIN_NUMBER_CHARS)
    return signed + _tag(key, signed)


def read_token(token: str, keys: Mapping[str, bytes] | Sequence[bytes]) -> int | None:
    """The poster id a genuine token names, or None for anything malformed, forged or altered.

    `keys` is either {key id: key} or a list of keys whose ids are `poster_key_id(key)`; keep
    retired keys in it for as long as posters printed under them should work. Only the exact
    token `make_token` produced is accepted (upper case, canonical number), so every poster has
    one URL. Tags are compared in constant time.
    """
    if not isinstance(token, str):
        return None
    number_chars = len(token) - 1 - TAG_CHARS
    if not MIN_NUMBER_CHARS <= number_chars <= MAX_NUMBER_CHARS:
        return None
    signed, tag = token[: 1 + number_chars], token[1 + number_chars :]
    poster_id = _decode_number(signed[1:])
    if poster_id is None or not _is_tag_shaped(tag):
        return None
    for key in _candidate_keys(signed[0], keys):
        if hmac.compare_digest(_tag(key, signed), tag):
            return poster_id
    return None


def poster_url(base_url: str, token: str) -> str:
    """What the poster's QR code opens: `KIOSK_PUBLIC_BASE_URL` + "/q/" + token."""
    return base_url.rstrip("/") + "/q/" + token


def official_host(base_url: str) -> str:
    """The host a citizen should see in the address bar, as printed on posters ("xa.gov.vn")."""
    host = urlsplit(base_url).netloc
    if not host:
        raise ValueError(f"Not an absolute URL: {base_url!r}")
    return host.rsplit("@", 1)[-1].lower()


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"A poster key needs at least {MIN_KEY_BYTES} random bytes")


def _tag(key: bytes, signed: str) -> str:
    digest = hmac.digest(key, _TAG_DOMAIN + signed.encode("ascii"), hashlib.sha256)
    bits = TAG_CHARS * 5
    value = int.from_bytes(digest[: (bits + 7) // 8], "big") >> (-bits % 8)
    return _encode(value, TAG_CHARS)


def _candidate_keys(key_id: str, keys: Mapping[str, bytes] | Sequence[bytes]) -> list[bytes]:
    if isinstance(keys, Mapping):
        key = keys.get(key_id)
        return [] if key is None else [key]
    return [key for key in keys if poster_key_id(key) == key_id]


def _encode(value: int, min_chars: int) -> str:
    chars = []
    while value:
        value, digit = divmod(value, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars)).rjust(min_chars, ALPHABET[0])


def _decode_number(text: str) -> int | None:
    """The poster number, or None unless `text` is exactly how `_encode` writes it."""
    if len(text) > MIN_NUMBER_CHARS and text[0] == ALPHABET[0]:
        return None
    value = 0
    for char in text:
        digit = _VALUE.get(char)
        if digit is None:
            return None
        value = value * 32 + digit
    return value


def _is_tag_shaped(text: str) -> bool:
    return all(char in _VALUE for char in text)


# --- short codes ----------------------------------------------------------------------------


def short_code(token: str) -> str:
    """The code printed under the QR: the token without the last tag characters, grouped by 4."""
    number_chars = len(token) - 1 - TAG_CHARS
    if not MIN_NUMBER_CHARS <= number_chars <= MAX_NUMBER_CHARS or not _is_tag_shaped(token):
        raise ValueError(f"Not a poster token: {token!r}")
    return _group(token[: 1 + number_chars + CODE_TAG_CHARS])


def parse_short_code(text: str) -> str | None:
    """The canonical grouped short code in what a citizen typed, or None if it cannot be one.

    Forgives case, spaces, dashes and dots, full-width characters from phone keyboards, and the
    dash-like characters word processors substitute. It does not "repair" 0/O or 1/I: the
    alphabet has none of them, so a code containing one was misread (say `SHORT_CODE_HELP`).
    """
    compact = "".join(
        char
        for char in unicodedata.normalize("NFKC", text).upper()
        if not (char.isspace() or char in "-.‐‑‒–—―_·")
    )
    number_chars = len(compact) - 1 - CODE_TAG_CHARS
    if not MIN_NUMBER_CHARS <= number_chars <= MAX_NUMBER_CHARS or not _is_tag_shaped(compact):
        return None
    if _decode_number(compact[1 : 1 + number_chars]) is None:
        return None
    return _group(compact)


def read_short_code(text: str, keys: Mapping[str, bytes] | Sequence[bytes]) -> int | None:
    """The poster id a genuine short code names (typed in any form `parse_short_code` takes)."""
    code = parse_short_code(text)
    if code is None:
        return None
    compact = code.replace("-", "")
    signed, tag = compact[:-CODE_TAG_CHARS], compact[-CODE_TAG_CHARS:]
    poster_id = _decode_number(signed[1:])
    if poster_id is None:
        return None
    for key in _candidate_keys(signed[0], keys):
        if hmac.compare_digest(_tag(key, signed)[:CODE_TAG_CHARS], tag):
            return poster_id
    return None


def _group(compact: str) -> str:
    return "-".join(compact[i : i + CODE_GROUP] for i in range(0, len(compact), CODE_GROUP))


# --- QR matrices ----------------------------------------------------------------------------

ErrorLevel = Literal["L", "M", "Q", "H"]
_LEVELS: tuple[ErrorLevel, ...] = ("L", "M", "Q", "H")
_QR_ERROR = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
MAX_POSTER_VERSION = 5  # 37×37 modules: big modules, read from a phone at arm's length
QUIET_ZONE = 4  # modules of white around the symbol, as the standard requires


@dataclass(frozen=True)
class QrMatrix:
    """A QR symbol: rows of modules (True = dark), without the quiet zone."""

    version: int
    error: ErrorLevel
    modules: tuple[tuple[bool, ...], ...]

    @property
    def size(self) -> int:
        return len(self.modules)

    @cached_property
    def runs(self) -> tuple[tuple[int, int, int], ...]:
        """(row, first column, length) of every horizontal run of dark modules, row by row."""
        found = []
        for y, row in enumerate(self.modules):
            x, n = 0, len(row)
            while x < n:
                if row[x]:
                    start = x
                    while x < n and row[x]:
                        x += 1
                    found.append((y, start, x - start))
                else:
                    x += 1
        return tuple(found)


def qr_matrix(url: str, *, min_error: ErrorLevel = "M") -> QrMatrix:
    """The QR symbol for `url`: the strongest error correction (≥ `min_error`) that fits version 5.

    Stronger correction lets a scratched, sun-bleached or partly covered poster still scan. When
    even `min_error` needs more than version 5, the smallest version at `min_error` is used.
    Results are cached: a commune reprints the same posters many times.
    """
    if min_error not in _LEVELS:
        raise ValueError(f"Error correction level is one of {_LEVELS}, not {min_error!r}")
    return _qr_matrix(url, min_error)


@lru_cache(maxsize=4096)
def _qr_matrix(url: str, min_error: ErrorLevel) -> QrMatrix:
    data = url.encode("utf-8")
    acceptable = _LEVELS[_LEVELS.index(min_error) :]
    chosen: tuple[ErrorLevel, int] | None = None
    for level in reversed(acceptable):
        version = _smallest_version(data, level)
        if version <= MAX_POSTER_VERSION:
            chosen = (level, version)
            break
    if chosen is None:
        chosen = (min_error, _smallest_version(data, min_error))
    level, version = chosen
    # Byte mode throughout: every scanner reads it, and a lower-case host is bytes anyway.
    code = qrcode.QRCode(version=version, error_correction=_QR_ERROR[level], border=0)
    code.add_data(QRData(data, mode=MODE_8BIT_BYTE))
    code.make(fit=False)
    modules = tuple(tuple(bool(cell) for cell in row) for row in code.modules)
    return QrMatrix(version=version, error=level, modules=modules)


def _smallest_version(data: bytes, level: ErrorLevel) -> int:
    code = qrcode.QRCode(error_correction=_QR_ERROR[level])
    code.add_data(QRData(data, mode=MODE_8BIT_BYTE))
    try:
        return int(code.best_fit())
    except qrcode.exceptions.DataOverflowError:
        raise ValueError(f"Too long for any QR code: {len(data)} bytes") from None


# --- renderings -----------------------------------------------------------------------------


def qr_svg(matrix: QrMatrix, *, module_px: int = 8) -> str:
    """A standalone SVG: white square with a 4-module quiet zone, dark modules as ONE path.

    Coordinates are in modules (the viewBox), so the path stays short whatever the display size,
    and `crispEdges` keeps module borders sharp instead of anti-aliased grey.
    """
    side = matrix.size + 2 * QUIET_ZONE
    q = QUIET_ZONE
    path = "".join(f"M{x + q} {y + q}h{w}v1h-{w}z" for y, x, w in matrix.runs)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" '
        f'width="{side * module_px}" height="{side * module_px}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/></svg>'
    )


def qr_png(matrix: QrMatrix, *, scale: int = 8) -> bytes:
    """A 1-bit PNG, `scale` pixels per module, with a 4-module quiet zone.

    Built straight from the matrix: one byte per module, enlarged by Pillow's nearest-neighbour
    resize (C code), then packed to 1 bit; no per-pixel Python loop, no qrcode image factory.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1 pixel per module")
    side = matrix.size + 2 * QUIET_ZONE
    white_rows = b"\xff" * (side * QUIET_ZONE)
    margin = b"\xff" * QUIET_ZONE
    body = b"".join(
        margin + bytes(0 if dark else 255 for dark in row) + margin for row in matrix.modules
    )
    small = Image.frombytes("L", (side, side), white_rows + body + white_rows)
    big = small.resize((side * scale, side * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    big.convert("1", dither=Image.Dither.NONE).save(out, format="PNG", compress_level=6)
    return out.getvalue()
