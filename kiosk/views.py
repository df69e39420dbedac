"""The citizen's side, over HTTP: poster → form → receipt → status. Views only translate HTTP."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf, validate_csrf
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms.validators import ValidationError

from core import posters as poster_tokens
from core import services
from core.dossier import state_label
from core.signing import make_receipt, verify_receipt
from core.text import Message
from core.uploads import UploadLimits, UploadRejected, inspect_upload
from core.validation import validate
from kiosk import form_token
from procedures.catalog import definition_to_json
from procedures.schema import FieldKind
from storage.files import FileStore
from storage.runtime import Runtime

bp = Blueprint("kiosk", __name__)


STATUS_LIMIT_PER_IP = (20, 600)  # 20 lookups per 10 minutes per address
STATUS_LIMIT_PER_CODE = (10, 3600)  # 10 tries per hour on one dossier code


def rt() -> Runtime:
    runtime: Runtime = current_app.extensions["kiosk"]
    return runtime


def now_utc() -> datetime:
    return datetime.now(UTC)


def client_address() -> str:
    return request.remote_addr or "unknown"


# --- Home ---------------------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    with rt().db.reading() as s:
        communes = services.list_communes(s)
        if len(communes) == 1:
            return redirect(url_for("kiosk.commune_home", slug=communes[0].slug))
        return render_template("kiosk/communes.html", communes=communes, commune=None)


@bp.get("/x/<slug>")
def commune_home(slug: str) -> ResponseReturnValue:
    with rt().db.reading() as s:
        commune = _commune_or_404(s, slug)
        offered = services.offered_procedures(s, commune)
        return render_template("kiosk/commune.html", commune=commune, procedures=offered)


def _commune_or_404(s: Any, slug: str) -> Any:
    try:
        return services.commune_by_slug(s, slug)
    except services.NotFound:
        abort(404)


@bp.get("/healthz")
def health() -> ResponseReturnValue:
    """For the load balancer: the database answers a trivial query."""
    from sqlalchemy import text

    with rt().db.reading() as s:
        s.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


# --- The catalog as JSON -------------------------------------------------------------------------


@bp.get("/api/v1/procedures")
def api_procedures() -> ResponseReturnValue:
    catalog = rt().catalog
    return jsonify({"procedures": [definition_to_json(d) for d in catalog]})


@bp.get("/api/v1/procedures/<code>")
def api_procedure(code: str) -> ResponseReturnValue:
    defn = rt().catalog.get(code)
    if defn is None:
        abort(404)
    return jsonify(definition_to_json(defn))


# --- The form ------------------------------------------------------------------------------------


def _typed() -> dict[str, str]:
    """What the citizen typed into the posted form (not the token nor the draft id)."""
    return {k: v for k, v in request.form.items() if k not in ("csrf_token", "draft")}


def _new_draft() -> str:
    return secrets.token_urlsafe(24)


def _render_form(
    commune: Any,
    offered: services.OfferedProcedure,
    *,
    values: dict[str, str],
    errors: dict[str, Message],
    files: dict[str, list[Any]],
    draft: str,
    poster: Any = None,
    poster_token: str = "",
    notice: Message | None = None,
    status: int = 200,
    landing: bool = False,
) -> ResponseReturnValue:
    g.personal_data = True
    html = render_template(
        "kiosk/form.html",
        commune=commune,
        offered=offered,
        defn=offered.definition,
        values=values,
        errors=errors,
        files=files,
        draft=draft,
        poster=poster,
        poster_token=poster_token,
        notice=notice,
        landing=landing,
        consent_version=services.CONSENT_VERSION,
        csrf_token=form_token.issue(rt().keys.secret_key, draft, time.time()),
        FieldKind=FieldKind,
    )
    return html, status


# The commune and procedure each form was last served with, in this worker (one map per app).
# Only for when the database stops answering in the middle of a submission: the form then comes
# back from these with everything the citizen typed (503, Retry-After) instead of a bare page.
_LAST_OFFER_MAX = 20_000  # every procedure of every commune of a large province


def _last_offers() -> dict[tuple[str, str], tuple[Any, services.OfferedProcedure]]:
    found: dict[tuple[str, str], tuple[Any, services.OfferedProcedure]]
    found = current_app.extensions.setdefault("kiosk_last_offer", {})
    return found


def _remember_offer(slug: str, code: str, commune: Any, offered: services.OfferedProcedure) -> None:
    # commune_offer's commune belongs to no session, so no failing session can expire it.
    offers = _last_offers()
    if len(offers) >= _LAST_OFFER_MAX:
        offers.clear()
    offers[(slug, code)] = (commune, offered)


DATABASE_DOWN = Message(
    "Hệ thống tạm thời chưa lưu được hồ sơ. Thông tin bạn nhập vẫn còn đây: xin đợi ít phút rồi "
    "bấm Gửi hồ sơ một lần nữa (nếu có tệp, xin chọn lại tệp). Hồ sơ sẽ không bị gửi hai lần.",
    "The service cannot store the dossier right now. What you typed is still here: please wait a "
    "few minutes and press Send once more (choose your files again, if any). It will not be sent "
    "twice.",
)


def form_while_database_down() -> ResponseReturnValue | None:
    """The citizen's form again, with what they typed, when the database failed under a
    submission (kiosk.errors calls this); None when this request was no submission."""
    if request.endpoint != "kiosk.submit" or not request.view_args:
        return None
    cached = _last_offers().get((request.view_args["slug"], request.view_args["code"]))
    if cached is None:
        return None
    commune, offered = cached
    draft = request.form.get("draft", "")
    values = _typed()
    return _render_form(
        commune,
        offered,
        values=values,
        errors={},
        files={},
        draft=draft if services.valid_draft(draft) else _new_draft(),
        poster_token=request.form.get("poster", "")[:64],
        notice=DATABASE_DOWN,
        status=503,
    )


@bp.get("/x/<slug>/<code>")
def form(slug: str, code: str) -> ResponseReturnValue:
    with rt().db.reading(snapshot=False) as s:
        try:
            commune, offered = services.commune_offer(s, slug, code)
        except services.NotFound:
            abort(404)
        _remember_offer(slug, code, commune, offered)
        return _render_form(commune, offered, values={}, errors={}, files={}, draft=_new_draft())


def _poster_from_token(s: Any, token: str) -> Any:
    if not token:
        return None
    found = services.poster_by_token(s, token, rt().keys.poster_keys)
    return found.poster if found is not None and found.usable(now_utc()) else None


TOO_MANY_FILES = Message(
    "Đã đủ số tệp cho phép. Xin bỏ bớt tệp trước khi gửi thêm.",
    "Enough files are attached. Remove some before adding more.",
)


def _accept_uploads(
    runtime: Runtime,
    commune: Any,
    defn: Any,
    draft: str,
    errors: dict[str, Message],
    *,
    now: datetime,
    already: int,
) -> int:
    """Check and keep every paper sent with this request, each in its own transaction, so an
    accepted paper stays with the draft even when the rest of the form comes back with errors.
    A refused file puts its reason in `errors` under its field. Returns how many were kept."""
    store = FileStore(runtime.upload_dir)
    added = 0
    for fd in defn.fields:
        if fd.kind != FieldKind.FILE:
            continue
        for upload in request.files.getlist(fd.name):
            if not upload or not upload.filename:
                continue
            if already + added >= services.MAX_FILES_PER_DRAFT:
                errors[fd.name] = TOO_MANY_FILES
                break
            try:
                accepted = inspect_upload(
                    upload.stream, filename=upload.filename, limits=UploadLimits()
                )
            except UploadRejected as exc:
                errors[fd.name] = exc.reason
                continue
            with runtime.db.writing() as s:
                services.accept_upload(
                    s,
                    commune=commune,
                    draft=draft,
                    field_name=fd.name,
                    accepted=accepted,
                    store=store,
                    keyring=runtime.keys.sealing,
                    now=now,
                )
            added += 1
    return added


@bp.post("/x/<slug>/<code>")
def submit(slug: str, code: str) -> ResponseReturnValue:
    runtime = rt()
    keys = runtime.keys
    now = now_utc()
    lang = g.lang
    draft = request.form.get("draft", "")
    if not services.valid_draft(draft):
        draft = _new_draft()
    raw = _typed()
    csrf_ok = form_token.valid(
        keys.secret_key,
        draft,
        request.form.get("csrf_token", ""),
        now.timestamp(),
        max_age=current_app.config["WTF_CSRF_TIME_LIMIT"],
        fetch_site=request.headers.get("Sec-Fetch-Site"),
    )
    store = FileStore(runtime.upload_dir)
    errors: dict[str, Message] = {}
    # One read for everything the answer may need (the offer, the draft's papers); read again
    # only if this request changes the draft's files. Whether this draft was already stored (a
    # double tap, a retry after a lost answer) is read only when the answer would not be a
    # receipt anyway: the draft's unique key refuses a second copy. The reads and the write take
    # one pooled connection on PostgreSQL (Database.submission).
    with runtime.db.submission() as connections:
        connection = connections.reads
        try:
            commune, offered, atts = services.offer_and_papers(connection, slug, code, draft)
        except services.NotFound:
            abort(404)
        _remember_offer(slug, code, commune, offered)
        poster_token = request.form.get("poster", "")[:64]
        if poster_token:
            with Session(bind=connection) as s:
                poster = _poster_from_token(s, poster_token)
        else:
            poster = None
        defn = offered.definition

        if csrf_ok:
            # Files first, each in its own transaction: an accepted paper is kept even if the rest
            # of the form comes back with errors, and is not asked for again.
            removed = set(request.form.getlist("remove_file")) & {a.public_id for a in atts}
            count_start = poster is not None and request.form.get("started") != "1"
            if removed or count_start:
                with runtime.db.writing() as s:
                    services.drop_draft_attachments(s, commune, draft, removed, store)
                    if count_start:
                        services.count_poster(
                            s,
                            poster.id,
                            commune.id,
                            runtime.calendar.local_date(now),
                            "forms_started",
                        )
            added = _accept_uploads(
                runtime, commune, defn, draft, errors, now=now, already=len(atts) - len(removed)
            )
            changed = bool(removed) or added > 0
            if changed:
                with runtime.db.reading(snapshot=False) as s:
                    atts = services.draft_papers(s, commune.id, draft)
        refs = services.file_refs(atts, keys.sealing)

        def stored_already() -> Any:
            """The dossier this draft was stored as, if it was: a double tap or a retry after a lost
            answer gets that receipt, not the form again (its papers now belong to the dossier)."""
            with runtime.db.reading(snapshot=False) as s:
                return services.stored_for_draft(s, commune.id, draft)

        form_kwargs = dict(
            values=raw, files=refs, draft=draft, poster=poster, poster_token=poster_token
        )
        if not csrf_ok:
            if (done_before := stored_already()) is not None:
                return _to_receipt(commune.slug, done_before, keys)
            notice = Message(
                "Trang đã mở quá lâu nên chưa gửi được. Thông tin bạn nhập vẫn còn: xin kiểm tra "
                "lại, chọn lại tệp (nếu có) và bấm Gửi hồ sơ một lần nữa.",
                "The page was open too long, so it was not sent. What you typed is still here: "
                "check it, choose your files again (if any) and press Send once more.",
            )
            return _render_form(
                commune, offered, errors={}, notice=notice, status=422, **form_kwargs
            )

        today = runtime.calendar.local_date(now)
        result = validate(defn, raw, refs, today=today)
        errors = {**result.errors, **errors}
        if request.form.get("consent") != services.CONSENT_VERSION:
            errors["consent"] = Message(
                "Xin đánh dấu ô xác nhận đã đọc thông báo về xử lý dữ liệu cá nhân.",
                "Please tick the box confirming you have read the personal data notice.",
            )
        if errors:
            if (done_before := stored_already()) is not None:
                return _to_receipt(commune.slug, done_before, keys)
            return _render_form(commune, offered, errors=errors, status=422, **form_kwargs)

        # Sealed and signed before the write, which then holds no lock while this process works.
        # (The connection is read only when this worker has not signed for the commune yet.)
        submission = services.prepare_submission(
            connection,
            commune=commune,
            offered=offered,
            cleaned=result.cleaned,
            draft=draft,
            poster_id=poster.id if poster is not None else None,
            lang=lang,
            keys=keys,
            calendar=runtime.calendar,
            now=now,
            papers=atts,
        )
        try:
            with connections.storing() as writing:
                done = services.store_submission(writing, submission)
                stored: Any = done.stored
                secret: str | None = done.secret
        except services.DraftChanged:
            # A paper was removed (from another tab) or taken by a first copy of this submission
            # between our read and the write: the first copy's receipt, or the form again with the
            # papers there now; nothing typed is lost.
            if (done_before := stored_already()) is not None:
                return _to_receipt(commune.slug, done_before, keys)
            with runtime.db.reading(snapshot=False) as s:
                form_kwargs["files"] = services.file_refs(
                    services.draft_papers(s, commune.id, draft), keys.sealing
                )
            return _render_form(
                commune, offered, errors={}, notice=PAPERS_CHANGED, status=409, **form_kwargs
            )
        except IntegrityError:
            # The same draft was stored meanwhile (a double tap, a retry): the draft's unique key
            # refused the second copy. Give the receipt of the first.
            stored, secret = stored_already(), None
            if stored is None:
                raise
        return _to_receipt(commune.slug, stored, keys, secret)


PAPERS_CHANGED = Message(
    "Giấy tờ đính kèm vừa thay đổi (có thể từ một trang khác) nên hồ sơ chưa được gửi. Thông tin "
    "bạn nhập vẫn còn: xin xem lại giấy tờ bên dưới rồi bấm Gửi hồ sơ một lần nữa.",
    "The attached papers changed meanwhile (perhaps from another page), so the dossier was not "
    "sent. What you typed is still here: check the papers below and press Send once more.",
)


# The receipt's dossier and secret go to the receipt page in a cookie of their own, sent only to
# that page and its download (path), never in a URL. The secret is what proves the cookie: a made
# up one finds no dossier. Not in the session cookie, which every page receives and whose signed,
# compressed form would be rewritten for it (a tenth of a submission's instructions).
RECEIPT_COOKIE = "bien_nhan"


def _to_receipt(
    slug: str, dossier: Any, keys: Any, secret: str | None = None
) -> ResponseReturnValue:
    """303 to the receipt page, with the receipt's cookie. `secret`: the dossier's citizen
    secret when the caller already has it (a submission just stored), else derived here."""
    if secret is None:
        secret = services.citizen_secret(
            keys.secret_key, dossier.commune_id, dossier.idempotency_key
        )
    page = _receipt_page(slug)
    response = redirect(page, code=303)
    response.set_cookie(
        RECEIPT_COOKIE,
        f"{dossier.public_id}.{secret}",
        path=page,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


# The receipt page's path by (application root, commune slug): url_for took a fiftieth of a
# submission's time under load (py-spy on the workers). Slugs come from communes found in the
# database, so this holds at most one path per commune.
_receipt_pages: dict[tuple[str, str], str] = {}


def _receipt_page(slug: str) -> str:
    key = (request.script_root, slug)
    page = _receipt_pages.get(key)
    if page is None:
        page = _receipt_pages[key] = url_for("kiosk.receipt", slug=slug)
    return page


def _held_receipt() -> tuple[str, str] | None:
    """The dossier and secret of the receipt this browser was given, if any."""
    public_id, _, secret = request.cookies.get(RECEIPT_COOKIE, "").partition(".")
    if not public_id or not secret or len(public_id) > 64 or len(secret) > 64:
        return None
    return public_id, secret


@bp.get("/x/<slug>/bien-nhan")
def receipt(slug: str) -> ResponseReturnValue:
    g.personal_data = True
    held = _held_receipt()
    if held is None:
        return redirect(url_for("kiosk.status_lookup"))
    runtime = rt()
    with runtime.db.reading() as s:
        view = services.receipt_view(s, *held, public_base_url=runtime.public_base_url)
        if view is None or view.commune.slug != slug:
            abort(404)
        return render_template("kiosk/receipt.html", commune=view.commune, r=view)


@bp.get("/x/<slug>/bien-nhan/bien-nhan.json")
def receipt_download(slug: str) -> ResponseReturnValue:
    g.personal_data = True
    held = _held_receipt()
    if held is None:
        abort(404)
    runtime = rt()
    with runtime.db.reading() as s:
        view = services.receipt_view(s, *held, public_base_url=runtime.public_base_url)
        if view is None or view.commune.slug != slug:
            abort(404)
        key = services.commune_signing_key(s, view.dossier.commune_id, runtime.keys.sealing)
        data = make_receipt(view.receipt_payload, key)
    return (
        data,
        200,
        {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Disposition": f'attachment; filename="bien-nhan-{view.dossier.code}.json"',
        },
    )


# --- Following a dossier ------------------------------------------------------------------------


def _rate_ok(kind: str, value: str, limit: tuple[int, int]) -> bool:
    from storage.ratelimit import Limit, bucket_name

    return rt().rate.hit(bucket_name(kind, value), Limit(*limit), now_utc())


@bp.route("/tra-cuu", methods=["GET", "POST"])
def status_lookup() -> ResponseReturnValue:
    g.personal_data = True
    code = (request.values.get("ma") or "").strip()
    secret = (request.values.get("k") or "").strip()
    if request.method == "GET" and not (code and secret):
        return render_template("kiosk/lookup.html", commune=None, code=code, error=None)
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            err = Message(
                "Trang đã mở quá lâu. Xin bấm Tra cứu một lần nữa.",
                "The page was open too long. Please press Look up again.",
            )
            return render_template("kiosk/lookup.html", commune=None, code=code, error=err), 422
    if not _rate_ok("status:ip", client_address(), STATUS_LIMIT_PER_IP) or not _rate_ok(
        "status:code", services.normalise_code(code), STATUS_LIMIT_PER_CODE
    ):
        from kiosk.errors import error_page

        return error_page(429)
    with rt().db.reading() as s:
        status = services.lookup_status(s, code, secret)
        if status is None:
            err = Message(
                "Không tìm thấy hồ sơ với mã và mã bí mật này. Xin kiểm tra lại hai mã trên "
                "giấy biên nhận.",
                "No dossier matches this code and secret. Please check both on your receipt.",
            )
            return render_template("kiosk/lookup.html", commune=None, code=code, error=err), 404
        session["status"] = {"code": status.dossier.code, "secret": secret}
    return redirect(url_for("kiosk.status_page"), code=303)


@bp.get("/tra-cuu/ho-so")
def status_page() -> ResponseReturnValue:
    g.personal_data = True
    held = session.get("status")
    if not held:
        return redirect(url_for("kiosk.status_lookup"))
    runtime = rt()
    with runtime.db.reading() as s:
        status = services.lookup_status(s, held["code"], held["secret"])
        if status is None:
            session.pop("status", None)
            return redirect(url_for("kiosk.status_lookup"))
        return render_template(
            "kiosk/status.html",
            commune=status.commune,
            st=status,
            state_label=state_label,
            payment=services.payment_view(status.dossier, status.commune),
        )


# --- Posters -------------------------------------------------------------------------------------


@bp.get("/q/<token>")
def poster_landing(token: str) -> ResponseReturnValue:
    runtime = rt()
    now = now_utc()
    with runtime.db.writing() as s:
        found = services.poster_by_token(s, token[:64], runtime.keys.poster_keys)
        if found is None:
            return render_template("kiosk/poster_warning.html", commune=None, reason="forged"), 404
        if not found.usable(now):
            reason = "revoked" if found.poster.revoked_at else "expired"
            if not found.commune.active:
                reason = "moved"
            return (
                render_template(
                    "kiosk/poster_warning.html",
                    commune=found.commune,
                    reason=reason,
                    successor=found.successor,
                ),
                410,
            )
        services.count_poster(
            s, found.poster.id, found.commune.id, runtime.calendar.local_date(now), "scans"
        )
        try:
            offered = services.offered_procedure(s, found.commune, found.poster.code)
        except services.NotFound:
            return (
                render_template(
                    "kiosk/poster_warning.html", commune=found.commune, reason="disabled"
                ),
                410,
            )
        return _render_form(
            found.commune,
            offered,
            values={},
            errors={},
            files={},
            draft=_new_draft(),
            poster=found.poster,
            poster_token=token,
            landing=True,
        )


@bp.route("/kiem-tra", methods=["GET", "POST"])
def check_poster() -> ResponseReturnValue:
    code = (request.values.get("ma") or "").strip()[:40]
    result = None
    if code:
        if not _rate_ok("poster-check:ip", client_address(), (60, 600)):
            from kiosk.errors import error_page

            return error_page(429)
        token = poster_tokens.parse_short_code(code)
        with rt().db.reading() as s:
            found = services.poster_by_token(s, token, rt().keys.poster_keys) if token else None
            result = services.poster_check(found, now_utc())
            return render_template(
                "kiosk/check_poster.html", commune=None, code=code, result=result
            )
    return render_template("kiosk/check_poster.html", commune=None, code=code, result=None)


@bp.route("/xac-minh", methods=["GET", "POST"])
def verify_receipt_page() -> ResponseReturnValue:
    """Public check of a downloaded signed receipt."""
    check = None
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            abort(400)
        upload = request.files.get("receipt")
        data = upload.stream.read(64 * 1024) if upload else b""
        with rt().db.reading() as s:
            check = verify_receipt(data, services.all_verify_keys(s))
    return render_template("kiosk/verify.html", commune=None, check=check)


# --- Supplement ----------------------------------------------------------------------------------


def _held_status(s: Any) -> services.DossierStatus | None:
    held = session.get("status")
    if not held:
        return None
    return services.lookup_status(s, held["code"], held["secret"])


@bp.route("/tra-cuu/bo-sung", methods=["GET", "POST"])
def supplement() -> ResponseReturnValue:
    """Answer the office's request for a supplement: correct fields, add papers, say why."""
    g.personal_data = True
    runtime = rt()
    keys = runtime.keys
    with runtime.db.reading() as s:
        status = _held_status(s)
        if status is None:
            return redirect(url_for("kiosk.status_lookup"))
        dossier, commune = status.dossier, status.commune
        defn = services.supplement_definition(
            services.definition_by_version_id(s, dossier.procedure_version_id)
        )
        request_note = next(
            (st.note for st in reversed(status.steps) if st.state == "supplement_requested"), ""
        )
    if dossier.state != "supplement_requested":
        return redirect(url_for("kiosk.status_page"))
    values = _typed()
    draft = request.form.get("draft", "")
    if not services.valid_draft(draft):
        draft = _new_draft()
    errors: dict[str, Message] = {}
    notice = None
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
            csrf_ok = True
        except ValidationError:
            csrf_ok = False
            notice = Message(
                "Trang đã mở quá lâu nên chưa gửi được. Thông tin bạn nhập vẫn còn: xin bấm Gửi "
                "bổ sung một lần nữa.",
                "The page was open too long, so it was not sent. What you typed is still here: "
                "press Send once more.",
            )
        now = now_utc()
        if csrf_ok:
            with runtime.db.reading() as s:
                already = len(services.draft_papers(s, commune.id, draft))
            _accept_uploads(runtime, commune, defn, draft, errors, now=now, already=already)
        with runtime.db.reading() as s:
            refs = services.file_refs(services.draft_papers(s, commune.id, draft), keys.sealing)
        note = (values.get("supplement_note") or "").strip()[:2000]
        if csrf_ok:
            result = validate(defn, values, refs, today=runtime.calendar.local_date(now))
            errors = {**result.errors, **errors}
            if (
                not errors
                and not note
                and not refs
                and not any(v not in ("", None, False) for v in result.cleaned.values())
            ):
                errors["supplement_note"] = Message(
                    "Xin ghi nội dung bổ sung, sửa một ô, hoặc đính kèm giấy tờ.",
                    "Please write what you add, correct a field, or attach a paper.",
                )
            if not errors:
                with runtime.db.writing() as s:
                    fresh = s.merge(dossier)
                    s.refresh(fresh)
                    if fresh.state == "supplement_requested":
                        services.submit_supplement(
                            s,
                            dossier=fresh,
                            cleaned=result.cleaned,
                            note=note,
                            draft=draft,
                            keys=keys,
                            calendar=runtime.calendar,
                            now=now,
                        )
                return redirect(url_for("kiosk.status_page"), code=303)
        status_code = 422
    else:
        refs = {}
        status_code = 200
    html = render_template(
        "kiosk/supplement.html",
        commune=commune,
        dossier=dossier,
        defn=defn,
        request_note=request_note,
        values=values,
        errors=errors,
        files=refs,
        draft=draft,
        notice=notice,
        csrf_token=generate_csrf(),
    )
    return html, status_code
