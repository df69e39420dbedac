"""Who is signed in on the staff side, and the one gate every staff route goes through.

`staff_required(*roles)` is the gate: it resumes the server-side session from its cookie, sends a
half-signed-in person to the step they still owe (second factor, new password), and answers 404
to a role that has no business on the route. Objects further down (a dossier, a user, a
commune's report) are scoped by the services, which raise `OutOfScope`; the app-wide handler
registered here turns that into the same 404 and writes the attempt to the audit log. Any staff
blueprint (posters, payments) uses the same decorator and the same exception.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, current_app, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from core.accounts import Role
from core.audit_log import record
from core.staff_auth import (
    OutOfScope,
    SessionPolicy,
    StaffIdentity,
    resume_session,
    touch_session,
)
from storage.runtime import Runtime

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])

SESSION_COOKIE = "kiosk_staff"
DEVICE_COOKIE = "kiosk_staff_device"
COOKIE_PATH = "/can-bo"
DEVICE_DAYS = 180


def rt() -> Runtime:
    runtime: Runtime = current_app.extensions["kiosk"]
    return runtime


def now_utc() -> datetime:
    return datetime.now(UTC)


def csrf_ok() -> bool:
    """Whether the posted form carries a valid CSRF token (views check it themselves, so that a
    stale page comes back with what was typed instead of a bare 400)."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def guarded_staff() -> StaffIdentity:
    """The staff member a blueprint's guard (before_request) let in."""
    staff: StaffIdentity = g.staff
    return staff


def client_address() -> str:
    return request.remote_addr or "unknown"


def session_policy() -> SessionPolicy:
    return SessionPolicy.from_settings(current_app.config)


def require_totp() -> bool:
    """Whether every staff account must use a second factor: on by default in production."""
    value = current_app.config.get("STAFF_REQUIRE_TOTP")
    if value is None:
        return bool(current_app.config.get("ENV") == "production")
    return str(value).lower() in ("1", "true", "yes", "on")


def current_staff() -> StaffIdentity | None:
    """The identity behind this request's cookie, if its session is active (cached per request)."""
    if "staff" in g.__dict__:
        staff: StaffIdentity | None = g.staff
        return staff
    token = request.cookies.get(SESSION_COOKIE)
    identity = None
    if token:
        runtime = rt()
        now = now_utc()
        with runtime.db.reading() as s:
            resumed = resume_session(s, token, now=now, policy=session_policy())
        identity = resumed.identity
        if identity is not None and resumed.needs_touch:
            with runtime.db.writing() as s:
                touch_session(s, identity.session_id, now)
        if identity is None:
            g.staff_session_ended = resumed.state.value
    g.staff = identity
    return identity


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        samesite="Lax",
        path=COOKIE_PATH,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def set_device_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        samesite="Strict",
        path=COOKIE_PATH,
    )


def safe_next(target: str | None) -> str | None:
    """A place to go back to after signing in: only a path of the staff side of this site."""
    if not target or len(target) > 500:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(COOKIE_PATH + "/"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


def login_redirect() -> ResponseReturnValue:
    args: dict[str, str] = {}
    if request.method == "GET":
        args["next"] = request.full_path.rstrip("?")
    ended = g.get("staff_session_ended")
    if ended in ("idle", "expired"):
        args["het_han"] = ended
    return redirect(url_for("admin.login", **args))


def audit_denied(target: str, reason: str) -> None:
    """Write a refused attempt to the audit log, in its own transaction."""
    identity = g.get("staff")
    with rt().db.writing() as s:
        record(
            s,
            actor=identity.actor if identity is not None else "anonymous",
            action="access.denied",
            target=target[:120],
            commune_id=identity.commune_id if identity is not None else None,
            detail={"path": request.path[:200], "method": request.method, "reason": reason},
            now=now_utc(),
        )


def staff_required(*roles: Role, complete: bool = True) -> Callable[[F], F]:
    """The gate of a staff route: signed in (completely, unless `complete=False`) and, when roles
    are given, one of them; any other role gets a 404 and the attempt is audited."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            identity = current_staff()
            if identity is None:
                return login_redirect()
            if complete:
                if not identity.second_factor_done:
                    if identity.totp_enrolled:
                        return redirect(url_for("admin.second_factor"))
                    return redirect(url_for("admin.enrol"))
                if identity.must_change_password:
                    return redirect(url_for("admin.password"))
            if roles and identity.role not in roles:
                raise OutOfScope(f"route:{request.endpoint}", "role")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
