"""The application factory: the only place a Flask app is built.

Configuration is read here, never at import time, in this order (later wins):
defaults → `instance/config.py` → `KIOSK_*` environment variables → the `config` argument.
Nothing is written to disk here: `flask --app wsgi init` creates the database, keys and catalog.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Request, Response, abort, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_wtf.csrf import CSRFProtect
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from core.reconciliation import vnd
from storage.runtime import NotReady, Runtime

ROOT = Path(__file__).resolve().parent
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

DEFAULTS: dict[str, Any] = {
    "ENV": "development",  # "production" refuses to start without keys and a real secret
    "DATABASE_URL": None,  # default: SQLite in the instance folder
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    "DEMO_COMMUNE": "nhuan-duc",
    "CATALOG_DIR": None,  # default: the procedures/ folder of this checkout
    # Requests: two 12-megapixel photos are ~10 MB; anything far bigger is refused with 413.
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 256 * 1024,
    "MAX_FORM_PARTS": 300,
    "UPLOAD_DIR": None,  # default: instance/uploads
    "REDIS_URL": None,  # optional: shared rate limits across hosts without the database
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": 6 * 3600,  # a citizen may take a while on a form in the park
    "WTF_CSRF_CHECK_DEFAULT": False,  # checked per view, so a stale token keeps what was typed
    # Government day swaps announced each year (ISO dates), on top of the `holidays` package.
    "EXTRA_DAYS_OFF": [],
    "EXTRA_WORKING_DAYS": [],
    "STAFF_REQUIRE_TOTP": None,  # None: required in production, optional elsewhere
    "STAFF_IDLE_MINUTES": 30,
    "STAFF_ABSOLUTE_HOURS": 10,
    # Reverse proxies in front of the server (nginx: 1). Their X-Forwarded-For/-Proto are trusted
    # for that many hops, so rate limits count each phone, not the proxy; 0 trusts no header.
    "TRUSTED_PROXIES": 0,
}

csrf = CSRFProtect()
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
log = logging.getLogger("kiosk")


class _SessionWhenUsed(SecureCookieSessionInterface):
    """Flask's signed-cookie session, without its work on requests that have no session cookie
    and never touch the session (the citizen's form and submission): Flask would build the
    signing serializer to open it and work out the cookie's attributes to save nothing."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session.accessed and not session.modified:
            return  # nothing read, nothing to write, no Vary: Cookie (sessions are not permanent)
        super().save_session(app, session, response)


def create_app(config: dict[str, Any] | None = None, *, require_keys: bool | None = None) -> Flask:
    """Build the app. `require_keys=False` lets the CLI start before `init` made the keys."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get(
        "KIOSK_INSTANCE_PATH", str(ROOT / "instance")
    )
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()),
        instance_relative_config=True,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    app.session_interface = _SessionWhenUsed()
    app.config.update(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("KIOSK")
    if config:
        app.config.update(config)
    app.config["PUBLIC_BASE_URL"] = str(app.config["PUBLIC_BASE_URL"]).rstrip("/")
    if app.config["DATABASE_URL"] is None:
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'kiosk.db'}"
    if app.config["UPLOAD_DIR"] is None:
        app.config["UPLOAD_DIR"] = str(Path(app.instance_path) / "uploads")
    secure = app.config["PUBLIC_BASE_URL"].startswith("https://")
    app.config.setdefault("SESSION_COOKIE_SECURE", secure)
    app.config["SESSION_COOKIE_SECURE"] = app.config.get("SESSION_COOKIE_SECURE") or secure
    app.config["PREFERRED_URL_SCHEME"] = "https" if secure else "http"
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    from logs import configure_logging

    configure_logging(app)  # JSON lines on stderr, no personal data (logs.py)

    production = app.config["ENV"] == "production"
    if require_keys is None:
        require_keys = production
    runtime = Runtime.from_config(app.config, instance_path=Path(app.instance_path))
    try:
        runtime.load_keys()
    except NotReady as exc:
        if require_keys:
            raise SystemExit(f"kiosk: {exc}") from None
        # The CLI starts before `init` made the keys; commands that need them say so themselves.
        log.debug("%s", exc)
    app.extensions["kiosk"] = runtime
    app.config["SECRET_KEY"] = runtime.secret_key()

    proxies = int(app.config["TRUSTED_PROXIES"] or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    csrf.init_app(app)
    _register_blueprints(app)
    _register_request_hooks(app)
    from kiosk.errors import register_error_handlers

    register_error_handlers(app)
    from cli import register_commands

    register_commands(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from admin.panel import panel_bp
    from admin.payments import payments_bp
    from admin.posters import posters_bp
    from admin.views import bp as admin_bp
    from kiosk.views import bp as kiosk_bp

    app.register_blueprint(kiosk_bp)
    app.register_blueprint(admin_bp, url_prefix="/can-bo")
    app.register_blueprint(posters_bp, url_prefix="/can-bo/ap-phich")
    app.register_blueprint(payments_bp, url_prefix="/can-bo/le-phi")
    app.register_blueprint(panel_bp, url_prefix="/can-bo/quan-tri")


# Content-Security-Policy: no inline script, nothing from another host, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def _without_controls(values: MultiDict[str, str]) -> ImmutableMultiDict[str, str] | None:
    """The values without their control characters (every value of a repeated key), or None
    when there was none to drop."""
    items = list(values.items(multi=True))
    if not any(_CONTROL.search(v) for _, v in items):
        return None
    return ImmutableMultiDict([(k, _CONTROL.sub("", v)) for k, v in items])


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _language() -> None:
        lang = request.args.get("lang") or request.cookies.get("lang") or "vi"
        g.lang = "en" if lang == "en" else "vi"

    @app.url_value_preprocessor
    def _sane_address(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        # A slug, code or token with a control character in it, or longer than any can be, names
        # nothing here: 404 before any query (PostgreSQL refuses NUL in text).
        for value in (values or {}).values():
            if isinstance(value, str) and (len(value) > 200 or _CONTROL.search(value)):
                abort(404)

    @app.before_request
    def _staff_form_text() -> None:
        # Staff forms and filters go to many tables; PostgreSQL refuses a NUL in text, and no
        # control character belongs in a name, a note or an address. Drop them (tab and line
        # breaks stay) before any view reads them. The citizen's form keeps them, to say beside
        # the field what is wrong.
        if not request.path.startswith("/can-bo/"):
            return
        args = _without_controls(request.args)
        if args is not None:
            request.args = args  # type: ignore[misc]
        form = _without_controls(request.form) if request.method == "POST" else None
        if form is not None:
            request.form = form  # type: ignore[misc]

    security = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Permissions-Policy", "geolocation=(), microphone=(), camera=()"),
    ]
    https_only = ("Strict-Transport-Security", "max-age=31536000")

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        h = response.headers
        # Each header unless the view set its own: one pass over the response's headers, not
        # one per header (werkzeug's setdefault scans them all each time).
        wanted = [*security, https_only] if app.config["SESSION_COOKIE_SECURE"] else security
        present = {key.lower() for key in h.keys()}
        h.extend([(key, value) for key, value in wanted if key.lower() not in present])
        if getattr(g, "personal_data", False) or (request.blueprint or "").startswith(
            ("admin", "staff_")
        ):
            h["Cache-Control"] = "no-store"
        lang_arg = request.args.get("lang")
        if lang_arg in ("vi", "en") and request.cookies.get("lang") != lang_arg:
            response.set_cookie(
                "lang",
                lang_arg,
                max_age=365 * 86400,
                samesite="Lax",
                httponly=True,
                secure=app.config["SESSION_COOKIE_SECURE"],
            )
        return response

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        lang = getattr(g, "lang", "vi")

        def t(vi: str, en: str) -> str:
            return en if lang == "en" else vi

        return {
            "lang": lang,
            "t": t,
            "tz": LOCAL_TZ,
            "public_base_url": app.config["PUBLIC_BASE_URL"],
            "vnd": vnd,  # 16000 → "16.000 đ"
        }


def warm_up(app: Flask) -> None:
    """Do in a new worker, before it takes a request, the one-time work its first requests
    would otherwise pay for: SQLAlchemy's mappings configured, the database's engines made (no
    connection is opened), the citizen's statements compiled for its dialect, the part of
    `cryptography` that loads a commune's signing key imported. A new worker's first
    submission took 57-89 ms without it, 25-38 ms with it (the rest is reading the commune's
    offer and signing key, on first use), and ~5 ms after that (SQLite, in process). Nothing
    here reads the database, so a worker starts even while the database is down."""
    import cryptography.hazmat.backends.openssl.backend  # noqa: F401 - imported on first use
    from sqlalchemy.orm import configure_mappers

    from core import services
    from storage.statements import compile_all

    runtime: Runtime = app.extensions["kiosk"]
    configure_mappers()
    dialect = runtime.db.engine.dialect
    services.warm_up(dialect.name)
    compile_all(dialect)
