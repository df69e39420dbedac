"""The command line (`flask --app wsgi …`): what operators and commune staff run.

Each command opens one write transaction, calls the domain, and prints what a person needs.
Errors are one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError

from core.accounts import AccountError, Role, create_user
from core.demo import DemoError, DemoResult, ensure_demo_dossiers
from core.install import (
    DEMO_COMMUNE,
    enable_procedures,
    ensure_commune,
    ensure_signing_key,
    sync_catalog,
)
from procedures.catalog import CatalogError
from storage.database import DatabaseConfigError
from storage.files import FileStore
from storage.models import Commune, Poster, StaffUser
from storage.runtime import NotReady, Runtime
from storage.schema import upgrade

F = TypeVar("F", bound=Callable[..., Any])


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["kiosk"]
    return rt


def now_utc() -> datetime:
    return datetime.now(UTC)


def fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(1)


def clear_errors(fn: F) -> F:
    """Turn the faults an operator can meet into one line that says what to do."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (NotReady, DatabaseConfigError, CatalogError, AccountError, DemoError) as exc:
            fail(str(exc))
        except OperationalError as exc:
            fail(
                "Cannot reach the database "
                f"({type(exc.orig).__name__ if exc.orig else 'error'}: "
                f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}). "
                "Check KIOSK_DATABASE_URL and that the database server is running."
            )
        except DBAPIError as exc:
            fail(f"Database error: {str(exc.orig).strip().splitlines()[0]}")
        return None

    return wrapper  # type: ignore[return-value]


DEMO_ACCOUNTS = (
    ("nhuanduc.admin", Role.ADMIN, "Quản trị xã Nhuận Đức", ()),
    ("nhuanduc.hotich", Role.OFFICIAL, "Công chức Tư pháp – Hộ tịch", None),  # None = all
    ("nhuanduc.lanhdao", Role.LEADER, "Chủ tịch UBND xã", ()),
)
DEMO_OFFICIAL = "nhuanduc.hotich"  # files and handles the demo dossiers
DEMO_POSTERS = (
    ("khai-sinh", "Bảng tin UBND xã"),
    ("khai-sinh", "Công viên ấp 3"),
    ("ket-hon", "Bảng tin UBND xã"),
    ("chung-thuc-ban-sao", "Bộ phận Một cửa"),
    ("xac-nhan-tinh-trang-hon-nhan", "Nhà văn hóa ấp Bàu Tròn"),
)


def register_commands(app: Flask) -> None:
    @app.cli.command("init")
    @click.option("--demo", is_flag=True, help="Add the demo commune, posters and staff accounts.")
    @clear_errors
    def init_command(demo: bool) -> None:
        """Create or upgrade the database, keys and catalog (idempotent)."""
        rt = runtime()
        keys = rt.load_keys(create=True)
        Path(rt.upload_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        catalog = rt.catalog
        upgrade(rt.db.engine)
        now = now_utc()
        credentials: list[tuple[str, str, str, str | None]] = []
        dossiers: DemoResult | None = None
        with rt.db.writing() as session:
            versions = sync_catalog(session, catalog, now=now)
            for commune in session.scalars(select(Commune)):
                enable_procedures(session, commune, versions, now=now)
                ensure_signing_key(session, commune, keys, now=now)
            if demo:
                credentials, dossiers = _ensure_demo(session, rt, versions, now)
        click.echo(f"Database ready ({rt.db.dialect}), {len(catalog)} procedures in the catalog.")
        if demo:
            click.echo(f"Demo commune: {DEMO_COMMUNE.name} (/x/{DEMO_COMMUNE.slug})")
            click.echo("Demo staff accounts (demo only; change them before any real use):")
            for username, role, password, totp in credentials:
                line = f"  {role:<9} {username:<20} password: {password}"
                if totp:
                    line += f"  TOTP secret: {totp}"
                click.echo(line)
            if dossiers is not None and dossiers.sample_code:
                click.echo(f"Demo dossiers: {dossiers.total} ({dossiers.created} added now).")
                click.echo(
                    f"  The citizen's status page of one (code {dossiers.sample_code}, secret "
                    f"{dossiers.sample_secret}): {rt.public_base_url}/tra-cuu?ma="
                    f"{dossiers.sample_code}&k={dossiers.sample_secret}"
                )

    users = AppGroup("users", help="Staff accounts.")

    @users.command("create")
    @click.option("--commune", "commune_slug", help="Commune slug (not for province_admin).")
    @click.option(
        "--role", required=True, type=click.Choice([r.value for r in Role], case_sensitive=False)
    )
    @click.option("--username", required=True)
    @click.option("--procedure", "procedures", multiple=True, help="Procedure code (officials).")
    @click.option("--name", "display_name", default="", help="Name shown in the workspace.")
    @clear_errors
    def users_create(
        commune_slug: str | None,
        role: str,
        username: str,
        procedures: tuple[str, ...],
        display_name: str,
    ) -> None:
        """Create a staff account and print its one-time password."""
        rt = runtime()
        rt.keys  # noqa: B018 - fails early with a clear message when init has not run
        with rt.db.writing() as session:
            commune = None
            if commune_slug:
                commune = session.scalar(select(Commune).where(Commune.slug == commune_slug))
                if commune is None:
                    raise AccountError(f"No commune with slug '{commune_slug}'.")
            user, password = create_user(
                session,
                commune=commune,
                role=Role(role.lower()),
                username=username,
                procedures=procedures,
                display_name=display_name,
                now=now_utc(),
                known_procedures=set(rt.catalog.codes()),
            )
            from core.audit_log import record

            record(
                session,
                actor="cli",
                action="user.create",
                target=f"user:{user.id}",
                commune_id=user.commune_id,
                detail={"username": user.username, "role": user.role},
                now=now_utc(),
            )
        click.echo(f"Created {role} '{user.username}'.")
        click.echo(f"One-time password (shown once, must be changed at first sign-in): {password}")

    app.cli.add_command(users)

    register_poster_commands(app)
    register_receipt_commands(app)

    from admin.commands import register as register_staff_commands

    register_staff_commands(app)

    from admin.operations import register as register_operations

    register_operations(app)


def _ensure_demo(
    session: Any, rt: Runtime, versions: dict[str, Any], now: datetime
) -> tuple[list[tuple[str, str, str, str | None]], DemoResult | None]:
    """The demo commune with its procedures, a few posters, one account of each role and a dozen
    dossiers at every stage (core.demo).

    Demo passwords are kept in instance/demo-accounts.json (mode 0600) so every `make run` can
    print them again; real accounts never show a secret twice.
    """
    commune = ensure_commune(session, DEMO_COMMUNE, now=now)
    enable_procedures(session, commune, versions, now=now)
    ensure_signing_key(session, commune, rt.keys, now=now)
    store = rt.instance_path / "demo-accounts.json"
    saved: dict[str, dict[str, str | None]] = (
        json.loads(store.read_text()) if store.exists() else {}
    )
    out: list[tuple[str, str, str, str | None]] = []
    for username, role, display_name, procs in DEMO_ACCOUNTS:
        user = session.scalar(select(StaffUser).where(StaffUser.username == username))
        if user is None:
            codes = list(versions) if procs is None else list(procs)
            user, password = create_user(
                session,
                commune=commune,
                role=role,
                username=username,
                procedures=codes,
                display_name=display_name,
                now=now,
            )
            user.must_change_password = False
            saved[username] = {"password": password, "totp": None}
        entry = saved.get(username, {"password": "(set before; see your records)", "totp": None})
        out.append((username, role.value, str(entry["password"]), entry.get("totp")))
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(saved, fh, ensure_ascii=False, indent=2)
    if session.scalar(select(Poster.id).where(Poster.commune_id == commune.id).limit(1)) is None:
        for code, location in DEMO_POSTERS:
            if code in versions:
                session.add(
                    Poster(
                        commune_id=commune.id,
                        code=code,
                        location=location,
                        key_id=rt.keys.poster_current,
                        created_at=now,
                    )
                )
    session.flush()
    official = session.scalar(select(StaffUser).where(StaffUser.username == DEMO_OFFICIAL))
    if official is None or official.commune_id != commune.id:
        return out, None
    dossiers = ensure_demo_dossiers(
        session,
        commune=commune,
        official=official,
        keys=rt.keys,
        calendar=rt.calendar,
        store=FileStore(Path(rt.upload_dir)),
        now=now,
    )
    return out, dossiers


def register_poster_commands(app: Flask) -> None:
    posters = AppGroup("posters", help="QR posters.")

    @posters.command("create")
    @click.option("--commune", "commune_slug", required=True)
    @click.option("--procedure", "code", required=True)
    @click.option("--location", required=True, help='Where it hangs, e.g. "Công viên ấp 3".')
    @click.option("--expires", type=click.DateTime(formats=["%Y-%m-%d"]), default=None)
    @clear_errors
    def posters_create(commune_slug: str, code: str, location: str, expires: Any) -> None:
        """Create a poster and print the URL its QR code opens."""
        from core import services
        from core.audit_log import record
        from core.posters import poster_url, short_code

        rt = runtime()
        now = now_utc()
        with rt.db.writing() as session:
            commune = _commune(session, commune_slug)
            try:
                poster = services.create_poster(
                    session,
                    commune=commune,
                    code=code,
                    location=location,
                    keys=rt.keys,
                    now=now,
                    expires_at=expires.replace(tzinfo=UTC) if expires else None,
                )
            except services.NotFound:
                fail(f"'{code}' is not a procedure offered by {commune.name}.")
            except ValueError as exc:
                fail(str(exc))
            record(
                session,
                actor="cli",
                action="poster.create",
                target=f"poster:{poster.id}",
                commune_id=commune.id,
                detail={"procedure": code, "location": poster.location},
                now=now,
            )
            token = services.poster_token(poster, rt.keys)
        click.echo(poster_url(rt.public_base_url, token))
        click.echo(f"Short code: {short_code(token)}", err=True)

    @posters.command("pdf")
    @click.option("--commune", "commune_slug", required=True)
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
    @click.option("--layout", type=click.Choice(["poster", "sheet"]), default="poster")
    @clear_errors
    def posters_pdf_command(commune_slug: str, out: str, layout: str) -> None:
        """Every active poster of the commune as a print-ready A4 PDF."""
        from core import services
        from core.poster_print import FontsMissing, find_fonts, posters_pdf

        rt = runtime()
        try:
            fonts = find_fonts()
        except FontsMissing as exc:
            fail(str(exc))
        with rt.db.reading() as session:
            commune = _commune(session, commune_slug)
            active = services.active_posters(session, commune, now_utc())
            prints = services.poster_prints(
                session, commune, active, keys=rt.keys, public_base_url=rt.public_base_url
            )
        if not prints:
            fail(f"{commune.name} has no active poster: create one with `posters create`.")
        data = posters_pdf(prints, layout=layout, fonts=fonts)  # type: ignore[arg-type]
        Path(out).write_bytes(data)
        click.echo(f"Wrote {len(prints)} poster(s), layout {layout}, to {out}")

    app.cli.add_command(posters)


def _commune(session: Any, slug: str) -> Commune:
    commune = session.scalar(select(Commune).where(Commune.slug == slug))
    if commune is None:
        fail(f"No commune with slug '{slug}'. Communes: see `flask --app wsgi init --demo`.")
    return commune  # type: ignore[no-any-return]


def register_receipt_commands(app: Flask) -> None:
    receipt = AppGroup("receipt", help="Signed receipts.")

    @receipt.command("verify")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @clear_errors
    def receipt_verify(file: str) -> None:
        """Check a downloaded signed receipt: exit 0 valid, 1 invalid."""
        from core import services
        from core.signing import verify_receipt

        data = Path(file).read_bytes()[: 256 * 1024]
        rt = runtime()
        with rt.db.reading() as session:
            check = verify_receipt(data, services.all_verify_keys(session))
        if check.valid:
            payload = check.payload or {}
            click.echo(f"VALID: {check.reason.en}")
            click.echo(f"  dossier {payload.get('code')} of {payload.get('commune_name')}")
            return
        click.echo(f"INVALID: {check.reason.en}")
        sys.exit(1)

    app.cli.add_command(receipt)
