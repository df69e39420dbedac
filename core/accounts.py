"""Staff accounts (tài khoản cán bộ): roles, passwords and one-time passwords.

Roles follow the commune's positions:
- `admin`: the commune's administrator (procedures, posters, users, collecting account);
- `official`: a civil-status or certification officer (công chức tư pháp – hộ tịch …) who
  processes only the procedures assigned to them;
- `leader`: the commune's chairman or deputy, who sees every dossier of the commune and the
  dashboards;
- `province_admin`: manages the communes of the install and the shared catalog (no commune).

Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 low-memory profile: t=3, m=64 MiB, p=4),
never stored or logged in clear. A new account gets a random one-time password that must be changed
at first sign-in.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Commune, StaffProcedure, StaffUser


class Role(StrEnum):
    ADMIN = "admin"
    OFFICIAL = "official"
    LEADER = "leader"
    PROVINCE_ADMIN = "province_admin"


USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
# No look-alike characters, so a password read aloud over the phone is typed right.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"  # noqa: S105 - alphabet

_hasher = PasswordHasher()


class AccountError(Exception):
    """A request about accounts that cannot be done; the message says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# Verifying against this when the username is unknown makes both answers cost the same time.
DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def new_password(length: int = 14) -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def create_user(
    session: Session,
    *,
    commune: Commune | None,
    role: Role,
    username: str,
    now: datetime,
    procedures: list[str] | tuple[str, ...] = (),
    display_name: str = "",
    password: str | None = None,
    known_procedures: set[str] | None = None,
) -> tuple[StaffUser, str]:
    """Create an account and return it with its one-time password (shown once, never stored)."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise AccountError(
            "Username must be 3–64 characters: lower-case letters, digits, '.', '_' or '-'."
        )
    if role != Role.PROVINCE_ADMIN and commune is None:
        raise AccountError("A commune account needs --commune.")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise AccountError(f"The username '{username}' is taken.")
    if procedures and role != Role.OFFICIAL:
        raise AccountError("Only an official is assigned procedures (--procedure).")
    if known_procedures is not None:
        unknown = sorted(set(procedures) - known_procedures)
        if unknown:
            raise AccountError(f"Unknown procedure code(s): {', '.join(unknown)}.")
    secret = password or new_password()
    user = StaffUser(
        commune_id=commune.id if commune else None,
        username=username,
        display_name=display_name or username,
        role=role.value,
        password_hash=hash_password(secret),
        password_changed_at=now,
        must_change_password=password is None,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    for code in sorted(set(procedures)):
        session.add(StaffProcedure(user_id=user.id, code=code))
    return user, secret
