"""The staff side over HTTP (mounted at /can-bo): views only translate HTTP.

Sign-in and account pages, the officials' queue and dossier pages, the commune's reports, user
administration and the audit log. Every route passes the gate `staff_required` (admin.auth);
services scope every object and raise `OutOfScope`, answered here (for the whole site) with a 404
that is written to the audit log.

    /can-bo/dang-nhap                       sign in (username, password)
    /can-bo/dang-nhap/ma                    the second factor (TOTP code)
    /can-bo/bao-mat/xac-thuc-hai-buoc       enrol an authenticator app
    /can-bo/doi-mat-khau                    change one's password (forced at first sign-in)
    /can-bo/dang-xuat                       sign out (POST)
    /can-bo/                                home: the queue, or the page of one's role
    /can-bo/ho-so                           the queue (filters, keyset pages)
    /can-bo/ho-so/<code>                    a dossier: data, papers, history, signatures
    /can-bo/ho-so/<code>/thao-tac           POST: claim, approve, refuse, ask for more, hand back
    /can-bo/ho-so/<code>/xin-loi            POST: apology with a new date (once)
    /can-bo/ho-so/<code>/giao-lai           POST: a leader reassigns
    /can-bo/ho-so/<code>/tep/<id>           download an attachment (audited)
    /can-bo/bao-cao                         dashboard; /bao-cao/in printable; *.csv exports
    /can-bo/nguoi-dung …                    the commune admin's accounts pages
    /can-bo/nhat-ky                         the audit log of the commune
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from admin.auth import (
    DEVICE_COOKIE,
    audit_denied,
    clear_session_cookie,
    client_address,
    csrf_ok,
    current_staff,
    login_redirect,
    now_utc,
    require_totp,
    rt,
    safe_next,
    set_device_cookie,
    set_session_cookie,
    staff_required,
)
from core import poster_register, reports, staff_auth, workspace
from core.accounts import Role
from core.staff_auth import OutOfScope, SignInOutcome, StaffIdentity
from core.text import Message, typed_id
from storage.files import FileStore
from storage.models import Commune

bp = Blueprint("admin", __name__)

OFFICIAL, LEADER, ADMIN, PROVINCE = Role.OFFICIAL, Role.LEADER, Role.ADMIN, Role.PROVINCE_ADMIN

_STALE_FORM = Message(
    "Trang đã mở quá lâu nên thao tác chưa được thực hiện. Những gì bạn đã nhập vẫn còn: xin "
    "kiểm tra rồi bấm lại một lần nữa.",
    "The page was open too long, so nothing was done. What you typed is still here: check it "
    "and press the button once more.",
)


# --- shared with the other staff blueprints -------------------------------------------------------


def signed_in_staff() -> StaffIdentity | ResponseReturnValue:
    """For another staff blueprint's before_request: the fully signed-in identity, or the
    response (a redirect to sign in, to the second factor, to the password change) to return."""
    identity = current_staff()
    if identity is None:
        return login_redirect()
    if not identity.second_factor_done:
        if identity.totp_enrolled:
            return redirect(url_for("admin.second_factor"))
        return redirect(url_for("admin.enrol"))
    if identity.must_change_password:
        return redirect(url_for("admin.password"))
    return identity


@bp.app_errorhandler(OutOfScope)
def _out_of_scope(exc: OutOfScope) -> ResponseReturnValue:
    """Anything not the caller's (or not there): audited, then the ordinary 404 page."""
    from kiosk.errors import error_page

    audit_denied(exc.target, exc.reason)
    return error_page(404)


@dataclass(frozen=True)
class NavLink:
    """One staff area in the header: where it is, its name, and whether this page is in it."""

    url: str
    label: Message
    current: bool


def _area_url(blueprint: str) -> str | None:
    """The entry page of another staff blueprint (its shortest GET route without arguments), or
    None when the install does not have it: the header never links a page that is not there."""
    rules = [
        rule
        for rule in current_app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{blueprint}.")
        and not rule.arguments
        and "GET" in (rule.methods or ())
    ]
    if not rules:
        return None
    return url_for(min(rules, key=lambda rule: (len(rule.rule), rule.rule)).endpoint)


# The pages of the "Hồ sơ" area, including the answers to its forms (an error shown after a post).
_DOSSIER_PAGES = frozenset(
    f"admin.{name}" for name in ("inbox", "dossier", "attachment", "act", "apologise", "reassign")
)


def staff_areas(identity: StaffIdentity) -> list[NavLink]:
    """The staff areas `identity`'s role can use, in the order of a working day: dossiers first,
    then the commune's figures, posters and fees, then administration. Each area's own guard
    still decides; this only keeps the header from offering a page that would answer 404."""
    endpoint = request.endpoint or ""
    in_commune = identity.commune_id is not None
    areas: list[tuple[bool, str | None, Message, bool]] = [
        (
            identity.sees_dossiers,
            url_for("admin.inbox"),
            Message("Hồ sơ", "Dossiers"),
            endpoint in _DOSSIER_PAGES,
        ),
        (
            identity.role in (LEADER, ADMIN, PROVINCE),
            url_for("admin.report"),
            Message("Báo cáo", "Reports"),
            endpoint.startswith("admin.report"),
        ),
        (
            poster_register.may_view(identity),
            _area_url("staff_posters"),
            Message("Áp phích", "Posters"),
            request.blueprint == "staff_posters",
        ),
        (
            in_commune and identity.role in (OFFICIAL, LEADER, ADMIN),
            _area_url("staff_payments"),
            Message("Lệ phí", "Fees"),
            request.blueprint == "staff_payments",
        ),
        (
            (identity.role == ADMIN and in_commune) or identity.role == PROVINCE,
            _area_url("staff_panel"),
            Message("Quản trị thủ tục", "Procedures"),
            request.blueprint == "staff_panel",
        ),
        (
            identity.role == ADMIN,
            url_for("admin.users"),
            Message("Người dùng", "Users"),
            endpoint.startswith("admin.user"),
        ),
        (
            identity.role in (LEADER, ADMIN, PROVINCE),
            url_for("admin.audit_log"),
            Message("Nhật ký", "Audit log"),
            endpoint == "admin.audit_log",
        ),
    ]
    return [
        NavLink(url, label, current) for allowed, url, label, current in areas if allowed and url
    ]


@bp.app_context_processor
def _staff_globals() -> dict[str, Any]:
    staff: StaffIdentity | None = g.get("staff")
    areas = staff_areas(staff) if staff is not None and staff.ready() else []
    return {"staff": staff, "Role": Role, "staff_areas": areas}


def _staff() -> StaffIdentity:
    identity = current_staff()
    if identity is None:  # staff_required ran first; this cannot happen
        abort(404)
    return identity


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    context.setdefault("notice", None)
    return render_template(template, csrf_token=generate_csrf(), **context), status


def _version() -> int | None:
    return typed_id(request.form.get("version", ""))


# --- signing in -----------------------------------------------------------------------------------


@bp.route("/dang-nhap", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    runtime = rt()
    nxt = safe_next(request.values.get("next"))
    identity = current_staff()
    if request.method == "GET":
        if identity is not None and identity.ready():
            return redirect(nxt or url_for("admin.home"))
        notice = None
        if request.args.get("het_han") in ("idle", "expired"):
            notice = Message(
                "Phiên làm việc đã hết hạn (không thao tác 30 phút, hoặc đã quá 10 giờ). Xin "
                "đăng nhập lại.",
                "Your session ended (30 minutes without activity, or more than 10 hours). "
                "Please sign in again.",
            )
        return _page("admin/login.html", next=nxt, notice=notice)
    username = request.form.get("username", "")[:64]
    values = {"username": username}
    if not csrf_ok():
        return _page("admin/login.html", 422, next=nxt, values=values, notice=_STALE_FORM)
    errors: dict[str, Message] = {}
    if not username.strip():
        errors["username"] = Message("Xin nhập tên đăng nhập.", "Please enter your username.")
    if not request.form.get("password"):
        errors["password"] = Message("Xin nhập mật khẩu.", "Please enter your password.")
    if errors:
        return _page("admin/login.html", 422, next=nxt, values=values, errors=errors)
    result = staff_auth.sign_in(
        runtime.db,
        username=username,
        password=request.form.get("password", "")[:256],
        address=client_address(),
        device=request.cookies.get(DEVICE_COOKIE),
        counter=runtime.rate,
        secret_key=runtime.keys.secret_key,
        require_totp=require_totp(),
        now=now_utc(),
    )
    if result.outcome == SignInOutcome.THROTTLED:
        html, _ = _page("admin/login.html", 429, next=nxt, values=values, notice=result.message)
        return html, 429, {"Retry-After": str(result.retry_after)}
    if result.token is None:
        return _page("admin/login.html", 422, next=nxt, values=values, notice=result.message)
    if result.outcome == SignInOutcome.NEEDS_CODE:
        target = url_for("admin.second_factor", next=nxt) if nxt else url_for("admin.second_factor")
    elif require_totp():
        target = url_for("admin.enrol")
    elif result.must_change_password:
        target = url_for("admin.password")
    else:
        target = nxt or url_for("admin.home")
    response = redirect(target, code=303)
    set_session_cookie(response, result.token)
    if result.outcome == SignInOutcome.SIGNED_IN and not require_totp():
        set_device_cookie(
            response,
            staff_auth.device_token(runtime.keys.secret_key, username.strip().lower(), now_utc()),
        )
    return response


@bp.route("/dang-nhap/ma", methods=["GET", "POST"])
@staff_required(complete=False)
def second_factor() -> ResponseReturnValue:
    identity = _staff()
    nxt = safe_next(request.values.get("next"))
    if identity.second_factor_done:
        return redirect(nxt or url_for("admin.home"))
    if not identity.totp_enrolled:
        return redirect(url_for("admin.enrol"))
    if request.method == "GET":
        return _page("admin/second_factor.html", next=nxt)
    if not csrf_ok():
        return _page("admin/second_factor.html", 422, next=nxt, notice=_STALE_FORM)
    runtime = rt()
    now = now_utc()
    check = staff_auth.check_second_factor(
        runtime.db,
        identity,
        request.form.get("code", "")[:20],
        keyring=runtime.keys.sealing,
        counter=runtime.rate,
        address=client_address(),
        now=now,
    )
    if check.restart:
        response = redirect(url_for("admin.login"), code=303)
        clear_session_cookie(response)
        flash(check.message.in_(g.lang) if check.message else "")
        return response
    if not check.ok or check.token is None:
        errors = {"code": check.message} if check.message else {}
        return _page("admin/second_factor.html", 422, next=nxt, errors=errors)
    target = url_for("admin.password") if identity.must_change_password else None
    response = redirect(target or nxt or url_for("admin.home"), code=303)
    set_session_cookie(response, check.token)
    set_device_cookie(
        response, staff_auth.device_token(runtime.keys.secret_key, identity.username, now)
    )
    return response


def _enrol_context(identity: StaffIdentity) -> dict[str, Any]:
    runtime = rt()
    secret = staff_auth.enrolment_secret(
        runtime.keys.secret_key, identity.user_id, identity.session_id
    )
    issuer = "Kiosk xã"
    if identity.commune_id is not None:
        with runtime.db.reading() as s:
            commune = s.get(Commune, identity.commune_id)
            if commune is not None:
                issuer = f"Kiosk {commune.name}"
    uri = staff_auth.enrolment_uri(secret, username=identity.username, issuer=issuer)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {"qr": staff_auth.qr_svg_of(uri), "secret": grouped}


@bp.route("/bao-mat/xac-thuc-hai-buoc", methods=["GET", "POST"])
@staff_required(complete=False)
def enrol() -> ResponseReturnValue:
    """Set up the authenticator app: with only a password when the install requires a second
    factor and none is enrolled yet, otherwise from a complete session."""
    identity = _staff()
    if not identity.second_factor_done and identity.totp_enrolled:
        return redirect(url_for("admin.second_factor"))
    if request.method == "GET":
        return _page("admin/enrol.html", **_enrol_context(identity))
    if not csrf_ok():
        return _page("admin/enrol.html", 422, notice=_STALE_FORM, **_enrol_context(identity))
    runtime = rt()
    now = now_utc()
    with runtime.db.writing() as s:
        check = staff_auth.enrol_second_factor(
            s,
            identity,
            request.form.get("code", "")[:20],
            secret_key=runtime.keys.secret_key,
            keyring=runtime.keys.sealing,
            now=now,
        )
    if not check.ok or check.token is None:
        errors = {"code": check.message} if check.message else {}
        return _page("admin/enrol.html", 422, errors=errors, **_enrol_context(identity))
    flash(
        Message(
            "Đã bật xác thực hai bước. Từ nay mỗi lần đăng nhập cần mã từ ứng dụng.",
            "Two-step verification is on. From now on every sign-in needs a code from the app.",
        ).in_(g.lang)
    )
    target = url_for("admin.password") if identity.must_change_password else url_for("admin.home")
    response = redirect(target, code=303)
    set_session_cookie(response, check.token)
    set_device_cookie(
        response, staff_auth.device_token(runtime.keys.secret_key, identity.username, now)
    )
    return response


@bp.route("/doi-mat-khau", methods=["GET", "POST"])
@staff_required(complete=False)
def password() -> ResponseReturnValue:
    identity = _staff()
    if not identity.second_factor_done:
        return redirect(url_for("admin.second_factor" if identity.totp_enrolled else "admin.enrol"))
    forced = identity.must_change_password
    if request.method == "GET":
        return _page("admin/password.html", forced=forced)
    if not csrf_ok():
        return _page("admin/password.html", 422, forced=forced, notice=_STALE_FORM)
    with rt().db.writing() as s:
        change = staff_auth.change_password(
            s,
            identity,
            current=request.form.get("current", "")[:256],
            new=request.form.get("new", "")[:256],
            repeat=request.form.get("repeat", "")[:256],
            now=now_utc(),
        )
    if not change.ok or change.token is None:
        return _page("admin/password.html", 422, forced=forced, errors=change.errors)
    flash(
        Message(
            "Đã đổi mật khẩu. Các phiên đăng nhập khác của bạn đã bị đăng xuất.",
            "Password changed. Your other sessions were signed out.",
        ).in_(g.lang)
    )
    response = redirect(url_for("admin.home"), code=303)
    set_session_cookie(response, change.token)
    return response


@bp.post("/dang-xuat")
def logout() -> ResponseReturnValue:
    from admin.auth import SESSION_COOKIE

    response = redirect(url_for("admin.login"), code=303)
    if csrf_ok():
        with rt().db.writing() as s:
            staff_auth.end_session(s, request.cookies.get(SESSION_COOKIE), now=now_utc())
        clear_session_cookie(response)
        return response
    # A stale page: say so rather than pretend the sign-out happened.
    flash(
        Message(
            "Chưa đăng xuất được vì trang đã mở quá lâu. Xin bấm Đăng xuất một lần nữa.",
            "Not signed out: the page was open too long. Press Sign out once more.",
        ).in_(g.lang)
    )
    return redirect(url_for("admin.home"), code=303)


# --- home -----------------------------------------------------------------------------------------


@bp.get("/")
@staff_required()
def home() -> ResponseReturnValue:
    identity = _staff()
    if identity.sees_dossiers:
        return redirect(url_for("admin.inbox"))
    if identity.role == ADMIN:
        return redirect(url_for("admin.users"))
    return redirect(url_for("admin.report"))


# --- the queue and the dossier --------------------------------------------------------------------


@bp.get("/ho-so")
@staff_required(OFFICIAL, LEADER)
def inbox() -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    flt = workspace.QueueFilter.from_args(request.args)
    with runtime.db.reading() as s:
        page = workspace.inbox(s, identity, flt, calendar=runtime.calendar, now=now_utc())
    return _page(
        "admin/inbox.html", page=page, flt=flt, today=runtime.calendar.local_date(now_utc())
    )


def _dossier_response(
    code: str,
    *,
    status: int = 200,
    errors: dict[str, Message] | None = None,
    values: dict[str, str] | None = None,
    notice: Message | None = None,
    open_form: str = "",
) -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    g.personal_data = True
    page = workspace.open_dossier(
        runtime.db, identity, code, keys=runtime.keys, calendar=runtime.calendar, now=now_utc()
    )
    return _page(
        "admin/dossier.html",
        status,
        p=page,
        can_decide_exemption=identity.role == Role.OFFICIAL,
        errors=errors or {},
        values=values or {},
        notice=notice,
        open_form=open_form,
    )


def _refused(
    code: str, form: str, exc: workspace.ActionRefused, values: dict[str, str]
) -> ResponseReturnValue:
    """The dossier page again (422) with the refused form open, what was typed in it, and each
    problem beside its input (or the refusal as a notice when it concerns no input)."""
    errors = {f"{form}.{k}": v for k, v in exc.errors.items()}
    return _dossier_response(
        code,
        status=422,
        values=values,
        errors=errors,
        notice=None if errors else exc.message,
        open_form=form,
    )


@bp.get("/ho-so/<code>")
@staff_required(OFFICIAL, LEADER)
def dossier(code: str) -> ResponseReturnValue:
    return _dossier_response(code)


_DONE = {
    "claim": Message("Bạn đã nhận xử lý hồ sơ.", "You took the dossier."),
    "approve": Message("Đã phê duyệt hồ sơ.", "The dossier is approved."),
    "refuse": Message(
        "Đã từ chối hồ sơ; lý do đã được gửi tới người dân.",
        "The dossier is refused; the citizen sees the reason.",
    ),
    "request_supplement": Message(
        "Đã gửi yêu cầu bổ sung. Thời hạn giải quyết tạm dừng cho tới khi người dân bổ sung.",
        "More papers requested. The deadline is paused until the citizen answers.",
    ),
    "return_result": Message("Đã ghi nhận trả kết quả.", "The result is recorded as handed back."),
}


@bp.post("/ho-so/<code>/thao-tac")
@staff_required(OFFICIAL)
def act(code: str) -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    action = request.form.get("action", "")[:32]
    values = {"reason": request.form.get("reason", "")[:4000], "action": action}
    if not csrf_ok():
        return _dossier_response(
            code, status=422, values=values, notice=_STALE_FORM, open_form=action
        )
    try:
        with runtime.db.writing() as s:
            workspace.act(
                s,
                identity,
                code,
                action,
                expected_version=_version(),
                reason=values["reason"],
                keys=runtime.keys,
                calendar=runtime.calendar,
                now=now_utc(),
            )
    except workspace.Conflict as exc:
        return _dossier_response(code, status=409, notice=exc.message)
    except workspace.ActionRefused as exc:
        return _refused(code, action, exc, values)
    flash(_DONE.get(action, Message("Đã lưu.", "Saved.")).in_(g.lang))
    return redirect(url_for("admin.dossier", code=code), code=303)


@bp.post("/ho-so/<code>/xin-loi")
@staff_required(OFFICIAL, LEADER)
def apologise(code: str) -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    values = {
        "new_due": request.form.get("new_due", "")[:20],
        "apology_reason": request.form.get("reason", "")[:4000],
    }
    if not csrf_ok():
        return _dossier_response(
            code, status=422, values=values, notice=_STALE_FORM, open_form="apology"
        )
    try:
        with runtime.db.writing() as s:
            workspace.apologise(
                s,
                identity,
                code,
                expected_version=_version(),
                new_due=values["new_due"],
                reason=values["apology_reason"],
                keys=runtime.keys,
                calendar=runtime.calendar,
                now=now_utc(),
            )
    except workspace.Conflict as exc:
        return _dossier_response(code, status=409, notice=exc.message)
    except workspace.ActionRefused as exc:
        return _refused(code, "apology", exc, values)
    flash(
        Message(
            "Đã gửi thư xin lỗi và ngày hẹn mới; người dân thấy trên trang tra cứu hồ sơ.",
            "The apology and new date were sent; the citizen sees them on the status page.",
        ).in_(g.lang)
    )
    return redirect(url_for("admin.dossier", code=code), code=303)


@bp.post("/ho-so/<code>/giao-lai")
@staff_required(LEADER)
def reassign(code: str) -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    raw = request.form.get("to_user", "")
    values = {"to_user": raw[:12]}
    if not csrf_ok():
        return _dossier_response(
            code, status=422, values=values, notice=_STALE_FORM, open_form="reassign"
        )
    try:
        with runtime.db.writing() as s:
            workspace.reassign(
                s,
                identity,
                code,
                expected_version=_version(),
                to_user_id=typed_id(raw) or 0,
                now=now_utc(),
            )
    except workspace.Conflict as exc:
        return _dossier_response(code, status=409, notice=exc.message)
    except workspace.ActionRefused as exc:
        return _refused(code, "reassign", exc, values)
    flash(Message("Đã giao lại hồ sơ.", "The dossier was reassigned.").in_(g.lang))
    return redirect(url_for("admin.dossier", code=code), code=303)


@bp.get("/ho-so/<code>/tep/<public_id>")
@staff_required(OFFICIAL, LEADER)
def attachment(code: str, public_id: str) -> ResponseReturnValue:
    identity = _staff()
    runtime = rt()
    g.personal_data = True
    found = workspace.open_attachment(
        runtime.db,
        identity,
        code,
        public_id,
        keys=runtime.keys,
        store=FileStore(runtime.upload_dir),
        now=now_utc(),
    )
    if not found.intact:
        return _page("admin/attachment_tampered.html", 409, code=code)
    extension = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(
        found.content_type, "bin"
    )
    response = make_response(found.data)
    response.headers["Content-Type"] = found.content_type
    # A fixed ASCII name: the citizen's file name stays on the page, never in a header.
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{code}-{public_id[:8]}.{extension}"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- reports --------------------------------------------------------------------------------------


def _report() -> reports.Dashboard:
    identity = _staff()
    runtime = rt()
    now = now_utc()
    today = runtime.calendar.local_date(now)
    period = reports.Period.parse(request.args.get("tu"), request.args.get("den"), today=today)
    with runtime.db.reading() as s:
        commune = reports.report_commune(s, identity, request.args.get("xa") or None)
        return reports.dashboard(s, commune, period, calendar=runtime.calendar, now=now)


@bp.get("/bao-cao")
@staff_required(LEADER, ADMIN, PROVINCE)
def report() -> ResponseReturnValue:
    with rt().db.reading() as s:
        communes = reports.report_communes(s, _staff())
    return _page("admin/report.html", r=_report(), communes=communes)


@bp.get("/bao-cao/in")
@staff_required(LEADER, ADMIN, PROVINCE)
def report_print() -> ResponseReturnValue:
    return _page("admin/report_print.html", r=_report())


@bp.get("/bao-cao/<kind>.csv")
@staff_required(LEADER, ADMIN, PROVINCE)
def report_csv(kind: str) -> ResponseReturnValue:
    if kind not in ("thu-tuc", "ap-phich"):
        abort(404)
    r = _report()
    data = (
        reports.procedures_csv(r, g.lang) if kind == "thu-tuc" else reports.posters_csv(r, g.lang)
    )
    return Response(
        data,
        mimetype="text/csv",
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{reports.csv_filename(r, kind)}"',
        },
    )


# --- accounts (commune admin) ---------------------------------------------------------------------


def _offered() -> dict[str, Message]:
    identity = _staff()
    if identity.commune_id is None:
        raise OutOfScope("users", "role")
    with rt().db.reading() as s:
        return workspace.procedure_names(s, identity.commune_id)


@bp.get("/nguoi-dung")
@staff_required(ADMIN)
def users() -> ResponseReturnValue:
    with rt().db.reading() as s:
        rows = staff_auth.list_accounts(s, _staff())
    return _page("admin/users.html", rows=rows, offered=_offered())


def _account_values() -> dict[str, Any]:
    return {
        "username": request.form.get("username", "")[:64],
        "display_name": request.form.get("display_name", "")[:120],
        "role": request.form.get("role", "")[:16],
        "procedures": [c[:64] for c in request.form.getlist("procedures")][:200],
    }


@bp.route("/nguoi-dung/moi", methods=["GET", "POST"])
@staff_required(ADMIN)
def user_new() -> ResponseReturnValue:
    offered = _offered()
    if request.method == "GET":
        values = {"role": "official", "procedures": []}
        return _page("admin/user_form.html", offered=offered, values=values, user=None)
    values = _account_values()
    if not csrf_ok():
        return _page(
            "admin/user_form.html",
            422,
            offered=offered,
            values=values,
            user=None,
            notice=_STALE_FORM,
        )
    try:
        with rt().db.writing() as s:
            user, secret = staff_auth.create_account(
                s,
                _staff(),
                username=values["username"],
                role=values["role"],
                display_name=values["display_name"],
                procedures=values["procedures"],
                offered=set(offered),
                now=now_utc(),
            )
            username = user.username
    except staff_auth.AccountFormError as exc:
        return _page(
            "admin/user_form.html",
            422,
            offered=offered,
            values=values,
            user=None,
            errors=exc.errors,
        )
    return _page("admin/user_password.html", username=username, password=secret, created=True)


@bp.route("/nguoi-dung/<int:user_id>", methods=["GET", "POST"])
@staff_required(ADMIN)
def user_edit(user_id: int) -> ResponseReturnValue:
    identity = _staff()
    offered = _offered()
    with rt().db.reading() as s:
        user = staff_auth.account_in_scope(s, identity, user_id)
        row = next(r for r in staff_auth.list_accounts(s, identity) if r.user_id == user.id)
    if request.method == "GET":
        values = {
            "display_name": row.display_name,
            "role": row.role.value,
            "procedures": list(row.procedures),
        }
        return _page("admin/user_form.html", offered=offered, values=values, user=row)
    values = _account_values()
    if not csrf_ok():
        return _page(
            "admin/user_form.html",
            422,
            offered=offered,
            values=values,
            user=row,
            notice=_STALE_FORM,
        )
    try:
        with rt().db.writing() as s:
            staff_auth.update_account(
                s,
                identity,
                user_id,
                role=values["role"],
                display_name=values["display_name"],
                procedures=values["procedures"],
                offered=set(offered),
                now=now_utc(),
            )
    except staff_auth.AccountFormError as exc:
        return _page(
            "admin/user_form.html",
            422,
            offered=offered,
            values=values,
            user=row,
            errors=exc.errors,
        )
    flash(Message("Đã lưu tài khoản.", "The account is saved.").in_(g.lang))
    return redirect(url_for("admin.users"), code=303)


@bp.post("/nguoi-dung/<int:user_id>/trang-thai")
@staff_required(ADMIN)
def user_active(user_id: int) -> ResponseReturnValue:
    identity = _staff()
    if not csrf_ok():
        flash(_STALE_FORM.in_(g.lang))
        return redirect(url_for("admin.users"), code=303)
    active = request.form.get("active") == "1"
    try:
        with rt().db.writing() as s:
            staff_auth.set_account_active(s, identity, user_id, active=active, now=now_utc())
    except staff_auth.AccountFormError as exc:
        flash(next(iter(exc.errors.values())).in_(g.lang))
        return redirect(url_for("admin.users"), code=303)
    flash(
        (
            Message("Đã mở khóa tài khoản.", "The account is enabled.")
            if active
            else Message(
                "Đã khóa tài khoản; mọi phiên đăng nhập của tài khoản này đã kết thúc.",
                "The account is disabled; all its sessions have ended.",
            )
        ).in_(g.lang)
    )
    return redirect(url_for("admin.users"), code=303)


@bp.post("/nguoi-dung/<int:user_id>/mat-khau")
@staff_required(ADMIN)
def user_password(user_id: int) -> ResponseReturnValue:
    identity = _staff()
    if not csrf_ok():
        flash(_STALE_FORM.in_(g.lang))
        return redirect(url_for("admin.users"), code=303)
    with rt().db.writing() as s:
        user, secret = staff_auth.reset_account_password(s, identity, user_id, now=now_utc())
        username = user.username
    return _page("admin/user_password.html", username=username, password=secret, created=False)


@bp.post("/nguoi-dung/<int:user_id>/xac-thuc")
@staff_required(ADMIN)
def user_second_factor(user_id: int) -> ResponseReturnValue:
    identity = _staff()
    if not csrf_ok():
        flash(_STALE_FORM.in_(g.lang))
        return redirect(url_for("admin.users"), code=303)
    with rt().db.writing() as s:
        staff_auth.reset_account_second_factor(s, identity, user_id, now=now_utc())
    flash(
        Message(
            "Đã gỡ xác thực hai bước; người dùng sẽ cài lại ở lần đăng nhập tới.",
            "Two-step verification removed; the user sets it up again at the next sign-in.",
        ).in_(g.lang)
    )
    return redirect(url_for("admin.users"), code=303)


# --- the audit log --------------------------------------------------------------------------------


@bp.get("/nhat-ky")
@staff_required(ADMIN, LEADER, PROVINCE)
def audit_log() -> ResponseReturnValue:
    before = request.args.get("truoc", "")
    with rt().db.reading() as s:
        trail = reports.audit_trail(s, _staff(), before=typed_id(before))
    return _page("admin/audit.html", trail=trail)
