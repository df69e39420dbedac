"""Staff pages for QR posters (mounted at /can-bo/ap-phich): views only translate HTTP.

- `/`                        the register: posters per procedure (or `?theo=noi` per place) with
                             their funnel and the silent flag; `?tat-ca=1` adds revoked/expired
- `/tao`                     POST: one poster (procedure, place, optional last day)
- `/tao-hang-loat`           POST: every enabled procedure at a place
- `/in-lai`                  POST: a PDF of the selected posters, `layout` poster or sheet
- `/<id>`                    one poster: its link, code, QR, downloads and funnel day by day
- `/<id>/thu-hoi`            GET: the confirmation page; POST: revoke
- `/<id>/qr.png`, `/<id>/qr.svg`, `/<id>/ap-phich.pdf?layout=poster|sheet`   downloads

Who may do what is decided by `core.poster_register` from the signed-in `StaffIdentity`: the
commune admin manages, its leaders read; anyone else, and any poster of another commune, raises
`OutOfScope`, which the staff side's app-wide handler (admin.views) audits and answers with a
404, as if it did not exist.

QR images depend only on the URL a poster opens (its id, the key that signed it, the public base
URL), so they are rendered once per URL and kept in a process-wide LRU cache: reloading the list
or downloading again never rebuilds the symbol.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from admin.auth import csrf_ok, guarded_staff, now_utc, rt
from admin.views import signed_in_staff
from core import poster_register as posters
from core import services
from core.deadlines import LOCAL_TZ
from core.poster_print import FontsMissing, Layout, find_fonts, posters_pdf
from core.posters import official_host, qr_matrix, qr_png, qr_svg
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message, typed_id

posters_bp = Blueprint("staff_posters", __name__)

LAYOUTS: tuple[Layout, ...] = ("poster", "sheet")
MAX_PRINT = 500  # posters in one reprint: a few hundred pages is already a print shop's job

STALE_PAGE = Message(
    "Trang đã mở quá lâu nên chưa thực hiện được: xin làm lại một lần nữa.",
    "The page was open too long, so nothing was done: please try once more.",
)


@posters_bp.before_request
def _guard() -> ResponseReturnValue | None:
    """Only a fully signed-in admin or leader of a commune gets past here."""
    staff = signed_in_staff()
    if not isinstance(staff, StaffIdentity):
        return staff  # the sign-in redirect (or the error) the staff guard chose
    if not posters.may_view(staff):
        raise OutOfScope(f"route:{request.endpoint}", "role")  # audited, then a 404
    g.staff = staff
    return None


def _names() -> dict[str, Message]:
    return {d.code: Message(d.name.vi, d.name.en) for d in rt().catalog}


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    html = render_template(
        template,
        staff=guarded_staff(),
        can_manage=posters.may_manage(guarded_staff()),
        csrf_token=generate_csrf(),
        procedure_names=_names(),
        local=lambda at: at.astimezone(LOCAL_TZ),
        **context,
    )
    return html, status


def _parse_day(text: str) -> date | None | str:
    """An ISO date from an <input type=date>, None when empty, the text itself when invalid."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text


BAD_DATE = Message(
    "Ngày không hợp lệ: chọn ngày trên lịch, hoặc để trống nếu áp phích dùng lâu dài.",
    "Not a valid date: pick one on the calendar, or leave it empty for a lasting poster.",
)


# --- The register -------------------------------------------------------------------------------


def _index(
    *,
    errors: dict[str, Message] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    runtime = rt()
    by_place = request.args.get("theo") == "noi"
    include_ended = request.args.get("tat-ca") == "1"
    chosen = (typed_id(x) for x in request.args.get("chon", "").split(","))
    selected = {n for n in chosen if n is not None}
    with runtime.db.reading() as s:
        reg = posters.register(
            s,
            guarded_staff(),
            keys=runtime.keys,
            public_base_url=runtime.public_base_url,
            now=now_utc(),
            tz=LOCAL_TZ,
            include_ended=include_ended,
        )
        offered = services.offered_procedures(s, reg.commune)
    order = [p.code for p in offered]
    groups = reg.by_place(order) if by_place else reg.by_procedure(order)
    ended = {"tat-ca": "1"} if include_ended else {}
    place = {"theo": "noi"} if by_place else {}
    links = {
        "by_procedure": url_for(".index", **ended),
        "by_place": url_for(".index", theo="noi", **ended),
        "toggle_ended": url_for(".index", **place, **({} if include_ended else {"tat-ca": "1"})),
    }
    return _page(
        "admin/posters.html",
        status,
        reg=reg,
        commune=reg.commune,
        groups=groups,
        by_place=by_place,
        links=links,
        include_ended=include_ended,
        offered=offered,
        selected=selected,
        errors=errors or {},
        values=values or {},
    )


@posters_bp.get("/")
def index() -> ResponseReturnValue:
    return _index()


@posters_bp.post("/tao")
def create() -> ResponseReturnValue:
    values = {k: request.form.get(k, "")[:300] for k in ("code", "location", "expires_on")}
    if not csrf_ok():
        return _index(errors={"form": STALE_PAGE}, values=values, status=400)
    expires = _parse_day(values["expires_on"])
    if isinstance(expires, str):
        return _index(errors={"expires_on": BAD_DATE}, values=values, status=422)
    runtime = rt()
    try:
        with runtime.db.writing() as s:
            poster = posters.create(
                s,
                guarded_staff(),
                code=values["code"],
                location=values["location"],
                expires_on=expires,
                keys=runtime.keys,
                now=now_utc(),
                tz=LOCAL_TZ,
            )
            poster_id = poster.id
    except posters.PosterFormError as exc:
        return _index(errors=exc.errors, values=values, status=422)
    flash(
        Message(
            "Đã tạo áp phích. Tải về để in, hoặc chọn nhiều áp phích ở danh sách để in cùng lúc.",
            "Poster created. Download it to print, or tick several in the list to print together.",
        ).in_(g.lang)
    )
    return redirect(url_for(".detail", poster_id=poster_id), 303)


@posters_bp.post("/tao-hang-loat")
def create_bulk() -> ResponseReturnValue:
    values = {
        "bulk_location": request.form.get("location", "")[:300],
        "bulk_expires_on": request.form.get("expires_on", "")[:20],
    }
    if not csrf_ok():
        return _index(errors={"form": STALE_PAGE}, values=values, status=400)
    expires = _parse_day(values["bulk_expires_on"])
    if isinstance(expires, str):
        return _index(errors={"bulk_expires_on": BAD_DATE}, values=values, status=422)
    runtime = rt()
    try:
        with runtime.db.writing() as s:
            done = posters.create_bulk(
                s,
                guarded_staff(),
                location=values["bulk_location"],
                expires_on=expires,
                keys=runtime.keys,
                now=now_utc(),
                tz=LOCAL_TZ,
            )
            created = [p.id for p in done.created]
    except posters.PosterFormError as exc:
        errors = {f"bulk_{k}": v for k, v in exc.errors.items()}
        return _index(errors=errors, values=values, status=422)
    names = _names()
    skipped = ", ".join(names[c].in_(g.lang) if c in names else c for c in done.skipped)
    message = Message(
        f"Đã tạo {len(created)} áp phích tại “{done.location}”.",
        f"Created {len(created)} poster(s) at “{done.location}”.",
    )
    if skipped:
        message = Message(
            f"{message.vi} Bỏ qua các thủ tục đã có áp phích ở nơi này: {skipped}.",
            f"{message.en} Skipped the procedures that already have a poster there: {skipped}.",
        )
    if created:
        message = Message(
            f"{message.vi} Các áp phích mới đã được chọn sẵn để in.",
            f"{message.en} The new posters are ticked, ready to print.",
        )
    flash(message.in_(g.lang))
    chosen = ",".join(str(pid) for pid in created)
    return redirect(url_for(".index", chon=chosen or None) + "#in-lai", 303)


# --- One poster ---------------------------------------------------------------------------------


def _poster_id_or_404(poster_id: int) -> int:
    if not 0 < poster_id < 2**62:
        abort(404)
    return poster_id


@posters_bp.get("/<int:poster_id>")
def detail(poster_id: int) -> ResponseReturnValue:
    runtime = rt()
    with runtime.db.reading() as s:
        found = posters.poster_detail(
            s,
            guarded_staff(),
            _poster_id_or_404(poster_id),
            keys=runtime.keys,
            public_base_url=runtime.public_base_url,
            now=now_utc(),
            tz=LOCAL_TZ,
        )
        commune = posters.staff_commune(s, guarded_staff())
    return _page(
        "admin/posters_detail.html",
        line=found.line,
        days=found.days,
        commune=commune,
        host=official_host(runtime.public_base_url),
    )


@posters_bp.route("/<int:poster_id>/thu-hoi", methods=["GET", "POST"])
def revoke(poster_id: int) -> ResponseReturnValue:
    runtime = rt()
    staff = guarded_staff()
    if not posters.may_manage(staff):
        raise OutOfScope(f"poster:{poster_id}", "read_only")
    errors: dict[str, Message] = {}
    if request.method == "POST":
        if not csrf_ok():
            errors["form"] = STALE_PAGE
        else:
            try:
                with runtime.db.writing() as s:
                    posters.revoke(s, staff, _poster_id_or_404(poster_id), now=now_utc())
            except posters.PosterRefused as exc:
                flash(exc.message.in_(g.lang))
                return redirect(url_for(".detail", poster_id=poster_id), 303)
            flash(
                Message(
                    "Đã thu hồi áp phích. Từ bây giờ mã QR trên áp phích này mở trang cảnh báo "
                    "thay cho tờ khai. Hãy gỡ áp phích khỏi nơi dán.",
                    "Poster revoked. From now on its QR code opens a warning page instead of "
                    "the form. Take the poster down.",
                ).in_(g.lang)
            )
            return redirect(url_for(".detail", poster_id=poster_id), 303)
    with runtime.db.reading() as s:
        found = posters.poster_detail(
            s,
            staff,
            _poster_id_or_404(poster_id),
            keys=runtime.keys,
            public_base_url=runtime.public_base_url,
            now=now_utc(),
            tz=LOCAL_TZ,
        )
        commune = posters.staff_commune(s, staff)
    if found.line.revoked_at is not None:
        return redirect(url_for(".detail", poster_id=poster_id), 303)
    return _page(
        "admin/posters_revoke.html",
        400 if errors else 200,
        line=found.line,
        commune=commune,
        errors=errors,
    )


# --- Images and PDFs ----------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _qr_image(url: str, kind: str) -> bytes:
    """The QR image of a poster URL. The URL carries the poster id, the signing key's id and tag,
    and the public base URL, so it is the whole cache key; a revoked poster's entry simply ages
    out, it is never served (downloads check the poster first)."""
    matrix = qr_matrix(url)
    if kind == "png":
        return qr_png(matrix, scale=16)
    return qr_svg(matrix).encode()


def _active_poster_url(poster_id: int) -> tuple[str, str]:
    """(URL, procedure code) of an active poster in scope; 410 for a revoked or expired one."""
    runtime = rt()
    with runtime.db.reading() as s:
        poster = posters.poster_in_scope(s, guarded_staff(), _poster_id_or_404(poster_id))
        if posters.poster_status(poster, now_utc()) != posters.PosterStatus.ACTIVE:
            abort(410)
        url, _code = posters.poster_link(poster, runtime.keys, runtime.public_base_url)
        return url, poster.code


def _download(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@posters_bp.get("/<int:poster_id>/qr.png")
def qr_png_download(poster_id: int) -> ResponseReturnValue:
    url, code = _active_poster_url(poster_id)
    return _download(_qr_image(url, "png"), "image/png", f"ap-phich-{poster_id}-{code}.png")


@posters_bp.get("/<int:poster_id>/qr.svg")
def qr_svg_download(poster_id: int) -> ResponseReturnValue:
    url, code = _active_poster_url(poster_id)
    response = _download(_qr_image(url, "svg"), "image/svg+xml", f"ap-phich-{poster_id}-{code}.svg")
    if request.args.get("xem") == "1":  # shown inline on the poster's page
        response.headers["Content-Disposition"] = "inline"
    return response


def _pdf(ids: list[int], layout: Layout) -> tuple[bytes | None, list[int]]:
    runtime = rt()
    try:
        fonts = find_fonts()
    except FontsMissing:
        current_app.logger.exception("poster PDF: no font with Vietnamese letters")
        abort(503)
    with runtime.db.reading() as s:
        chosen = posters.printable(
            s,
            guarded_staff(),
            ids,
            keys=runtime.keys,
            public_base_url=runtime.public_base_url,
            now=now_utc(),
        )
    if not chosen.prints:
        return None, chosen.left_out
    return posters_pdf(chosen.prints, layout=layout, fonts=fonts), chosen.left_out


def _layout(text: str | None) -> Layout:
    for layout in LAYOUTS:
        if text == layout:
            return layout
    return "poster"


@posters_bp.get("/<int:poster_id>/ap-phich.pdf")
def pdf_download(poster_id: int) -> ResponseReturnValue:
    layout = _layout(request.args.get("layout"))
    data, _left_out = _pdf([_poster_id_or_404(poster_id)], layout)
    if data is None:
        abort(410)
    return _download(data, "application/pdf", f"ap-phich-{poster_id}-{layout}.pdf")


@posters_bp.post("/in-lai")
def reprint() -> ResponseReturnValue:
    if not csrf_ok():
        flash(STALE_PAGE.in_(g.lang))
        return redirect(url_for(".index"), 303)
    typed = (typed_id(x) for x in request.form.getlist("poster"))
    ids = [n for n in typed if n is not None][:MAX_PRINT]
    layout = _layout(request.form.get("layout"))
    if not ids:
        flash(
            Message(
                "Chưa chọn áp phích nào: đánh dấu các áp phích cần in rồi bấm lại.",
                "No poster selected: tick the posters to print, then press again.",
            ).in_(g.lang)
        )
        return redirect(url_for(".index") + "#in-lai", 303)
    data, left_out = _pdf([_poster_id_or_404(pid) for pid in ids], layout)
    if data is None:
        flash(
            Message(
                "Các áp phích đã chọn đều đã thu hồi, hết hạn hoặc thủ tục đã tắt: không có gì "
                "để in.",
                "Every selected poster is revoked, expired or its procedure is off: nothing to "
                "print.",
            ).in_(g.lang)
        )
        return redirect(url_for(".index") + "#in-lai", 303)
    response = _download(data, "application/pdf", f"ap-phich-{len(ids)}-{layout}.pdf")
    if left_out:  # shown on the next page the admin opens, the PDF itself being a download
        flash(
            Message(
                f"{len(left_out)} áp phích đã chọn không được in vì đã thu hồi, hết hạn hoặc "
                "thủ tục đã tắt.",
                f"{len(left_out)} selected poster(s) were not printed: revoked, expired or their "
                "procedure is off.",
            ).in_(g.lang)
        )
    return response
