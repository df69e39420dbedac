"""Signing staff in, the pure parts: throttling, device tokens, TOTP steps, sessions, passwords."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.staff_auth import (
    DEFAULT_THROTTLE,
    SessionPolicy,
    SessionState,
    ThrottlePolicy,
    buckets,
    device_token,
    device_trusted,
    enrolment_secret,
    matching_step,
    note_failure,
    password_problem,
    session_state,
    throttle_check,
    token_id,
    totp_step,
)
from storage.ratelimit import Limit

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KEY = b"k" * 32


class MemoryCounter:
    """The rate counter protocol, in memory: fixed windows like storage.ratelimit."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def _window(self, limit: Limit, now: datetime) -> int:
        return int(now.timestamp()) // limit.seconds

    def hit(self, bucket: str, limit: Limit, now: datetime) -> bool:
        key = (bucket, self._window(limit, now))
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key] <= limit.count

    def peek(self, bucket: str, limit: Limit, now: datetime) -> int:
        return self.counts.get((bucket, self._window(limit, now)), 0)


def attempt(counter: MemoryCounter, user: str, address: str, now: datetime, *, trusted=False):
    return throttle_check(
        counter, buckets(user, address), trusted_device=trusted, policy=DEFAULT_THROTTLE, now=now
    )


def fail(counter: MemoryCounter, user: str, address: str, now: datetime, times: int = 1) -> None:
    for _ in range(times):
        note_failure(counter, buckets(user, address), policy=DEFAULT_THROTTLE, now=now)


# --- throttling -----------------------------------------------------------------------------------


def test_five_failures_stop_that_address_for_that_account_only() -> None:
    counter = MemoryCounter()
    fail(counter, "an", "203.0.113.7", T0, times=4)
    assert attempt(counter, "an", "203.0.113.7", T0) is None
    fail(counter, "an", "203.0.113.7", T0)
    refused = attempt(counter, "an", "203.0.113.7", T0)
    assert refused is not None and refused.retry_after > 0
    assert "15 phút" in refused.message.vi
    # The official at the office (another address) and another account are unaffected.
    assert attempt(counter, "an", "10.0.0.5", T0) is None
    assert attempt(counter, "binh", "203.0.113.7", T0) is None


def test_a_new_window_allows_again() -> None:
    counter = MemoryCounter()
    fail(counter, "an", "203.0.113.7", T0, times=5)
    assert attempt(counter, "an", "203.0.113.7", T0) is not None
    assert attempt(counter, "an", "203.0.113.7", T0 + timedelta(minutes=16)) is None


def test_spraying_many_accounts_from_one_address_stops_the_address() -> None:
    counter = MemoryCounter()
    for i in range(30):
        fail(counter, f"user{i}", "198.51.100.9", T0)
    refused = attempt(counter, "someone.new", "198.51.100.9", T0)
    assert refused is not None
    assert attempt(counter, "someone.new", "10.0.0.5", T0) is None


def test_an_attack_from_many_addresses_cannot_lock_the_official_out() -> None:
    counter = MemoryCounter()
    # 20 failures from 20 addresses: no pair or address limit is reached, the account's is.
    for i in range(20):
        fail(counter, "an", f"203.0.113.{i}", T0)
    # The official's own browser (device token) is not slowed at all, however often it tries.
    for _ in range(5):
        assert attempt(counter, "an", "10.0.0.5", T0, trusted=True) is None
    # An unknown browser gets the slow lane: one attempt a minute, never a lock-out.
    assert attempt(counter, "an", "10.0.0.99", T0) is None
    slowed = attempt(counter, "an", "10.0.0.99", T0 + timedelta(seconds=5))
    assert slowed is not None and slowed.retry_after <= 60
    assert "một lần đăng nhập mỗi phút" in slowed.message.vi
    assert attempt(counter, "an", "10.0.0.99", T0 + timedelta(seconds=65)) is None


def test_the_slow_lane_ends_with_the_accounts_window() -> None:
    counter = MemoryCounter()
    for i in range(20):
        fail(counter, "an", f"203.0.113.{i}", T0)
    assert attempt(counter, "an", "10.0.0.99", T0) is None
    assert attempt(counter, "an", "10.0.0.99", T0) is not None
    assert attempt(counter, "an", "10.0.0.99", T0 + timedelta(hours=1, minutes=1)) is None


def test_bucket_names_never_hold_the_username_or_address() -> None:
    b = buckets("nhuanduc.hotich", "203.0.113.7")
    for name in (b.pair, b.address, b.account, b.slow):
        assert "nhuanduc" not in name and "203.0.113" not in name
    assert len({b.pair, b.address, b.account, b.slow}) == 4


def test_policy_is_a_parameter() -> None:
    counter = MemoryCounter()
    strict = ThrottlePolicy(per_pair=Limit(1, 60))
    note_failure(counter, buckets("an", "1.2.3.4"), policy=strict, now=T0)
    assert (
        throttle_check(
            counter, buckets("an", "1.2.3.4"), trusted_device=False, policy=strict, now=T0
        )
        is not None
    )


# --- device tokens --------------------------------------------------------------------------------


def test_device_token_vouches_for_its_username_only() -> None:
    token = device_token(KEY, "nhuanduc.hotich", T0)
    assert device_trusted(KEY, token, "nhuanduc.hotich", T0 + timedelta(days=10))
    assert not device_trusted(KEY, token, "nhuanduc.admin", T0)
    assert not device_trusted(b"x" * 32, token, "nhuanduc.hotich", T0)


def test_device_token_expires_and_resists_tampering() -> None:
    token = device_token(KEY, "an", T0)
    assert not device_trusted(KEY, token, "an", T0 + timedelta(days=181))
    body, mac = token.rsplit(".", 1)
    forged = device_token(KEY, "binh", T0).rsplit(".", 1)[0] + "." + mac
    assert not device_trusted(KEY, forged, "binh", T0)
    for garbage in ("", None, "abc", "a.b.c", "!!!.???", "x" * 400):
        assert not device_trusted(KEY, garbage, "an", T0)


# --- TOTP -----------------------------------------------------------------------------------------

SECRET = pyotp.random_base32()


def code_at(moment: datetime) -> str:
    return pyotp.TOTP(SECRET).at(moment)


def test_codes_of_the_current_and_neighbouring_steps_are_accepted() -> None:
    step = totp_step(T0)
    assert matching_step(SECRET, code_at(T0), T0, None) == step
    assert matching_step(SECRET, code_at(T0 - timedelta(seconds=30)), T0, None) == step - 1
    assert matching_step(SECRET, code_at(T0 + timedelta(seconds=30)), T0, None) == step + 1
    assert matching_step(SECRET, code_at(T0 - timedelta(seconds=90)), T0, None) is None


def test_a_code_is_single_use() -> None:
    step = matching_step(SECRET, code_at(T0), T0, None)
    assert step is not None
    assert matching_step(SECRET, code_at(T0), T0, step) is None  # replay, same moment
    later = T0 + timedelta(seconds=10)
    assert matching_step(SECRET, code_at(T0), later, step) is None  # replay a bit later
    # An older step than the last one used is refused too, even inside the drift window.
    assert matching_step(SECRET, code_at(T0 - timedelta(seconds=30)), T0, step) is None


def test_code_typing_is_forgiving_but_strict_on_digits() -> None:
    code = code_at(T0)
    assert matching_step(SECRET, f"{code[:3]} {code[3:]}", T0, None) == totp_step(T0)
    assert matching_step(SECRET, code[:5], T0, None) is None
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert matching_step(SECRET, wrong, T0, None) is None


@given(
    seconds=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
    offset=st.integers(min_value=-5, max_value=5),
    last=st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
)
def test_accepted_steps_are_near_and_newer(seconds: int, offset: int, last: int | None) -> None:
    now = datetime.fromtimestamp(seconds, UTC)
    current = totp_step(now)
    code = pyotp.TOTP(SECRET).at((current + offset) * 30)
    last_step = None if last is None else current + last
    step = matching_step(SECRET, code, now, last_step)
    if step is not None:
        assert current - 1 <= step <= current + 1
        assert last_step is None or step > last_step
    if abs(offset) <= 1 and (last_step is None or current + offset > last_step):
        assert step is not None  # (a collision with a neighbour's code may pick that step)


def test_enrolment_secret_is_per_session_and_usable() -> None:
    a = enrolment_secret(KEY, 7, "session-a")
    assert a == enrolment_secret(KEY, 7, "session-a")
    assert a != enrolment_secret(KEY, 7, "session-b")
    assert a != enrolment_secret(KEY, 8, "session-a")
    assert pyotp.TOTP(a).verify(pyotp.TOTP(a).at(T0), for_time=T0)


# --- sessions -------------------------------------------------------------------------------------

POLICY = SessionPolicy()


def state(**changes: object) -> SessionState:
    values: dict[str, object] = {
        "created_at": T0,
        "last_seen_at": T0,
        "revoked": False,
        "user_active": True,
        "password_changed_at": T0 - timedelta(days=3),
        "now": T0 + timedelta(minutes=5),
        "policy": POLICY,
    }
    values.update(changes)
    return session_state(**values)  # type: ignore[arg-type]


def test_session_timeouts() -> None:
    assert state() == SessionState.ACTIVE
    assert state(now=T0 + timedelta(minutes=29, seconds=59)) == SessionState.ACTIVE
    assert state(now=T0 + timedelta(minutes=30)) == SessionState.IDLE
    busy = T0 + timedelta(hours=9, minutes=59)
    assert state(last_seen_at=busy, now=busy + timedelta(seconds=30)) == SessionState.ACTIVE
    ten = T0 + timedelta(hours=10)
    assert state(last_seen_at=ten, now=ten) == SessionState.EXPIRED


def test_sessions_end_on_logout_disable_and_password_change() -> None:
    assert state(revoked=True) == SessionState.ENDED
    assert state(user_active=False) == SessionState.ENDED
    assert state(password_changed_at=T0 + timedelta(minutes=1)) == SessionState.ENDED
    # The session opened by the password change itself stays valid.
    assert state(password_changed_at=T0) == SessionState.ACTIVE


def test_naive_times_from_sqlite_are_utc() -> None:
    naive = T0.replace(tzinfo=None)
    assert state(created_at=naive, last_seen_at=naive) == SessionState.ACTIVE


def test_policy_from_settings() -> None:
    policy = SessionPolicy.from_settings({"STAFF_IDLE_MINUTES": "15", "STAFF_ABSOLUTE_HOURS": 8})
    assert policy.idle == timedelta(minutes=15) and policy.absolute == timedelta(hours=8)


def test_the_table_holds_only_the_tokens_hash() -> None:
    assert token_id("abc") == hashlib.sha256(b"abc").hexdigest()


# --- passwords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "bad"),
    [
        ("ngắn quá", True),
        ("1234567890", True),
        ("aaaaaaaaaaaa", True),
        ("abababababab", True),
        ("nhuanduc.an-2026!", True),  # contains the username
        ("x" * 129, True),
        ("lúa chín vàng cả đồng", False),
        ("Ca dao 1975 bến nước", False),
    ],
)
def test_password_rules(password: str, bad: bool) -> None:
    problem = password_problem(password, username="nhuanduc.an")
    assert (problem is not None) is bad
    if problem is not None:
        assert problem.vi and problem.en


def test_password_length_counts_characters_after_nfc() -> None:
    decomposed = "lu\u0301a chi\u0301n"  # 'lúa chín' with combining accents: 8 after NFC
    assert password_problem(decomposed + "x", username="an") is not None
    assert password_problem(decomposed + "xy", username="an") is None
