"""Signing staff in (đăng nhập cán bộ): passwords, the second factor, sessions, and who sees what.

A commune official's account opens citizens' personal data and signs decisions in the commune's
name, so signing in is guarded in depth:

- **Password** (Argon2id, `core.accounts`), compared in the same time whether or not the account
  exists. A new or reset account carries a one-time password that must be changed at first
  sign-in (`must_change_password`).
- **Second factor**: a TOTP code (RFC 6238, 30-second steps, an authenticator app). A code is
  single-use: the last accepted step is stored (`totp_last_step`) and a conditional UPDATE accepts
  a step only if it is newer, so a code seen over a shoulder, or submitted twice at once to two
  workers, opens at most one session. Enrolment needs no pending secret in the database: the
  secret offered is derived from the server key and the session, and is stored (sealed) only once
  the official proves with a code that the app has it.
- **Throttling** in counters shared by every worker (`storage.ratelimit`). The aim is to slow a
  guesser without letting a stranger lock a real official out from elsewhere, so failures are
  counted three ways:

  1. per (account, address): 5 failures in 15 minutes stop that address for that account only;
  2. per address, all accounts: 30 failures in 15 minutes stop the address (password spraying);
  3. per account, all addresses: past 20 failures in an hour the account goes into a *slow lane*
     for browsers it does not know: one attempt per minute, for everyone, captcha-free. A browser
     where the official completed a sign-in before carries a *device token* (HMAC-signed, 180
     days, bound to the username, OWASP's "device cookie") and skips the slow lane, so the
     official at their own desk keeps working while someone hammers the account from outside.

  Nothing is ever locked for good, and a throttled attempt is refused before the password is
  checked, so it tells the guesser nothing.
- **Sessions kept on the server** (`StaffSession`): the cookie holds a random token, the table its
  SHA-256, so a copied database opens no session. A session ends on logout, after 30 minutes
  idle, 10 hours after sign-in, and when the account is disabled or its password changes.

Access (`StaffIdentity`): an admin manages the commune (users, posters, procedures, reports), an
official processes the procedures assigned to them, a leader sees every dossier of the commune and
its reports, a province admin reads reports and the audit log of every commune. Anything outside
one's commune or procedures is answered as if it did not exist (`OutOfScope` → 404).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import pyotp
import qrcode
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.accounts import (
    DUMMY_HASH,
    USERNAME_RE,
    Role,
    create_user,
    hash_password,
    new_password,
    password_needs_rehash,
    verify_password,
)
from core.audit_log import record
from core.sealing import Keyring, SealError, seal, unseal
from core.text import Message
from storage.models import Commune, StaffProcedure, StaffSession, StaffUser
from storage.ratelimit import Counter, Limit, bucket_name


class OutOfScope(Exception):
    """What was asked for is not this person's to see (or does not exist): answered with 404."""

    def __init__(self, target: str, reason: str = "out_of_scope") -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


class Sessions(Protocol):
    """What `sign_in` needs of storage.database.Database: its two kinds of transaction."""

    def reading(self) -> AbstractContextManager[Session]: ...

    def writing(self) -> AbstractContextManager[Session]: ...


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc(now: datetime) -> datetime:
    """Times are stored in UTC: SQLite keeps no offset, so a local time would read back wrong."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


# --- who is signed in ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffIdentity:
    """The signed-in person and what they may reach; built from the database on every request."""

    user_id: int
    username: str
    display_name: str
    role: Role
    commune_id: int | None
    # The procedures an official handles; None means every procedure of the commune.
    procedures: frozenset[str] | None
    session_id: str = ""
    second_factor_done: bool = True
    must_change_password: bool = False
    totp_enrolled: bool = False

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        return f"user:{self.user_id} {self.username}"[:80]

    @property
    def sees_dossiers(self) -> bool:
        """Officials and leaders open dossiers; an admin manages the office, not the files."""
        return self.role in (Role.OFFICIAL, Role.LEADER)

    @property
    def decides(self) -> bool:
        return self.role == Role.OFFICIAL

    def covers(self, commune_id: int, procedure_code: str) -> bool:
        """Is a dossier of this commune and procedure within reach?"""
        if not self.sees_dossiers or commune_id != self.commune_id:
            return False
        return self.procedures is None or procedure_code in self.procedures

    def ready(self) -> bool:
        """Signed in completely: second factor done and no password change pending."""
        return self.second_factor_done and not self.must_change_password


def identity_of(
    session: Session, user: StaffUser, row: StaffSession | None = None
) -> StaffIdentity:
    role = Role(user.role)
    procedures: frozenset[str] | None = None
    if role == Role.OFFICIAL:
        procedures = frozenset(
            session.scalars(select(StaffProcedure.code).where(StaffProcedure.user_id == user.id))
        )
    return StaffIdentity(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name or user.username,
        role=role,
        commune_id=user.commune_id,
        procedures=procedures,
        session_id=row.id if row is not None else "",
        second_factor_done=row.second_factor_done if row is not None else True,
        must_change_password=user.must_change_password,
        totp_enrolled=user.totp_secret_sealed is not None,
    )


# --- throttling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    per_pair: Limit = Limit(5, 15 * 60)
    per_address: Limit = Limit(30, 15 * 60)
    per_account: Limit = Limit(20, 60 * 60)
    slow_lane: Limit = Limit(1, 60)
    device_days: int = 180


DEFAULT_THROTTLE = ThrottlePolicy()


@dataclass(frozen=True)
class Buckets:
    pair: str
    address: str
    account: str
    slow: str


def buckets(username: str, address: str) -> Buckets:
    """The counters one attempt touches; names are hashed (no username or address in clear)."""
    return Buckets(
        pair=bucket_name("login:pair", f"{username}|{address}"),
        address=bucket_name("login:ip", address),
        account=bucket_name("login:user", username),
        slow=bucket_name("login:slow", username),
    )


@dataclass(frozen=True)
class Throttled:
    message: Message
    retry_after: int  # seconds, for the Retry-After header


def _window_left(limit: Limit, now: datetime) -> int:
    return limit.seconds - int(now.timestamp()) % limit.seconds


def throttle_check(
    counter: Counter,
    b: Buckets,
    *,
    trusted_device: bool,
    policy: ThrottlePolicy,
    now: datetime,
) -> Throttled | None:
    """Whether this attempt may go ahead (None) or must wait. Checked before the password, so a
    refused attempt reveals nothing about it."""
    if counter.peek(b.pair, policy.per_pair, now) >= policy.per_pair.count:
        return Throttled(_TOO_MANY_HERE, _window_left(policy.per_pair, now))
    if counter.peek(b.address, policy.per_address, now) >= policy.per_address.count:
        return Throttled(_TOO_MANY_HERE, _window_left(policy.per_address, now))
    if not trusted_device and (
        counter.peek(b.account, policy.per_account, now) >= policy.per_account.count
    ):
        # The slow lane: one attempt a minute for the account from browsers it does not know.
        if not counter.hit(b.slow, policy.slow_lane, now):
            return Throttled(_SLOW_LANE, _window_left(policy.slow_lane, now))
    return None


def note_failure(counter: Counter, b: Buckets, *, policy: ThrottlePolicy, now: datetime) -> None:
    counter.hit(b.pair, policy.per_pair, now)
    counter.hit(b.address, policy.per_address, now)
    counter.hit(b.account, policy.per_account, now)


_TOO_MANY_HERE = Message(
    "Đăng nhập sai quá nhiều lần từ máy này. Xin đợi 15 phút rồi thử lại, hoặc nhờ quản trị "
    "viên của xã đặt lại mật khẩu.",
    "Too many failed sign-ins from this computer. Wait 15 minutes and try again, or ask the "
    "commune's administrator to reset your password.",
)
_SLOW_LANE = Message(
    "Tài khoản này đang bị thử mật khẩu nhiều lần từ nơi khác, nên tạm thời chỉ nhận một lần "
    "đăng nhập mỗi phút từ máy lạ. Xin đợi một phút rồi thử lại; máy bạn đã đăng nhập trước đây "
    "không bị ảnh hưởng. Hãy báo quản trị viên của xã.",
    "Someone elsewhere is trying many passwords on this account, so for now it accepts one "
    "sign-in a minute from unknown computers. Wait a minute and try again; computers you signed "
    "in from before are not affected. Please tell the commune's administrator.",
)


# --- device tokens ------------------------------------------------------------------------------


def device_token(secret_key: bytes, username: str, now: datetime) -> str:
    """A token for a browser where `username` completed a sign-in (kept in a cookie)."""
    body = f"{username}|{int(now.timestamp())}"
    mac = hmac.new(secret_key, f"staff-device|{body}".encode(), "sha256").digest()[:18]
    return (
        base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
        + "."
        + base64.urlsafe_b64encode(mac).decode()
    )


def device_trusted(
    secret_key: bytes, token: str | None, username: str, now: datetime, *, max_days: int = 180
) -> bool:
    """Does `token` vouch for this browser signing in as `username`?"""
    if not token or "." not in token or len(token) > 300:
        return False
    body_b64, mac_b64 = token.rsplit(".", 1)
    try:
        body = base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4)).decode()
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    except (ValueError, UnicodeDecodeError):
        return False
    expected = hmac.new(secret_key, f"staff-device|{body}".encode(), "sha256").digest()[:18]
    if not hmac.compare_digest(mac, expected):
        return False
    name, _, issued = body.rpartition("|")
    if name != username or not issued.isdigit():
        return False
    age = now.timestamp() - int(issued)
    return 0 <= age <= max_days * 86400


# --- passwords ----------------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
# The most common choices (and Vietnamese favourites) are refused outright.
_COMMON = frozenset(
    {
        "1234567890",
        "0123456789",
        "12345678910",
        "123456789a",
        "1234567890a",
        "qwertyuiop",
        "password123",
        "matkhau123",
        "matkhau1234",
        "abc1234567",
        "aaaaaaaaaa",
        "1111111111",
        "0000000000",
        "iloveyou123",
        "anhyeuem123",
        "admin12345",
        "administrator",
    }
)


def normalise_password(password: str) -> str:
    # NFC, so "ề" typed on a Telex keyboard and on a phone compare the same (NIST SP 800-63B).
    return unicodedata.normalize("NFC", password)


def password_problem(new: str, *, username: str) -> Message | None:
    """Why a new password is not acceptable, or None (length over composition rules, as NIST
    SP 800-63B advises)."""
    new = normalise_password(new)
    if len(new) < MIN_PASSWORD_LENGTH:
        return Message(
            f"Mật khẩu cần ít nhất {MIN_PASSWORD_LENGTH} ký tự. Một câu ngắn dễ nhớ là lựa chọn "
            "tốt, ví dụ “lua chin vang ca dong”.",
            f"The password needs at least {MIN_PASSWORD_LENGTH} characters. A short sentence you "
            "remember is a good choice.",
        )
    if len(new) > MAX_PASSWORD_LENGTH:
        return Message(
            f"Mật khẩu dài tối đa {MAX_PASSWORD_LENGTH} ký tự.",
            f"The password can be at most {MAX_PASSWORD_LENGTH} characters.",
        )
    lowered = new.lower()
    if lowered in _COMMON or len(set(lowered)) <= 2 or username.lower() in lowered:
        return Message(
            "Mật khẩu này quá dễ đoán (quá phổ biến, lặp một ký tự hoặc chứa tên đăng nhập). "
            "Xin chọn mật khẩu khác.",
            "This password is too easy to guess (too common, one repeated character, or it "
            "contains the username). Please choose another.",
        )
    return None


# --- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=10)
    # last_seen_at is written at most this often, not on every request.
    touch_every: timedelta = timedelta(seconds=60)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> SessionPolicy:
        idle = settings.get("STAFF_IDLE_MINUTES", 30)
        absolute = settings.get("STAFF_ABSOLUTE_HOURS", 10)
        return cls(
            idle=timedelta(minutes=int(str(idle))), absolute=timedelta(hours=int(str(absolute)))
        )


class SessionState(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"  # no request for longer than the idle timeout
    EXPIRED = "expired"  # signed in longer ago than the absolute timeout
    ENDED = "ended"  # logged out, account disabled, or password changed since


def session_state(
    *,
    created_at: datetime,
    last_seen_at: datetime,
    revoked: bool,
    user_active: bool,
    password_changed_at: datetime,
    now: datetime,
    policy: SessionPolicy,
) -> SessionState:
    """Where a session stands at `now` (pure)."""
    created, seen = _aware(created_at), _aware(last_seen_at)
    if revoked or not user_active or _aware(password_changed_at) > created:
        return SessionState.ENDED
    if now - created >= policy.absolute:
        return SessionState.EXPIRED
    if now - seen >= policy.idle:
        return SessionState.IDLE
    return SessionState.ACTIVE


def token_id(token: str) -> str:
    """The table's key for a cookie token: its SHA-256, so the table alone opens nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, user: StaffUser, *, second_factor_done: bool, now: datetime
) -> str:
    """A new session for `user`; returns the cookie token (its hash is the row's id)."""
    now = _utc(now)
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            id=token_id(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            revoked=False,
            second_factor_done=second_factor_done,
        )
    )
    # Sessions that can no longer be used are of no further interest: drop this user's old ones.
    session.execute(
        delete(StaffSession)
        .where(
            StaffSession.user_id == user.id,
            StaffSession.created_at < now - timedelta(days=2),
        )
        # Decided in SQL only: rows loaded from SQLite are naive, `now` is not.
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Resumed:
    state: SessionState
    identity: StaffIdentity | None
    needs_touch: bool


def resume_session(
    session: Session, token: str | None, *, now: datetime, policy: SessionPolicy
) -> Resumed:
    """The identity behind a cookie token, if its session is still active."""
    if not token or len(token) > 100:
        return Resumed(SessionState.ENDED, None, False)
    row = session.get(StaffSession, token_id(token))
    if row is None:
        return Resumed(SessionState.ENDED, None, False)
    user = session.get(StaffUser, row.user_id)
    if user is None:
        return Resumed(SessionState.ENDED, None, False)
    state = session_state(
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        revoked=row.revoked,
        user_active=user.active,
        password_changed_at=user.password_changed_at,
        now=now,
        policy=policy,
    )
    if state != SessionState.ACTIVE:
        return Resumed(state, None, False)
    needs_touch = now - _aware(row.last_seen_at) >= policy.touch_every
    return Resumed(state, identity_of(session, user, row), needs_touch)


def touch_session(session: Session, session_id: str, now: datetime) -> None:
    now = _utc(now)
    session.execute(
        update(StaffSession)
        .where(StaffSession.id == session_id, StaffSession.revoked.is_(False))
        .values(last_seen_at=now)
    )


def end_session(session: Session, token: str | None, *, now: datetime) -> StaffIdentity | None:
    """Log out: the session can never be used again. Returns who it was, for the audit."""
    if not token:
        return None
    row = session.get(StaffSession, token_id(token))
    if row is None or row.revoked:
        return None
    row.revoked = True
    user = session.get(StaffUser, row.user_id)
    session.flush()
    if user is None:
        return None
    record(
        session,
        actor=f"user:{user.id} {user.username}"[:80],
        action="auth.logout",
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        now=now,
    )
    return identity_of(session, user, row)


def end_user_sessions(session: Session, user_id: int, *, keep: str | None = None) -> int:
    """End every session of a user (but `keep`, a session id); returns how many were open."""
    stmt = update(StaffSession).where(
        StaffSession.user_id == user_id, StaffSession.revoked.is_(False)
    )
    if keep is not None:
        stmt = stmt.where(StaffSession.id != keep)
    result = session.execute(stmt.values(revoked=True))
    return int(getattr(result, "rowcount", 0) or 0)


# --- signing in ---------------------------------------------------------------------------------


class SignInOutcome(StrEnum):
    SIGNED_IN = "signed_in"  # password right, no second factor to ask
    NEEDS_CODE = "needs_code"  # password right, a TOTP code comes next
    REFUSED = "refused"  # wrong username or password (never says which)
    DISABLED = "disabled"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class SignIn:
    outcome: SignInOutcome
    token: str | None = None
    message: Message | None = None
    retry_after: int = 0
    must_change_password: bool = False


_WRONG = Message(
    "Tên đăng nhập hoặc mật khẩu không đúng. Xin kiểm tra lại (chú ý chữ hoa, chữ thường và bộ "
    "gõ tiếng Việt).",
    "The username or password is not right. Check them again (mind capital letters and the "
    "Vietnamese keyboard).",
)
_DISABLED = Message(
    "Tài khoản này đã bị khóa. Xin liên hệ quản trị viên của xã.",
    "This account is disabled. Please contact the commune's administrator.",
)


def normalise_username(username: str) -> str:
    return username.strip().lower()[:64]


def sign_in(
    db: Sessions,
    *,
    username: str,
    password: str,
    address: str,
    device: str | None,
    counter: Counter,
    secret_key: bytes,
    require_totp: bool,
    now: datetime,
    policy: ThrottlePolicy = DEFAULT_THROTTLE,
) -> SignIn:
    """Check a username and password and, if right, open a session (complete, or waiting for the
    second factor). Owns its transactions: the Argon2 check (tens of milliseconds, 64 MiB) runs
    outside any write transaction, so it never holds SQLite's write lock."""
    username = normalise_username(username)
    password = normalise_password(password)
    b = buckets(username, address)
    trusted = device_trusted(secret_key, device, username, now, max_days=policy.device_days)
    throttled = throttle_check(counter, b, trusted_device=trusted, policy=policy, now=now)
    if throttled is not None:
        return SignIn(
            SignInOutcome.THROTTLED,
            message=throttled.message,
            retry_after=throttled.retry_after,
        )
    with db.reading() as s:
        found = s.execute(
            select(StaffUser.id, StaffUser.password_hash).where(StaffUser.username == username)
        ).first()
    stored_hash = str(found.password_hash) if found is not None else DUMMY_HASH
    good = verify_password(stored_hash, password)  # always run: same time for unknown names
    if found is None or not good:
        note_failure(counter, b, policy=policy, now=now)
        with db.writing() as s:
            record(
                s,
                actor="anonymous",
                action="auth.login_failed",
                target=f"user:{found.id}" if found is not None else "user:unknown",
                commune_id=None,
                detail={"username": username, "trusted_device": trusted},
                now=now,
            )
        return SignIn(SignInOutcome.REFUSED, message=_WRONG)
    with db.writing() as s:
        user = s.get(StaffUser, found.id)
        if user is None or user.password_hash != stored_hash:
            # Changed between the two transactions: treat as a wrong password, try again.
            return SignIn(SignInOutcome.REFUSED, message=_WRONG)
        if not user.active:
            record(
                s,
                actor=f"user:{user.id} {user.username}"[:80],
                action="auth.login_disabled",
                target=f"user:{user.id}",
                commune_id=user.commune_id,
                now=now,
            )
            return SignIn(SignInOutcome.DISABLED, message=_DISABLED)
        if password_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        needs_code = user.totp_secret_sealed is not None
        # Where the install requires a second factor and none is enrolled yet, the session is
        # opened "incomplete" and the only page it reaches is the enrolment.
        done = not needs_code and not require_totp
        token = start_session(s, user, second_factor_done=done, now=now)
        record(
            s,
            actor=f"user:{user.id} {user.username}"[:80],
            action="auth.login" if done else "auth.password_ok",
            target=f"user:{user.id}",
            commune_id=user.commune_id,
            detail={"trusted_device": trusted, "second_factor": needs_code},
            now=now,
        )
        return SignIn(
            SignInOutcome.NEEDS_CODE if needs_code else SignInOutcome.SIGNED_IN,
            token=token,
            must_change_password=user.must_change_password,
        )


# --- the second factor --------------------------------------------------------------------------

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
MAX_CODE_ATTEMPTS = 5  # per session: then the password is asked again


def totp_step(now: datetime) -> int:
    return int(now.timestamp()) // TOTP_STEP_SECONDS


def normalise_code(code: str) -> str:
    return "".join(c for c in code if c.isdigit())[:TOTP_DIGITS]


def matching_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The TOTP step `code` belongs to (now, or one step either side for clock drift), if that
    step is newer than the last one accepted; None otherwise (pure)."""
    code = normalise_code(code)
    if len(code) != TOTP_DIGITS:
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = totp_step(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def claim_step(session: Session, user_id: int, step: int) -> bool:
    """Mark `step` used, atomically: False if this or a later step was already used (a replay,
    or the same code sent twice at once)."""
    result = session.execute(
        update(StaffUser)
        .where(
            StaffUser.id == user_id,
            (StaffUser.totp_last_step.is_(None)) | (StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def totp_context(user_id: int) -> bytes:
    return f"totp:{user_id}".encode()


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    message: Message | None = None
    token: str | None = None  # a fresh session token (the session id changes once complete)
    restart: bool = False  # too many wrong codes: back to the password


_BAD_CODE = Message(
    "Mã xác thực không đúng hoặc đã dùng rồi. Mở ứng dụng xác thực và nhập mã 6 chữ số đang "
    "hiển thị (mỗi mã chỉ dùng được một lần).",
    "The code is wrong or was already used. Open the authenticator app and type the 6-digit "
    "code it shows now (each code works once).",
)
_RESTART = Message(
    "Nhập sai mã quá nhiều lần. Xin đăng nhập lại từ đầu.",
    "Too many wrong codes. Please sign in again from the start.",
)


def check_second_factor(
    db: Sessions,
    identity: StaffIdentity,
    code: str,
    *,
    keyring: Keyring,
    counter: Counter,
    address: str,
    now: datetime,
    policy: ThrottlePolicy = DEFAULT_THROTTLE,
) -> CodeCheck:
    """Complete a sign-in with a TOTP code. On success the half-open session is replaced by a new
    one (a new token), so a token seen before the second factor is worth nothing after it.

    Owns its transactions: the rate counters write in transactions of their own, which on SQLite
    must never be opened while this thread holds the write lock."""
    attempts = bucket_name("login:code", identity.session_id)
    too_many = not counter.hit(attempts, Limit(MAX_CODE_ATTEMPTS, 3600), now)
    with db.writing() as session:
        user = session.get(StaffUser, identity.user_id)
        row = session.get(StaffSession, identity.session_id)
        if user is None or row is None or row.revoked or user.totp_secret_sealed is None:
            return CodeCheck(False, _RESTART, restart=True)
        if too_many:
            row.revoked = True
            return CodeCheck(False, _RESTART, restart=True)
        try:
            secret = unseal(
                user.totp_secret_sealed, keyring, context=totp_context(user.id)
            ).decode()
        except SealError:
            return CodeCheck(False, _RESTART, restart=True)
        step = matching_step(secret, code, now, user.totp_last_step)
        accepted = step is not None and claim_step(session, user.id, step)
        username = user.username
        if accepted:
            row.revoked = True
            token = start_session(session, user, second_factor_done=True, now=now)
        record(
            session,
            actor=identity.actor,
            action="auth.login" if accepted else "auth.code_failed",
            target=f"user:{user.id}",
            commune_id=user.commune_id,
            detail={"second_factor": True},
            now=now,
        )
    if not accepted:
        note_failure(counter, buckets(username, address), policy=policy, now=now)
        return CodeCheck(False, _BAD_CODE)
    return CodeCheck(True, token=token)


def enrolment_secret(secret_key: bytes, user_id: int, session_id: str) -> str:
    """The TOTP secret offered to a user enrolling in this session: derived, so nothing pending
    is stored; a new session offers a new one."""
    mac = hmac.new(secret_key, f"totp-enrol|{user_id}|{session_id}".encode(), "sha256").digest()
    return base64.b32encode(mac[:20]).decode()


def enrolment_uri(secret: str, *, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg_of(text: str, *, module_px: int = 5) -> str:
    """A QR code as inline SVG (for the authenticator app to scan), computed fresh each time:
    the secret in it is never kept in a cache."""
    code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()  # includes the quiet zone
    side = len(matrix)
    path = []
    for y, row in enumerate(matrix):
        x = 0
        while x < side:
            if row[x]:
                start = x
                while x < side and row[x]:
                    x += 1
                path.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" '
        f'width="{side * module_px}" height="{side * module_px}" shape-rendering="crispEdges" '
        f'role="img" aria-label="QR"><rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(path)}"/></svg>'
    )


def enrol_second_factor(
    session: Session,
    identity: StaffIdentity,
    code: str,
    *,
    secret_key: bytes,
    keyring: Keyring,
    now: datetime,
) -> CodeCheck:
    """Store the offered secret once the user proves, with a code, that their app holds it."""
    user = session.get(StaffUser, identity.user_id)
    if user is None:
        return CodeCheck(False, _RESTART, restart=True)
    secret = enrolment_secret(secret_key, user.id, identity.session_id)
    step = matching_step(secret, code, now, None)
    if step is None:
        return CodeCheck(False, _BAD_CODE)
    user.totp_secret_sealed = seal(secret.encode(), keyring, context=totp_context(user.id))
    user.totp_last_step = step
    # Other sessions were opened without this factor: they end; this one continues, renewed.
    return CodeCheck(True, token=_renew_alone(session, identity, user, "user.totp_enrolled", now))


# --- changing one's password --------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordChange:
    ok: bool
    errors: dict[str, Message] = field(default_factory=dict)
    token: str | None = None


def change_password(
    session: Session,
    identity: StaffIdentity,
    *,
    current: str,
    new: str,
    repeat: str,
    now: datetime,
) -> PasswordChange:
    """Change one's own password: every other session ends, this one is renewed."""
    now = _utc(now)
    user = session.get(StaffUser, identity.user_id)
    if user is None:
        return PasswordChange(False, {"current": _WRONG})
    errors: dict[str, Message] = {}
    if not verify_password(user.password_hash, normalise_password(current)):
        errors["current"] = Message(
            "Mật khẩu hiện tại không đúng.", "The current password is not right."
        )
    problem = password_problem(new, username=user.username)
    if problem is not None:
        errors["new"] = problem
    elif normalise_password(new) == normalise_password(current):
        errors["new"] = Message(
            "Mật khẩu mới phải khác mật khẩu hiện tại.",
            "The new password must differ from the current one.",
        )
    if normalise_password(new) != normalise_password(repeat) and "new" not in errors:
        errors["repeat"] = Message(
            "Hai lần nhập mật khẩu mới không giống nhau.",
            "The two new passwords do not match.",
        )
    if errors:
        return PasswordChange(False, errors)
    user.password_hash = hash_password(normalise_password(new))
    user.password_changed_at = now
    user.must_change_password = False
    return PasswordChange(
        True, token=_renew_alone(session, identity, user, "user.password_changed", now)
    )


def _renew_alone(
    session: Session, identity: StaffIdentity, user: StaffUser, action: str, now: datetime
) -> str:
    """After a change to one's own credentials: every session of the account ends, the one that
    made the change continues under a new token; audited as `action`. Returns the token."""
    end_user_sessions(session, user.id)
    token = start_session(session, user, second_factor_done=True, now=now)
    record(
        session,
        actor=identity.actor,
        action=action,
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        now=now,
    )
    return token


# --- the commune admin's accounts page ------------------------------------------------------------


class AccountFormError(Exception):
    """Input that cannot be saved; `errors` are per field, ready to show beside each."""

    def __init__(self, errors: dict[str, Message]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


MANAGED_ROLES = (Role.OFFICIAL, Role.LEADER, Role.ADMIN)


@dataclass(frozen=True)
class AccountRow:
    user_id: int
    username: str
    display_name: str
    role: Role
    active: bool
    procedures: tuple[str, ...]
    totp_enrolled: bool
    must_change_password: bool


def _admin_commune(admin: StaffIdentity) -> int:
    if admin.role != Role.ADMIN or admin.commune_id is None:
        raise OutOfScope("users")
    return admin.commune_id


def list_accounts(session: Session, admin: StaffIdentity) -> list[AccountRow]:
    commune_id = _admin_commune(admin)
    users = list(
        session.scalars(
            select(StaffUser).where(StaffUser.commune_id == commune_id).order_by(StaffUser.username)
        )
    )
    codes: dict[int, list[str]] = {}
    for user_id, code in session.execute(
        select(StaffProcedure.user_id, StaffProcedure.code)
        .where(StaffProcedure.user_id.in_([u.id for u in users]))
        .order_by(StaffProcedure.code)
    ):
        codes.setdefault(user_id, []).append(code)
    return [
        AccountRow(
            user_id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=Role(u.role),
            active=u.active,
            procedures=tuple(codes.get(u.id, ())),
            totp_enrolled=u.totp_secret_sealed is not None,
            must_change_password=u.must_change_password,
        )
        for u in users
    ]


def account_in_scope(session: Session, admin: StaffIdentity, user_id: int) -> StaffUser:
    commune_id = _admin_commune(admin)
    user = session.get(StaffUser, user_id)
    if user is None or user.commune_id != commune_id:
        raise OutOfScope(f"user:{user_id}", "not_found" if user is None else "out_of_scope")
    return user


def _check_account_form(
    *,
    role: str,
    display_name: str,
    procedures: list[str],
    offered: set[str],
) -> tuple[Role, str, list[str], dict[str, Message]]:
    errors: dict[str, Message] = {}
    try:
        chosen = Role(role)
        if chosen not in MANAGED_ROLES:
            raise ValueError(role)
    except ValueError:
        chosen = Role.OFFICIAL
        errors["role"] = Message("Xin chọn một vai trò.", "Please choose a role.")
    name = " ".join(display_name.split())[:120]
    if not name:
        errors["display_name"] = Message(
            "Xin nhập họ tên và chức danh, ví dụ “Nguyễn Văn An – Công chức Tư pháp”.",
            "Please enter the name and position, e.g. “Nguyễn Văn An – Justice officer”.",
        )
    codes = sorted(set(procedures))
    unknown = [c for c in codes if c not in offered]
    if unknown:
        errors["procedures"] = Message(
            "Có thủ tục không thuộc danh mục của xã: " + ", ".join(unknown) + ".",
            "Some procedures are not offered by the commune: " + ", ".join(unknown) + ".",
        )
    if chosen == Role.OFFICIAL and not codes and "procedures" not in errors:
        errors["procedures"] = Message(
            "Công chức cần được giao ít nhất một thủ tục để xử lý.",
            "An official must be assigned at least one procedure.",
        )
    if chosen != Role.OFFICIAL:
        codes = []
    return chosen, name, codes, errors


def create_account(
    session: Session,
    admin: StaffIdentity,
    *,
    username: str,
    role: str,
    display_name: str,
    procedures: list[str],
    offered: set[str],
    now: datetime,
) -> tuple[StaffUser, str]:
    """A new account of the admin's commune, with a one-time password shown once."""
    now = _utc(now)
    commune_id = _admin_commune(admin)
    chosen, name, codes, errors = _check_account_form(
        role=role, display_name=display_name, procedures=procedures, offered=offered
    )
    username = normalise_username(username)
    if not USERNAME_RE.match(username):
        errors["username"] = Message(
            "Tên đăng nhập dài 3–64 ký tự: chữ thường không dấu, chữ số, dấu chấm, gạch dưới "
            "hoặc gạch ngang; ví dụ “nhuanduc.an”.",
            "A username is 3–64 characters: lower-case letters without accents, digits, '.', "
            "'_' or '-'; e.g. “nhuanduc.an”.",
        )
    elif session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        errors["username"] = Message(
            "Tên đăng nhập này đã có người dùng. Xin chọn tên khác.",
            "This username is taken. Please choose another.",
        )
    if errors:
        raise AccountFormError(errors)
    commune = session.get(Commune, commune_id)
    user, password = create_user(
        session,
        commune=commune,
        role=chosen,
        username=username,
        procedures=codes,
        display_name=name,
        now=now,
    )
    record(
        session,
        actor=admin.actor,
        action="user.create",
        target=f"user:{user.id}",
        commune_id=commune_id,
        detail={"username": username, "role": chosen.value, "procedures": ",".join(codes)},
        now=now,
    )
    return user, password


def update_account(
    session: Session,
    admin: StaffIdentity,
    user_id: int,
    *,
    role: str,
    display_name: str,
    procedures: list[str],
    offered: set[str],
    now: datetime,
) -> StaffUser:
    user = account_in_scope(session, admin, user_id)
    chosen, name, codes, errors = _check_account_form(
        role=role, display_name=display_name, procedures=procedures, offered=offered
    )
    if user.id == admin.user_id and chosen != Role.ADMIN:
        errors["role"] = Message(
            "Bạn không thể tự bỏ vai trò quản trị của mình; hãy nhờ một quản trị viên khác.",
            "You cannot remove your own admin role; ask another administrator.",
        )
    if errors:
        raise AccountFormError(errors)
    before_role = user.role
    before = sorted(
        session.scalars(select(StaffProcedure.code).where(StaffProcedure.user_id == user.id))
    )
    user.display_name = name
    user.role = chosen.value
    session.execute(delete(StaffProcedure).where(StaffProcedure.user_id == user.id))
    for code in codes:
        session.add(StaffProcedure(user_id=user.id, code=code))
    session.flush()
    record(
        session,
        actor=admin.actor,
        action="user.update",
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        detail={
            "role_before": before_role,
            "role": chosen.value,
            "procedures_before": ",".join(before),
            "procedures": ",".join(codes),
        },
        now=now,
    )
    return user


def set_account_active(
    session: Session, admin: StaffIdentity, user_id: int, *, active: bool, now: datetime
) -> StaffUser:
    """Disable (every session ends at once) or enable an account."""
    user = account_in_scope(session, admin, user_id)
    if user.id == admin.user_id and not active:
        raise AccountFormError(
            {
                "active": Message(
                    "Bạn không thể tự khóa tài khoản của mình.",
                    "You cannot disable your own account.",
                )
            }
        )
    user.active = active
    if not active:
        end_user_sessions(session, user.id)
    session.flush()
    record(
        session,
        actor=admin.actor,
        action="user.enable" if active else "user.disable",
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        now=now,
    )
    return user


def reset_account_password(
    session: Session, admin: StaffIdentity, user_id: int, *, now: datetime
) -> tuple[StaffUser, str]:
    """A new one-time password (shown once, to be changed at the next sign-in); sessions end."""
    now = _utc(now)
    user = account_in_scope(session, admin, user_id)
    password = new_password()
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.must_change_password = True
    end_user_sessions(session, user.id)
    session.flush()
    record(
        session,
        actor=admin.actor,
        action="user.password_reset",
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        now=now,
    )
    return user, password


def reset_account_second_factor(
    session: Session, admin: StaffIdentity, user_id: int, *, now: datetime
) -> StaffUser:
    """For a lost phone: the second factor is removed and enrolled again at next sign-in."""
    user = account_in_scope(session, admin, user_id)
    user.totp_secret_sealed = None
    user.totp_last_step = None
    end_user_sessions(session, user.id)
    session.flush()
    record(
        session,
        actor=admin.actor,
        action="user.totp_reset",
        target=f"user:{user.id}",
        commune_id=user.commune_id,
        now=now,
    )
    return user
