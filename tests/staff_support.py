"""Factories for the staff-side tests: communes, accounts, dossiers, identities and installs.

Each test module makes its own commune (a fresh code and slug), so counts and queue orders do not
depend on what other tests stored in the shared install.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core import services
from core.accounts import Role, create_user
from core.install import (
    CommuneSpec,
    enable_procedures,
    ensure_commune,
    ensure_signing_key,
    sync_catalog,
)
from core.staff_auth import StaffIdentity, identity_of, start_session
from storage.models import Commune, Dossier, StaffUser
from storage.runtime import Runtime

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    """A moment given in the commune's local time (Asia/Ho_Chi_Minh), in UTC as stored."""
    return datetime(year, month, day, hour, minute, tzinfo=VN).astimezone(UTC)


def make_commune(runtime: Runtime, name: str = "Xã Thử Nghiệm") -> Commune:
    """A new commune with every catalog procedure and its signing key."""
    now = datetime.now(UTC)
    while True:
        code = f"{secrets.randbelow(90000) + 10000}"
        with runtime.db.reading() as s:
            if s.scalar(select(Commune.id).where(Commune.code == code)) is None:
                break
    spec = CommuneSpec(
        code=code,
        slug=f"thu-nghiem-{code}",
        name=f"{name} {code}",
        province_code="79",
        province_name="Thành phố Hồ Chí Minh",
    )
    with runtime.db.writing() as s:
        commune = ensure_commune(s, spec, now=now)
        versions = sync_catalog(s, runtime.catalog, now=now)
        enable_procedures(s, commune, versions, now=now)
        ensure_signing_key(s, commune, runtime.keys, now=now)
        s.expunge(commune)
    return commune


def make_user(
    runtime: Runtime,
    commune: Commune | None,
    role: Role,
    *,
    procedures: tuple[str, ...] = (),
    username: str | None = None,
    password: str | None = None,
    must_change: bool = False,
) -> tuple[int, str, str]:
    """An account (id, username, password), ready to sign in unless `must_change`."""
    name = username or f"t{uuid.uuid4().hex[:10]}"
    with runtime.db.writing() as s:
        user, secret = create_user(
            s,
            commune=s.get(Commune, commune.id) if commune else None,
            role=role,
            username=name,
            procedures=list(procedures),
            display_name=f"Cán bộ {name}",
            password=password,
            now=datetime.now(UTC) - timedelta(minutes=5),
        )
        user.must_change_password = must_change
        return user.id, user.username, secret


def identity(runtime: Runtime, user_id: int) -> StaffIdentity:
    with runtime.db.reading() as s:
        user = s.get(StaffUser, user_id)
        assert user is not None
        return identity_of(s, user)


def make_dossier(
    runtime: Runtime,
    commune: Commune,
    procedure: str = "khai-sinh",
    *,
    now: datetime | None = None,
    data: dict[str, object] | None = None,
    poster_id: int | None = None,
) -> str:
    """A dossier filed through the real service (signed, sealed, queued); returns its code."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)  # stored as UTC
    with runtime.db.writing() as s:
        c = s.get(Commune, commune.id)
        assert c is not None
        offered = services.offered_procedure(s, c, procedure)
        done = services.submit(
            s,
            commune=c,
            offered=offered,
            cleaned=data or {"ho_ten_tre": "Nguyễn Văn Bé", "ghi_chu": "thử"},
            draft=secrets.token_urlsafe(24),
            poster_id=poster_id,
            lang="vi",
            keys=runtime.keys,
            calendar=runtime.calendar,
            now=moment,
        )
        return done.dossier.code


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, format="PNG")
    return out.getvalue()


def make_dossier_with_file(
    runtime: Runtime, commune: Commune, procedure: str = "khai-sinh", *, now: datetime | None = None
) -> tuple[str, str]:
    """A dossier with one attached photo; returns (dossier code, attachment public id)."""
    from core.uploads import UploadLimits, inspect_upload
    from storage.files import FileStore

    moment = (now or datetime.now(UTC)).astimezone(UTC)
    draft = secrets.token_urlsafe(24)
    accepted = inspect_upload(png_bytes(), filename="giấy tờ.png", limits=UploadLimits())
    with runtime.db.writing() as s:
        c = s.get(Commune, commune.id)
        assert c is not None
        att = services.accept_upload(
            s, commune=c, draft=draft, field_name="giay_to", accepted=accepted,
            store=FileStore(runtime.upload_dir), keyring=runtime.keys.sealing, now=moment,
        )  # fmt: skip
        done = services.submit(
            s, commune=c, offered=services.offered_procedure(s, c, procedure),
            cleaned={"ho_ten": "Lê Văn Tám"}, draft=draft, poster_id=None, lang="vi",
            keys=runtime.keys, calendar=runtime.calendar, now=moment,
        )  # fmt: skip
        return done.dossier.code, att.public_id


def dossier_row(runtime: Runtime, commune: Commune, code: str) -> Dossier:
    with runtime.db.reading() as s:
        row = s.scalar(
            select(Dossier).where(Dossier.commune_id == commune.id, Dossier.code == code)
        )
        assert row is not None
        s.expunge(row)
        return row


def sign_in_cookie(runtime: Runtime, user_id: int, *, now: datetime | None = None) -> str:
    """A session token for the user, exactly as a completed sign-in opens it."""
    with runtime.db.writing() as s:
        user = s.get(StaffUser, user_id)
        assert user is not None
        return start_session(s, user, second_factor_done=True, now=now or datetime.now(UTC))


def demo_password(runtime: Runtime, username: str) -> str:
    saved = json.loads((runtime.instance_path / "demo-accounts.json").read_text())
    return str(saved[username]["password"])


# --- whole installs on each engine ----------------------------------------------------------------

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_available(url: str = POSTGRES_ADMIN_URL) -> bool:
    try:
        import psycopg

        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(plain, connect_timeout=2):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


@contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the block; dropped afterwards."""
    import psycopg

    name = f"kiosk_test_{uuid.uuid4().hex[:12]}"
    plain = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def install(instance: Path, database_url: str) -> Iterator[tuple[Flask, Runtime]]:
    """A complete install (keys, schema, catalog, demo commune) on `database_url`."""
    from application import create_app

    config: dict[str, Any] = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": "http://kiosk.test",
    }
    bootstrap = create_app(config, require_keys=False)
    result = bootstrap.test_cli_runner().invoke(args=["init", "--demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bootstrap.extensions["kiosk"].db.dispose()
    app = create_app(config, require_keys=True)
    runtime: Runtime = app.extensions["kiosk"]
    try:
        yield app, runtime
    finally:
        runtime.db.dispose()
