"""The citizen's form token: proof that a submission comes from a form this install served.

The citizen signs in to nothing, so a forged cross-site submission can borrow no authority of
theirs; what the token guards is that a dossier is sent from our own form, recently served, and
not replayed long after. Flask-WTF's token does that through the session cookie, which every
submission then has to open and check (itsdangerous, twice): a tenth of the submission's work
(bench/profile_submit.py). This token needs no cookie. It binds the form's draft (the random id
the page carries, which also keys the citizen's uploaded papers) and the time the form was
served, under an HMAC with the install's secret key:

    token = hex(issued, Unix seconds) "." base64url(HMAC-SHA256(key, "citizen-form|" draft "|"
            hex(issued))[:18])

It is valid for `max_age` seconds (the install's WTF_CSRF_TIME_LIMIT, as for staff forms), and
up to `SKEW` seconds ahead, for a province's several hosts whose clocks differ a little. A form
posted from another site is refused as well when the browser says so (`Sec-Fetch-Site:
cross-site`, sent by every current browser). A refused token never loses the citizen's work: the
view shows the form again, with everything typed and a fresh token.
"""

from __future__ import annotations

import base64
import hmac
import re

SKEW = 300
_STAMP = re.compile(r"[0-9a-f]{1,12}")
_MAC_CHARS = 24  # 18 bytes of the HMAC, base64url


def issue(secret: bytes, draft: str, now: float) -> str:
    """A token for the form of `draft` served at `now` (Unix seconds)."""
    stamp = f"{int(now):x}"
    return f"{stamp}.{_mac(secret, draft, stamp)}"


def valid(
    secret: bytes, draft: str, token: str, now: float, *, max_age: int, fetch_site: str | None
) -> bool:
    """Whether `token` was issued for `draft` by this install within `max_age` seconds and
    the browser did not say the form was posted from another site (`fetch_site`, the
    Sec-Fetch-Site header)."""
    if fetch_site == "cross-site":
        return False
    stamp, _, mac = token.partition(".")
    if not _STAMP.fullmatch(stamp) or len(mac) != _MAC_CHARS:
        return False
    age = now - int(stamp, 16)
    if not -SKEW <= age <= max_age:
        return False
    return hmac.compare_digest(mac, _mac(secret, draft, stamp))


def _mac(secret: bytes, draft: str, stamp: str) -> str:
    message = f"citizen-form|{draft}|{stamp}".encode()
    return base64.urlsafe_b64encode(hmac.digest(secret, message, "sha256")[:18]).decode()
