"""The citizen's form token (kiosk/form_token.py): bound to its draft, its install and its time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiosk import form_token

KEY = b"k" * 32
DRAFT = "AbCdEfGhIjKlMnOpQrStUvWx"
NOW = 1_796_000_000.0
DAY = 6 * 3600


def _valid(
    token: str, *, draft: str = DRAFT, now: float = NOW, key: bytes = KEY, site: str | None = None
) -> bool:
    return form_token.valid(key, draft, token, now, max_age=DAY, fetch_site=site)


def test_a_token_holds_for_its_draft_within_its_time() -> None:
    token = form_token.issue(KEY, DRAFT, NOW)
    assert _valid(token)
    assert _valid(token, now=NOW + DAY)  # the last second of its life
    assert _valid(token, now=NOW - form_token.SKEW)  # another host whose clock is behind
    assert _valid(token, site="same-origin") and _valid(token, site="none")


def test_a_token_is_refused_for_another_draft_key_time_or_site() -> None:
    token = form_token.issue(KEY, DRAFT, NOW)
    assert not _valid(token, draft=DRAFT[:-1] + "y")
    assert not _valid(token, key=b"j" * 32)
    assert not _valid(token, now=NOW + DAY + 1)  # the page was open too long
    assert not _valid(token, now=NOW - form_token.SKEW - 1)  # issued in the future
    assert not _valid(token, site="cross-site")  # posted from another site


def test_a_changed_time_or_mac_is_refused() -> None:
    token = form_token.issue(KEY, DRAFT, NOW)
    stamp, mac = token.split(".")
    later = f"{int(stamp, 16) + 60:x}"
    assert not _valid(f"{later}.{mac}", now=NOW + 60)  # a token kept alive by a new time
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    assert not _valid(f"{stamp}.{flipped}")
    malformed = [
        "", ".", stamp, f"{stamp}.", f".{mac}", f"0x{stamp}.{mac}", f" {stamp}.{mac}",
        f"{stamp.upper()}.{mac}", f"+{stamp}.{mac}", f"{stamp}.{mac}=", "a" * 13 + "." + mac,
    ]  # fmt: skip
    for bad in malformed:
        assert not _valid(bad), bad


@given(st.text(max_size=80))
def test_any_posted_text_is_refused_without_an_error(text: str) -> None:
    assert not _valid(text)
