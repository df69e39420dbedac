"""Staff pages for fees (mounted at /can-bo/le-phi): views only translate HTTP.

- `/`            fees still owed; an official records a fee paid at the desk (audited)
- `/da-nop`      POST: record a fee as paid
- `/tai-khoan`   the commune admin sets (or removes) the collecting account citizens are shown
- `/sao-ke`      the commune admin uploads a bank statement (CSV) and sees past reconciliations
- `/sao-ke/<id>` one reconciliation: what matched, what did not, and why

Every route passes the staff gate (`admin.views.signed_in_staff`, from admin.auth). Who may do
what is decided by `core.payments` from the signed-in `StaffIdentity`; a role with no business on a
page, or anything of another commune, raises `OutOfScope`, which the staff side's app-wide handler
audits and answers with a 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf
from sqlalchemy.exc import IntegrityError

from admin.auth import csrf_ok, guarded_staff, now_utc, rt
from admin.views import signed_in_staff
from core import payments
from core.deadlines import LOCAL_TZ
from core.posters import qr_matrix, qr_svg
from core.reconciliation import MAX_STATEMENT_BYTES, Outcome, StatementError, vnd
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message
from core.vietqr import BANKS, build_payload, check_collecting_account
from storage.models import Commune

payments_bp = Blueprint("staff_payments", __name__)


@payments_bp.before_request
def _guard() -> ResponseReturnValue | None:
    """Only a fully signed-in staff member of a commune gets past here."""
    g.personal_data = True  # transfer notes, dossier codes: never cached
    staff = signed_in_staff()
    if not isinstance(staff, StaffIdentity):
        return staff  # the sign-in redirect (or the error) the staff guard chose
    if staff.commune_id is None:
        raise OutOfScope(f"route:{request.endpoint}", "role")  # a province admin: no commune
    return None


@payments_bp.after_request
def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


def _refuse() -> OutOfScope:
    return OutOfScope(f"route:{request.endpoint}", "role")


def _commune(s: Any) -> Commune:
    commune = s.get(Commune, guarded_staff().commune_id)
    if commune is None:
        abort(404)
    return commune


STALE_PAGE = Message(
    "Trang đã mở quá lâu nên chưa thực hiện được: xin làm lại một lần nữa.",
    "The page was open too long, so nothing was done: please try once more.",
)
NO_DECISION = Message(
    "Chưa ghi nhận: xin bấm «Xác nhận được miễn» hoặc «Không đủ điều kiện miễn».",
    "Nothing recorded: press “Confirm the exemption” or “Exemption does not hold”.",
)


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    html = render_template(
        template,
        staff=guarded_staff(),
        csrf_token=generate_csrf(),
        as_local=lambda at: (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(LOCAL_TZ),
        **context,
    )
    return html, status


# --- Fees owed, and paid at the desk -----------------------------------------------------------


def _index(
    *,
    errors: dict[str, Message] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    staff = guarded_staff()
    with rt().db.reading() as s:
        commune = _commune(s)
        owed = payments.owed_fees(s, commune.id, procedures=payments.visible_procedures(staff))
    names = {d.code: d.name.en if g.lang == "en" else d.name.vi for d in rt().catalog}
    return _page(
        "admin/payments.html",
        status,
        commune=commune,
        owed=owed,
        procedure_names=names,
        can_mark=payments.may_mark_paid(staff),
        errors=errors or {},
        values=values or {},
    )


@payments_bp.get("/")
def index() -> ResponseReturnValue:
    return _index()


@payments_bp.post("/da-nop")
def mark_paid() -> ResponseReturnValue:
    staff = guarded_staff()
    values = {"code": request.form.get("code", "")[:40], "note": request.form.get("note", "")[:200]}
    if not csrf_ok():
        return _index(errors={"code": STALE_PAGE}, values=values, status=400)
    if not payments.may_mark_paid(staff):
        raise _refuse()
    if not values["code"].strip():
        return _index(
            errors={"code": Message("Xin nhập mã hồ sơ.", "Enter the dossier code.")},
            values=values,
            status=422,
        )
    try:
        with rt().db.writing() as s:
            dossier = payments.dossier_for_staff(s, staff, values["code"])
            payments.mark_fee_paid(
                s,
                dossier=dossier,
                staff_id=staff.user_id,
                actor=staff.actor,
                now=now_utc(),
                note=values["note"],
            )
            code, amount = dossier.code, dossier.fee_amount
    except payments.NotFound:
        error = Message(
            "Không tìm thấy hồ sơ có mã này trong các hồ sơ bạn phụ trách: xin kiểm tra lại mã.",
            "No dossier with this code among those you handle: check the code.",
        )
        return _index(errors={"code": error}, values=values, status=404)
    except payments.PaymentRefused as exc:
        return _index(errors={"code": exc.message}, values=values, status=409)
    flash(
        Message(
            f"Đã ghi nhận hồ sơ {code} nộp lệ phí {vnd(amount)}.",
            f"Dossier {code}: fee of {vnd(amount)} recorded as paid.",
        ).in_(g.lang)
    )
    return redirect(url_for("staff_payments.index"), code=303)


@payments_bp.post("/mien-le-phi")
def exemption() -> ResponseReturnValue:
    """Confirm or refuse a declared fee exemption, from the dossier page."""
    staff = guarded_staff()
    code = request.form.get("code", "")[:40]
    decision = request.form.get("decision")
    confirm = decision == "confirm"
    back = url_for("admin.dossier", code=code)
    if not csrf_ok():
        flash(STALE_PAGE.in_(g.lang))
        return redirect(back, code=303)
    if decision not in ("confirm", "refuse"):
        # Only one of the page's two buttons decides; anything else changes nothing.
        flash(NO_DECISION.in_(g.lang))
        return redirect(back, code=303)
    if not payments.may_mark_paid(staff):
        raise _refuse()
    try:
        with rt().db.writing() as s:
            dossier = payments.dossier_for_staff(s, staff, code)
            payments.decide_exemption(
                s,
                dossier=dossier,
                confirm=confirm,
                staff_id=staff.user_id,
                actor=staff.actor,
                now=now_utc(),
            )
            amount = dossier.fee_amount
    except payments.NotFound:
        abort(404)
    except payments.PaymentRefused as exc:
        flash(exc.message.in_(g.lang))
        return redirect(back, code=303)
    if confirm:
        done = Message(
            f"Hồ sơ {code}: đã xác nhận miễn lệ phí.", f"Dossier {code}: fee exemption confirmed."
        )
    else:
        done = Message(
            f"Hồ sơ {code}: không đủ điều kiện miễn; lệ phí phải nộp {vnd(amount)}.",
            f"Dossier {code}: exemption refused; the fee owed is {vnd(amount)}.",
        )
    flash(done.in_(g.lang))
    return redirect(back, code=303)


# --- The collecting account ---------------------------------------------------------------------


def _account_page(
    commune: Commune,
    *,
    errors: dict[str, Message] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    current = payments.collecting_account(commune)
    check_qr = ""
    if current is not None:
        # A static code (no amount): scanning it shows the account holder's name as the bank
        # knows it, so the admin checks the account without paying anything.
        check_qr = qr_svg(
            qr_matrix(
                build_payload(
                    bin=current.bin,
                    account=current.account,
                    amount=None,
                    purpose="KIEM TRA TAI KHOAN",
                )
            ),
            module_px=5,
        )
    if values is None:
        values = (
            {"bin": current.bin, "account": current.account, "name": current.name}
            if current
            else {}
        )
    return _page(
        "admin/payments_account.html",
        status,
        commune=commune,
        current=current,
        check_qr_svg=check_qr,
        banks=sorted(BANKS.items(), key=lambda item: item[1]),
        errors=errors or {},
        values=values,
    )


@payments_bp.route("/tai-khoan", methods=["GET", "POST"])
def account() -> ResponseReturnValue:
    staff = guarded_staff()
    if not payments.may_manage(staff):
        raise _refuse()
    if request.method == "GET":
        with rt().db.reading() as s:
            return _account_page(_commune(s))
    form = request.form
    values = {
        "bin": form.get("bin", "")[:10],
        "account": form.get("account", "")[:40],
        "name": form.get("name", "")[:80],
        "confirm": form.get("confirm", ""),
    }
    if not csrf_ok():
        with rt().db.reading() as s:
            return _account_page(
                _commune(s), errors={"confirm": STALE_PAGE}, values=values, status=400
            )
    if form.get("action") == "remove":
        with rt().db.writing() as s:
            payments.set_collecting_account(
                s, commune=_commune(s), account=None, actor=staff.actor, now=now_utc()
            )
        flash(
            Message(
                "Đã ngừng hiển thị tài khoản: biên nhận không còn mã VietQR.",
                "The account is no longer shown: receipts carry no VietQR.",
            ).in_(g.lang)
        )
        return redirect(url_for("staff_payments.account"), code=303)
    checked, errors = check_collecting_account(values["bin"], values["account"], values["name"])
    if values["confirm"] != "yes":
        errors["confirm"] = Message(
            "Xin đánh dấu ô xác nhận đây là tài khoản của cơ quan.",
            "Tick the box confirming this is the office's account.",
        )
    if errors or checked is None:
        with rt().db.reading() as s:
            return _account_page(_commune(s), errors=errors, values=values, status=422)
    with rt().db.writing() as s:
        payments.set_collecting_account(
            s, commune=_commune(s), account=checked, actor=staff.actor, now=now_utc()
        )
    flash(
        Message(
            f"Đã lưu tài khoản {checked.name} ({checked.bank_name}). Hãy quét mã kiểm tra "
            "bên dưới.",
            f"Saved the account {checked.name} ({checked.bank_name}). Scan the check code below.",
        ).in_(g.lang)
    )
    return redirect(url_for("staff_payments.account"), code=303)


# --- Bank statements ----------------------------------------------------------------------------


def _statements_page(
    commune: Commune,
    uploads: list[Any],
    *,
    errors: dict[str, Message] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return _page(
        "admin/payments_statements.html",
        status,
        commune=commune,
        uploads=uploads,
        errors=errors or {},
    )


@payments_bp.route("/sao-ke", methods=["GET", "POST"])
def statements() -> ResponseReturnValue:
    staff = guarded_staff()
    if not payments.may_manage(staff):
        raise _refuse()
    runtime = rt()

    def again(error: Message, status: int) -> ResponseReturnValue:
        with runtime.db.reading() as s:
            commune = _commune(s)
            return _statements_page(
                commune,
                payments.statement_uploads(s, commune.id),
                errors={"statement": error},
                status=status,
            )

    if request.method == "GET":
        with runtime.db.reading() as s:
            commune = _commune(s)
            return _statements_page(commune, payments.statement_uploads(s, commune.id))
    if not csrf_ok():
        return again(STALE_PAGE, 400)
    upload = request.files.get("statement")
    if upload is None or not upload.filename:
        return again(Message("Xin chọn tệp sao kê.", "Choose the statement file."), 422)
    data = upload.stream.read(MAX_STATEMENT_BYTES + 1)
    # Two uploads at once naming the same transfer: the second meets the first's rows on the
    # unique bank reference, and one retry then sees them as duplicates.
    for attempt in (1, 2):
        try:
            with runtime.db.writing() as s:
                done = payments.upload_statement(
                    s,
                    commune=_commune(s),
                    data=data,
                    staff_id=staff.user_id,
                    actor=staff.actor,
                    keyring=runtime.keys.sealing,
                    now=now_utc(),
                )
                upload_id, created = done.upload.id, done.created
            break
        except StatementError as exc:
            return again(exc.message, 422)
        except IntegrityError:
            if attempt == 2:
                raise
    if created:
        flash(Message("Đã đối soát sao kê.", "The statement was reconciled.").in_(g.lang))
    else:
        flash(
            Message(
                "Sao kê này đã được tải lên trước đây: không có gì thay đổi.",
                "This statement was uploaded before: nothing changed.",
            ).in_(g.lang)
        )
    return redirect(url_for("staff_payments.statement", upload_id=upload_id), code=303)


# Outcomes grouped as the page shows them: what needs a person first.
REPORT_GROUPS: tuple[tuple[Message, frozenset[Outcome]], ...] = (
    (
        Message("Cần cán bộ xem", "For an official to look at"),
        frozenset(o for o in Outcome if o.needs_review),
    ),
    (
        Message("Khớp, đã ghi nhận nộp lệ phí", "Matched, fee recorded as paid"),
        frozenset({Outcome.MATCHED}),
    ),
    (
        Message("Trùng hoặc bỏ qua", "Duplicates and ignored lines"),
        frozenset({Outcome.DUPLICATE, Outcome.NOT_CREDIT}),
    ),
)


@payments_bp.get("/sao-ke/<int:upload_id>")
def statement(upload_id: int) -> ResponseReturnValue:
    staff = guarded_staff()
    if not payments.may_manage(staff):
        raise _refuse()
    runtime = rt()
    with runtime.db.reading() as s:
        commune = _commune(s)
        upload = payments.statement_upload(s, commune.id, upload_id)
        lines = payments.upload_report(s, upload, runtime.keys.sealing)
    groups = [(title, [r for r in lines if r.outcome in kinds]) for title, kinds in REPORT_GROUPS]
    return _page("admin/payments_statement.html", commune=commune, upload=upload, groups=groups)
