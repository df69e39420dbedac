"""The commune admin panel (mounted at /can-bo/quan-tri): views only translate HTTP.

Where a commune makes the catalog its own, and the province keeps the catalog and the map of
communes. Commune admins see their commune's procedures; the province admin sees the shared
catalog and the communes. Everything else, and anything of another commune, raises `OutOfScope`,
which the staff side's app-wide handler (admin.views) audits and answers with a 404.

    /                                        the panel's first page for the role
    /thu-tuc                                 procedures: the commune's, or the shared catalog
    /thu-tuc/moi                             GET/POST a new procedure (typed, or from a file)
    /thu-tuc/<code>                          GET/POST the commune's settings of one procedure
    /thu-tuc/<code>/bat-tat                  POST offer it or stop offering it
    /thu-tuc/<code>/thu-tu                   POST move it up or down the list
    /thu-tuc/<code>/ban-chung                POST go back to the shared catalog's version
    /thu-tuc/<code>/soan                     GET/POST the editor: facts, papers, fee, sections,
                                             the list of fields (add, move, remove); its
                                             "Save and publish" button makes a new version
    /thu-tuc/<code>/soan/o/<n>               GET/POST one field of the draft
    /thu-tuc/<code>/soan/xem-truoc           the draft as a citizen's phone shows it (framed)
    /thu-tuc/<code>/soan/huy                 POST discard the draft
    /thu-tuc/<code>/soan/nhap                POST replace the draft with a file (.toml)
    /thu-tuc/<code>/soan/tai-ve.toml         the draft as a file
    /phien-ban/<id>, <id>.toml, <id>/xem-truoc  a published version: page, file, preview
    /xa, /xa/moi, /xa/<id>                   the province's communes (list, new, edit)
    /xa/<id>/ngung, /xa/<id>/mo-lai          POST merge into a successor / reopen
    /xa/nhap, /xa/nhap/ap-dung               import the official list (CSV): plan, then apply
    /xa-cua-toi                              GET/POST the commune's address, phone, office hours

Every form checks its CSRF token; a stale one shows the page again with what was typed and says
so. Every form behaves like the citizen's: errors beside the inputs, nothing typed lost.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from types import SimpleNamespace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from admin.auth import csrf_ok, guarded_staff, now_utc, rt
from admin.views import signed_in_staff
from core import commune_procedures as procs
from core import communes
from core import procedure_editor as editor
from core.accounts import Role
from core.deadlines import LOCAL_TZ
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message, typed_id
from procedures.schema import FeeKind, FieldKind
from storage.definitions import definition_of
from storage.models import Commune

panel_bp = Blueprint("staff_panel", __name__)

STALE_PAGE = Message(
    "Trang đã mở quá lâu nên chưa lưu được. Những gì bạn nhập vẫn còn trên trang: xin kiểm tra "
    "rồi bấm lại một lần nữa.",
    "The page was open too long, so nothing was saved. What you typed is still here: check it "
    "and press the button once more.",
)
CONFLICT = Message(
    "Một người khác vừa lưu bản nháp này. Những gì bạn nhập vẫn còn trên trang; bấm Lưu lần nữa "
    "sẽ ghi đè bản của họ.",
    "Someone else just saved this draft. What you typed is still here; pressing Save again "
    "overwrites their version.",
)
# The preview is framed by the editor (same origin only) and can never send a form.
PREVIEW_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'none'; form-action 'none'; frame-ancestors 'self'; "
    "base-uri 'none'; object-src 'none'"
)
MAX_IMPORT_BYTES = editor.MAX_TOML_BYTES


@panel_bp.before_request
def _guard() -> ResponseReturnValue | None:
    """Only a fully signed-in commune admin or province admin gets past here."""
    staff = signed_in_staff()
    if not isinstance(staff, StaffIdentity):
        return staff  # the sign-in redirect the staff guard chose
    if not procs.may_use(staff):
        raise OutOfScope(f"route:{request.endpoint}", "role")  # audited, then a 404
    g.staff = staff
    return None


def _form() -> dict[str, list[str]]:
    """The posted form as {name: [values]}, without the token."""
    form = request.form.to_dict(flat=False)
    form.pop("csrf_token", None)
    return form


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    context.setdefault("notice", None)
    html = render_template(
        template,
        csrf_token=generate_csrf(),
        panel_scope=procs.scope_of(guarded_staff()),
        v=_first_value,
        local=lambda at: at.replace(tzinfo=at.tzinfo or UTC).astimezone(LOCAL_TZ),
        **context,
    )
    return html, status


def _first_value(values: dict[str, list[str]], key: str) -> str:
    found = values.get(key)
    return found[0] if found else ""


def _done(message: Message) -> None:
    flash(message.in_(g.lang))


@panel_bp.get("/")
def home() -> ResponseReturnValue:
    if guarded_staff().role == Role.PROVINCE_ADMIN:
        return redirect(url_for("staff_panel.communes_list"))
    return redirect(url_for("staff_panel.procedures"))


# --- Procedures -----------------------------------------------------------------------------------


@panel_bp.get("/thu-tuc")
def procedures() -> ResponseReturnValue:
    staff = guarded_staff()
    with rt().db.reading() as s:
        if procs.scope_of(staff).shared:
            return _page("admin/panel_shared.html", items=procs.shared_procedures(s, staff))
        return _page("admin/panel_procedures.html", items=procs.commune_procedures(s, staff))


@panel_bp.route("/thu-tuc/moi", methods=["GET", "POST"])
def new_procedure() -> ResponseReturnValue:
    staff = guarded_staff()
    if request.method == "GET":
        return _page("admin/panel_new.html")
    form = _form()
    if not csrf_ok():
        return _page("admin/panel_new.html", 422, values=form, notice=STALE_PAGE)
    upload = request.files.get("file")
    errors: dict[str, Message] = {}
    problems: tuple[editor.EditorProblem, ...] = ()
    if upload is not None and upload.filename:
        try:
            defn = editor.import_toml(_read_upload(upload))
            draft = editor.draft_of(defn)
        except editor.ImportRefused as exc:
            problems = exc.problems
            errors["file"] = Message(
                f"Tệp có {len(problems)} chỗ cần sửa (xem danh sách bên dưới).",
                f"The file has {len(problems)} thing(s) to fix (see the list below).",
            )
        except UnicodeDecodeError:
            errors["file"] = _NOT_UTF8
    else:
        draft, errors = editor.new_draft(
            _first_value(form, "code"),
            _first_value(form, "name.vi"),
            _first_value(form, "name.en"),
        )
    if not errors:
        try:
            with rt().db.writing() as s:
                code = procs.start_new_procedure(s, staff, draft, now=now_utc())
            return redirect(url_for("staff_panel.editor_page", code=code), code=303)
        except procs.SettingsFormError as exc:
            errors = exc.errors
    return _page("admin/panel_new.html", 422, values=form, errors=errors, file_problems=problems)


_NOT_UTF8 = Message(
    "Tệp không phải chữ UTF-8: xin lưu tệp dưới dạng UTF-8.",
    "The file is not UTF-8 text: save it as UTF-8.",
)


def _read_upload(upload: Any) -> str:
    data = upload.stream.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return "x" * (MAX_IMPORT_BYTES + 1)  # import_toml says the file is too large
    text: str = data.decode("utf-8-sig")
    return text


def _settings_page(
    code: str,
    *,
    status: int = 200,
    values: dict[str, list[str]] | None = None,
    errors: dict[str, Message] | None = None,
    notice: Message | None = None,
) -> ResponseReturnValue:
    with rt().db.reading() as s:
        page = procs.settings_page(s, guarded_staff(), code)
    return _page(
        "admin/panel_settings.html",
        status,
        p=page,
        values=values if values is not None else page.values,
        errors=errors or {},
        notice=notice,
        FeeKind=FeeKind,
    )


@panel_bp.route("/thu-tuc/<code>", methods=["GET", "POST"])
def settings(code: str) -> ResponseReturnValue:
    staff = guarded_staff()
    if procs.scope_of(staff).shared:
        return redirect(url_for("staff_panel.editor_page", code=code))
    if request.method == "GET":
        return _settings_page(code)
    form = _form()
    if not csrf_ok():
        return _settings_page(code, status=422, values=form, notice=STALE_PAGE)
    try:
        with rt().db.writing() as s:
            changed = procs.save_settings(s, staff, code, form, now=now_utc())
    except procs.SettingsFormError as exc:
        return _settings_page(code, status=422, values=form, errors=exc.errors)
    _done(
        Message(
            "Đã lưu. Thay đổi áp dụng cho hồ sơ nộp từ bây giờ.",
            "Saved. The change applies to dossiers filed from now on.",
        )
        if changed
        else Message("Không có gì thay đổi.", "Nothing changed.")
    )
    return redirect(url_for("staff_panel.settings", code=code), code=303)


@panel_bp.post("/thu-tuc/<code>/bat-tat")
def toggle(code: str) -> ResponseReturnValue:
    back = _back(url_for("staff_panel.procedures"))
    if not csrf_ok():
        _done(STALE_PAGE)
        return redirect(back, code=303)
    enabled = request.form.get("enabled") == "1"
    with rt().db.writing() as s:
        procs.set_enabled(s, guarded_staff(), code, enabled=enabled, now=now_utc())
    _done(
        Message("Đã mở thủ tục cho người dân nộp hồ sơ.", "The procedure is open to citizens.")
        if enabled
        else Message(
            "Đã ngừng nhận hồ sơ mới của thủ tục này; áp phích của nó sẽ báo như vậy.",
            "New dossiers are no longer taken; its posters will say so.",
        )
    )
    return redirect(back, code=303)


def _back(default: str) -> str:
    """Where a list's button returns: a panel page named in the form, else `default`."""
    target = request.form.get("back", "")
    prefix = url_for("staff_panel.home")
    if target.startswith(prefix) and "//" not in target and "\\" not in target:
        return target
    return default


@panel_bp.post("/thu-tuc/<code>/thu-tu")
def reorder(code: str) -> ResponseReturnValue:
    if not csrf_ok():
        _done(STALE_PAGE)
    else:
        delta = -1 if request.form.get("huong") == "len" else 1
        with rt().db.writing() as s:
            procs.move(s, guarded_staff(), code, delta=delta, now=now_utc())
    return redirect(url_for("staff_panel.procedures") + f"#p-{code}", code=303)


@panel_bp.post("/thu-tuc/<code>/ban-chung")
def follow_shared(code: str) -> ResponseReturnValue:
    if not csrf_ok():
        _done(STALE_PAGE)
        return redirect(url_for("staff_panel.settings", code=code), code=303)
    with rt().db.writing() as s:
        changed = procs.follow_shared(s, guarded_staff(), code, now=now_utc())
    if changed:
        _done(
            Message(
                "Hồ sơ mới sẽ dùng phiên bản chung của tỉnh. Hồ sơ đã nộp giữ phiên bản cũ.",
                "New dossiers use the province's shared version. Filed dossiers keep theirs.",
            )
        )
    return redirect(url_for("staff_panel.settings", code=code), code=303)


# --- The editor -----------------------------------------------------------------------------------


def _editor_page(
    state: procs.DraftState,
    *,
    status: int = 200,
    values: dict[str, list[str]] | None = None,
    errors: dict[str, Message] | None = None,
    notice: Message | None = None,
    data: editor.Draft | None = None,
    revision: int | None = None,
) -> ResponseReturnValue:
    """The editor's overview; `data`, `values` and `revision` stand in for the stored draft when
    the page comes back unsaved (stale token, someone else's save)."""
    draft = data if data is not None else state.data
    checked = editor.check(draft) if data is not None else state.checked
    problems = checked.by_key()
    for key, message in (errors or {}).items():
        problems.setdefault(key, []).insert(0, message)
    with rt().db.reading() as s:
        versions = procs.versions_of(s, guarded_staff(), state.code)
    field_problems: dict[int, list[editor.EditorProblem]] = {}
    for p in checked.problems:
        if p.field_index is not None:
            field_problems.setdefault(p.field_index, []).append(p)
    return _page(
        "admin/panel_editor.html",
        status,
        state=state,
        draft=draft,
        checked=checked,
        problems=problems,
        field_problems=field_problems,
        rows=editor.field_rows(draft),
        values=values if values is not None else editor.overview_form(draft),
        revision=state.revision if revision is None else revision,
        where=lambda key: editor.where(key, draft),
        integer_fields=editor.names_of_kind(draft, [FieldKind.INTEGER]),
        date_fields=editor.names_of_kind(draft, [FieldKind.DATE]),
        select_fields=editor.names_of_kind(draft, [FieldKind.SELECT]),
        row_count=editor.row_count,
        notice=notice,
        FeeKind=FeeKind,
        FieldKind=FieldKind,
        fee_labels=editor.FEE_KIND_LABELS,
        kind_labels=editor.KIND_LABELS,
        agencies=editor.agencies(),
        preview_url=url_for("staff_panel.preview", code=state.code),
        versions=versions,
    )


def _open(code: str) -> procs.DraftState:
    with rt().db.reading() as s:
        return procs.open_draft(s, guarded_staff(), code)


@panel_bp.get("/thu-tuc/<code>/soan")
def editor_page(code: str) -> ResponseReturnValue:
    return _editor_page(_open(code))


def _autosave() -> bool:
    return request.headers.get("X-Autosave") == "1"


def _saved_json(revision: int) -> ResponseReturnValue:
    return jsonify(
        {
            "revision": revision,
            "message": Message("Đã lưu bản nháp.", "Draft saved.").in_(g.lang),
        }
    )


def _conflict_json(message: Message, status: int) -> ResponseReturnValue:
    return jsonify({"message": message.in_(g.lang)}), status


def _revision() -> int:
    raw = request.form.get("revision", "")
    found = typed_id(raw)
    return -1 if found is None else found


@panel_bp.post("/thu-tuc/<code>/soan")
def editor_save(code: str) -> ResponseReturnValue:
    staff = guarded_staff()
    form = _form()
    state = _open(code)
    revision = _revision()
    if not csrf_ok():
        if _autosave():
            return _conflict_json(STALE_PAGE, 422)
        data = editor.apply_overview(state.data, form)
        return _editor_page(state, status=422, values=form, data=data, notice=STALE_PAGE)
    data = editor.apply_overview(state.data, form)
    op = request.form.get("op", "save")
    errors: dict[str, Message] = {}
    go_to_field: int | None = None
    anchor = ""
    kind, _, arg = op.partition(":")
    found = typed_id(arg)
    index = -1 if found is None else found
    if kind == "add":
        data, go_to_field, errors = editor.add_field(data, form)
    elif kind in ("up", "down"):
        data = editor.move_field(data, index, -1 if kind == "up" else 1)
        anchor = f"#o-{max(0, index + (-1 if kind == 'up' else 1))}"
    elif kind == "remove":
        data = editor.remove_field(data, index)
        anchor = "#cac-o"
    try:
        with rt().db.writing() as s:
            new_revision = procs.save_draft(s, staff, code, data, revision=revision, now=now_utc())
    except procs.DraftConflict as exc:
        if _autosave():
            return _conflict_json(CONFLICT, 409)
        return _editor_page(
            state, status=409, values=form, data=data, notice=CONFLICT, revision=exc.revision
        )
    if _autosave():
        return _saved_json(new_revision)
    if kind == "publish":
        return _publish(code, new_revision)
    typed_new = any(
        _first_value(form, k).strip() for k in ("new.label.vi", "new.label.en", "new.name")
    )
    if errors or (typed_new and kind == "save"):
        # The rest was saved; the new field's inputs come back as typed (with what to fix), so
        # pressing Enter in them, or Save, loses nothing.
        fresh = _open(code)
        values = editor.overview_form(fresh.data)
        values.update({k: v for k, v in form.items() if k.startswith("new.")})
        return _editor_page(fresh, status=422 if errors else 200, values=values, errors=errors)
    if go_to_field is not None:
        return redirect(url_for("staff_panel.field_page", code=code, index=go_to_field), code=303)
    return redirect(url_for("staff_panel.editor_page", code=code) + anchor, code=303)


def _field_page(
    state: procs.DraftState,
    index: int,
    *,
    status: int = 200,
    values: dict[str, list[str]] | None = None,
    notice: Message | None = None,
    data: editor.Draft | None = None,
    revision: int | None = None,
) -> ResponseReturnValue:
    draft = data if data is not None else state.data
    fields = editor.fields_of(draft)
    if not 0 <= index < len(fields):
        abort(404)
    checked = editor.check(draft) if data is not None else state.checked
    mine = checked.of_field(index)
    problems: dict[str, list[Message]] = {}
    for p in mine:
        problems.setdefault(p.local_key, []).append(p.message)
    form = values if values is not None else editor.field_form(draft, index)
    return _page(
        "admin/panel_field.html",
        status,
        state=state,
        draft=draft,
        index=index,
        count=len(fields),
        field=fields[index],
        mine=mine,
        problems=problems,
        values=form,
        groups=set(_first_value(form, "groups").split(",")),
        revision=state.revision if revision is None else revision,
        notice=notice,
        kind_labels=editor.KIND_LABELS,
        accept_labels=editor.ACCEPT_LABELS,
        accept_order=editor.accept_order(form.get("accept", [])),
        sections=[
            (str(sec.get("name", "")), sec.get("title", {}))
            for sec in draft.get("sections", [])
            if isinstance(sec, dict)
        ],
        sources=editor.condition_sources(draft, index),
        birth_fields=editor.names_of_kind(draft, [FieldKind.DATE, FieldKind.INTEGER]),
        sex_fields=editor.names_of_kind(draft, [FieldKind.SELECT]),
        row_count=editor.row_count,
        preview_url=url_for("staff_panel.preview", code=state.code),
    )


@panel_bp.get("/thu-tuc/<code>/soan/o/<int:index>")
def field_page(code: str, index: int) -> ResponseReturnValue:
    return _field_page(_open(code), index)


@panel_bp.post("/thu-tuc/<code>/soan/o/<int:index>")
def field_save(code: str, index: int) -> ResponseReturnValue:
    staff = guarded_staff()
    form = _form()
    state = _open(code)
    if not 0 <= index < len(editor.fields_of(state.data)):
        abort(404)
    data = editor.apply_field(state.data, index, form)
    if not csrf_ok():
        if _autosave():
            return _conflict_json(STALE_PAGE, 422)
        return _field_page(state, index, status=422, values=form, data=data, notice=STALE_PAGE)
    try:
        with rt().db.writing() as s:
            new_revision = procs.save_draft(
                s, staff, code, data, revision=_revision(), now=now_utc()
            )
    except procs.DraftConflict as exc:
        if _autosave():
            return _conflict_json(CONFLICT, 409)
        return _field_page(
            state, index, status=409, values=form, data=data, notice=CONFLICT, revision=exc.revision
        )
    if _autosave():
        return _saved_json(new_revision)
    op = request.form.get("op", "save")
    if op == "back":
        return redirect(url_for("staff_panel.editor_page", code=code) + f"#o-{index}", code=303)
    if op in ("prev", "next"):
        target = index + (-1 if op == "prev" else 1)
        if 0 <= target < len(editor.fields_of(data)):
            return redirect(url_for("staff_panel.field_page", code=code, index=target), code=303)
    return redirect(url_for("staff_panel.field_page", code=code, index=index), code=303)


def _preview_response(html: str, status: int = 200) -> ResponseReturnValue:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def _render_preview(
    defn: Any, offered: Any, commune: Commune | None, problems: Any = ()
) -> ResponseReturnValue:
    place = commune or SimpleNamespace(
        name=Message("Xã (xem trước)", "Commune (preview)").in_(g.lang),
        slug="xem-truoc",
        province_name="",
        address="",
        phone="",
    )
    if defn is None:
        html = render_template(
            "admin/panel_preview_problems.html", commune=place, problems=problems
        )
        return _preview_response(html)
    notice = Message(
        "XEM TRƯỚC — đây là biểu mẫu như người dân thấy trên điện thoại; không gửi được.",
        "PREVIEW — the form as a citizen's phone shows it; it cannot be sent.",
    )
    html = render_template(
        "kiosk/form.html",
        commune=place,
        offered=offered,
        defn=defn,
        values={},
        errors={},
        files={},
        draft="xem-truoc-bieu-mau-khong-gui-duoc",
        poster=None,
        poster_token="",
        notice=notice,
        landing=False,
        consent_version="",
        csrf_token="",
        FieldKind=FieldKind,
    )
    return _preview_response(html)


@panel_bp.get("/thu-tuc/<code>/soan/xem-truoc")
def preview(code: str) -> ResponseReturnValue:
    staff = guarded_staff()
    with rt().db.reading() as s:
        state = procs.open_draft(s, staff, code)
        defn = state.checked.definition
        offered = procs.preview_offer(s, staff, code, defn) if defn is not None else None
        commune = procs.preview_commune(s, staff)
        return _render_preview(defn, offered, commune, state.checked.problems)


def _publish(code: str, revision: int) -> ResponseReturnValue:
    """Publish the draft just saved by the editor's "Save and publish" button."""
    staff = guarded_staff()
    try:
        with rt().db.writing() as s:
            done = procs.publish(
                s,
                staff,
                code,
                revision=revision,
                replace_newer=bool(request.form.get("replace_newer")),
                now=now_utc(),
            )
    except procs.PublishRefused as exc:
        # The draft is saved; the page shows every problem beside its input.
        return _editor_page(_open(code), status=422, notice=exc.message)
    except procs.DraftConflict:
        return _editor_page(_open(code), status=409, notice=CONFLICT)
    if not done.changed:
        _done(
            Message(
                "Bản nháp giống hệt phiên bản đang dùng: không có phiên bản mới.",
                "The draft is the same as the version in use: no new version.",
            )
        )
    elif procs.scope_of(staff).shared:
        _done(
            Message(
                f"Đã xuất bản phiên bản {done.version} của danh mục chung; {done.communes_moved} "
                "xã dùng phiên bản này cho hồ sơ mới. Hồ sơ đã nộp giữ phiên bản cũ.",
                f"Version {done.version} of the shared catalog is published; {done.communes_moved} "
                "commune(s) use it for new dossiers. Filed dossiers keep theirs.",
            )
        )
    else:
        _done(
            Message(
                f"Đã xuất bản phiên bản {done.version}: hồ sơ nộp từ bây giờ dùng phiên bản này, "
                "hồ sơ đã nộp giữ phiên bản cũ.",
                f"Version {done.version} is published: dossiers filed from now on use it, filed "
                "dossiers keep theirs.",
            )
        )
    if done.clamped:
        _done(
            Message(
                "Thời hạn giải quyết của xã vượt mức tối đa mới nên đã được hạ xuống bằng mức đó.",
                "The commune's processing time was above the new maximum and came down to it.",
            )
        )
    target = "staff_panel.procedures" if procs.scope_of(staff).shared else "staff_panel.settings"
    if target == "staff_panel.procedures":
        return redirect(url_for(target), code=303)
    return redirect(url_for(target, code=code), code=303)


@panel_bp.post("/thu-tuc/<code>/soan/huy")
def discard(code: str) -> ResponseReturnValue:
    if not csrf_ok():
        return _editor_page(_open(code), status=422, notice=STALE_PAGE)
    with rt().db.writing() as s:
        procs.discard_draft(s, guarded_staff(), code, now=now_utc())
    _done(Message("Đã bỏ bản nháp.", "The draft is discarded."))
    return redirect(url_for("staff_panel.procedures"), code=303)


@panel_bp.post("/thu-tuc/<code>/soan/nhap")
def import_file(code: str) -> ResponseReturnValue:
    staff = guarded_staff()
    state = _open(code)
    if not csrf_ok():
        return _editor_page(state, status=422, notice=STALE_PAGE)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _editor_page(
            state,
            status=422,
            errors={"file": Message("Xin chọn tệp .toml.", "Choose a .toml file.")},
        )
    try:
        defn = editor.import_toml(_read_upload(upload), code=code)
    except editor.ImportRefused as exc:
        return _editor_page(
            state,
            status=422,
            errors={
                "file": Message(
                    f"Không nhập được: tệp có {len(exc.problems)} chỗ cần sửa — "
                    + "; ".join(f"{_path(p)}{p.message.vi}" for p in exc.problems[:8]),
                    f"Not imported: the file has {len(exc.problems)} thing(s) to fix — "
                    + "; ".join(f"{_path(p)}{p.message.en}" for p in exc.problems[:8]),
                )
            },
        )
    except UnicodeDecodeError:
        return _editor_page(state, status=422, errors={"file": _NOT_UTF8})
    try:
        with rt().db.writing() as s:
            procs.import_into_draft(
                s,
                staff,
                code,
                defn,
                revision=_revision(),
                file_sha256=_sha(upload),
                now=now_utc(),
            )
    except procs.DraftConflict:
        return _editor_page(_open(code), status=409, notice=CONFLICT)
    _done(
        Message(
            "Đã nhập tệp vào bản nháp. Xem lại rồi xuất bản.",
            "The file is in the draft. Check it, then publish.",
        )
    )
    return redirect(url_for("staff_panel.editor_page", code=code), code=303)


def _path(problem: editor.EditorProblem) -> str:
    return f"{problem.key}: " if problem.key else ""


def _sha(upload: Any) -> str:
    upload.stream.seek(0)
    return hashlib.sha256(upload.stream.read(MAX_IMPORT_BYTES)).hexdigest()


def _toml_download(text: str, name: str) -> ResponseReturnValue:
    return Response(
        text,
        headers={
            "Content-Type": "application/toml; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}"',
        },
    )


@panel_bp.get("/thu-tuc/<code>/soan/tai-ve.toml")
def export_draft(code: str) -> ResponseReturnValue:
    state = _open(code)
    if state.checked.definition is None:
        return _editor_page(
            state,
            status=422,
            notice=Message(
                "Bản nháp còn lỗi nên chưa tải về được: xin sửa các chỗ được đánh dấu.",
                "The draft has problems, so it cannot be downloaded yet: fix what is marked.",
            ),
        )
    return _toml_download(editor.export_toml(state.checked.definition), f"{code}.toml")


@panel_bp.get("/phien-ban/<int:version_id>.toml")
def export_version(version_id: int) -> ResponseReturnValue:
    with rt().db.reading() as s:
        version = procs.version_in_scope(s, guarded_staff(), version_id)
        text = editor.export_toml(definition_of(version))
        name = f"{version.code}-{version.version}.toml"
    return _toml_download(text, name)


@panel_bp.get("/phien-ban/<int:version_id>/xem-truoc")
def preview_version(version_id: int) -> ResponseReturnValue:
    staff = guarded_staff()
    with rt().db.reading() as s:
        version = procs.version_in_scope(s, staff, version_id)
        defn = definition_of(version)
        offered = procs.preview_offer(s, staff, version.code, defn)
        return _render_preview(defn, offered, procs.preview_commune(s, staff))


@panel_bp.get("/phien-ban/<int:version_id>")
def version_page(version_id: int) -> ResponseReturnValue:
    with rt().db.reading() as s:
        version = procs.version_in_scope(s, guarded_staff(), version_id)
        defn = definition_of(version)
        return _page(
            "admin/panel_version.html",
            version=version,
            defn=defn,
            preview_url=url_for("staff_panel.preview_version", version_id=version_id),
        )


# --- Administrative units (province admin) --------------------------------------------------------


@panel_bp.get("/xa")
def communes_list() -> ResponseReturnValue:
    with rt().db.reading() as s:
        return _page("admin/panel_communes.html", items=communes.list_communes(s, guarded_staff()))


def _commune_page(
    commune: Commune | None,
    *,
    status: int = 200,
    values: dict[str, list[str]] | None = None,
    errors: dict[str, Message] | None = None,
    notice: Message | None = None,
) -> ResponseReturnValue:
    with rt().db.reading() as s:
        successors = communes.successor_choices(s, commune) if commune is not None else []
        successor = (
            s.get(Commune, commune.successor_id) if commune and commune.successor_id else None
        )
    return _page(
        "admin/panel_commune.html",
        status,
        commune=commune,
        successor=successor,
        successors=successors,
        banks=communes.bank_choices(),
        values=values if values is not None else communes.commune_form(commune),
        errors=errors or {},
        notice=notice,
    )


@panel_bp.route("/xa/moi", methods=["GET", "POST"])
def commune_new() -> ResponseReturnValue:
    staff = guarded_staff()
    if not communes.may_manage(staff):
        raise OutOfScope("communes", "role")
    if request.method == "GET":
        return _commune_page(None)
    form = _form()
    if not csrf_ok():
        return _commune_page(None, status=422, values=form, notice=STALE_PAGE)
    try:
        with rt().db.writing() as s:
            values = communes.read_commune_form(s, form, editing=None)
            commune = communes.create_commune(s, staff, values, keys=rt().keys, now=now_utc())
            commune_id = commune.id
    except communes.CommuneFormError as exc:
        return _commune_page(None, status=422, values=form, errors=exc.errors)
    _done(
        Message(
            "Đã thêm xã. Các thủ tục của xã chưa mở: quản trị xã đặt lệ phí, giao cán bộ rồi mở.",
            "The commune is added. Its procedures are not open yet: its admin sets fees and "
            "officials, then opens them.",
        )
    )
    return redirect(url_for("staff_panel.commune_edit", commune_id=commune_id), code=303)


def _commune(commune_id: int) -> Commune:
    with rt().db.reading() as s:
        commune = communes.commune_in_scope(s, guarded_staff(), commune_id)
        s.expunge(commune)
        return commune


@panel_bp.route("/xa/<int:commune_id>", methods=["GET", "POST"])
def commune_edit(commune_id: int) -> ResponseReturnValue:
    staff = guarded_staff()
    commune = _commune(commune_id)
    if request.method == "GET":
        return _commune_page(commune)
    form = _form()
    if not csrf_ok():
        return _commune_page(commune, status=422, values=form, notice=STALE_PAGE)
    try:
        with rt().db.writing() as s:
            values = communes.read_commune_form(s, form, editing=commune)
            changed = communes.update_commune(s, staff, commune_id, values, now=now_utc())
    except communes.CommuneFormError as exc:
        return _commune_page(commune, status=422, values=form, errors=exc.errors)
    _done(
        Message("Đã lưu.", "Saved.")
        if changed
        else Message("Không có gì thay đổi.", "Nothing changed.")
    )
    return redirect(url_for("staff_panel.commune_edit", commune_id=commune_id), code=303)


@panel_bp.post("/xa/<int:commune_id>/ngung")
def commune_deactivate(commune_id: int) -> ResponseReturnValue:
    staff = guarded_staff()
    commune = _commune(commune_id)
    form = _form()
    if not csrf_ok():
        return _commune_page(commune, status=422, notice=STALE_PAGE)
    if not request.form.get("confirm"):
        return _commune_page(
            commune,
            status=422,
            errors={
                "confirm": Message(
                    "Đánh dấu ô xác nhận để ngừng hoạt động xã này.",
                    "Tick the box to confirm this commune stops.",
                )
            },
            values={**communes.commune_form(commune), **form},
        )
    successor = _first_value(form, "successor_id")
    try:
        with rt().db.writing() as s:
            communes.deactivate(
                s,
                staff,
                commune_id,
                successor_id=typed_id(successor) or 0,
                now=now_utc(),
            )
    except communes.CommuneFormError as exc:
        return _commune_page(commune, status=422, errors=exc.errors)
    _done(
        Message(
            "Xã đã ngừng hoạt động. Hồ sơ cũ vẫn thuộc xã này; áp phích của xã chỉ người dân sang "
            "xã tiếp nhận.",
            "The commune has stopped. Its dossiers stay with it; its posters send citizens to the "
            "commune that took over.",
        )
    )
    return redirect(url_for("staff_panel.commune_edit", commune_id=commune_id), code=303)


@panel_bp.post("/xa/<int:commune_id>/mo-lai")
def commune_reactivate(commune_id: int) -> ResponseReturnValue:
    staff = guarded_staff()
    _commune(commune_id)
    if not csrf_ok():
        _done(STALE_PAGE)
    else:
        with rt().db.writing() as s:
            communes.reactivate(s, staff, commune_id, now=now_utc())
        _done(Message("Xã hoạt động trở lại.", "The commune is active again."))
    return redirect(url_for("staff_panel.commune_edit", commune_id=commune_id), code=303)


@panel_bp.get("/xa/nhap")
def import_units() -> ResponseReturnValue:
    if not communes.may_manage(guarded_staff()):
        raise OutOfScope("communes", "role")
    return _page("admin/panel_import.html")


def _plan_page(
    csv_text: str, *, add_new: bool, status: int = 200, notice: Message | None = None
) -> ResponseReturnValue:
    rows, problems = communes.read_units_csv(csv_text.encode("utf-8"))
    with rt().db.reading() as s:
        plan = communes.plan_import(
            rows, communes.unit_states(s), read_problems=problems, add_new=add_new
        )
    return _page(
        "admin/panel_import_plan.html",
        status,
        plan=plan,
        csv_text=csv_text,
        add_new=add_new,
        rows=len(rows),
        notice=notice,
        labels=communes.CHANGE_LABELS,
    )


@panel_bp.post("/xa/nhap")
def import_plan() -> ResponseReturnValue:
    if not communes.may_manage(guarded_staff()):
        raise OutOfScope("communes", "role")
    if not csrf_ok():
        return _page("admin/panel_import.html", 422, notice=STALE_PAGE)
    upload = request.files.get("file")
    data = upload.stream.read(communes.MAX_CSV_BYTES + 1) if upload and upload.filename else b""
    if not data:
        return _page(
            "admin/panel_import.html",
            422,
            errors={"file": Message("Xin chọn tệp CSV.", "Choose a CSV file.")},
        )
    rows, problems = communes.read_units_csv(data)
    if not rows and problems:
        return _page(
            "admin/panel_import.html",
            422,
            errors={"file": problems[0].message},
        )
    text = data.decode("utf-8-sig")
    return _plan_page(text, add_new=not request.form.get("only_existing"))


@panel_bp.post("/xa/nhap/ap-dung")
def import_apply() -> ResponseReturnValue:
    staff = guarded_staff()
    if not communes.may_manage(staff):
        raise OutOfScope("communes", "role")
    csv_text = request.form.get("csv", "")
    add_new = request.form.get("add_new") == "1"
    if not csrf_ok():
        return _plan_page(csv_text, add_new=add_new, status=422, notice=STALE_PAGE)
    data = csv_text.encode("utf-8")
    rows, _ = communes.read_units_csv(data)
    try:
        with rt().db.writing() as s:
            applied = communes.apply_plan(
                s,
                staff,
                rows,
                fingerprint=request.form.get("fingerprint", ""),
                add_new=add_new,
                csv_sha256=hashlib.sha256(data).hexdigest(),
                keys=rt().keys,
                now=now_utc(),
            )
    except communes.PlanStale:
        return _plan_page(
            csv_text,
            add_new=add_new,
            status=409,
            notice=Message(
                "Danh sách xã đã thay đổi từ lúc xem trước: đây là kế hoạch mới, xin xem lại rồi "
                "bấm Áp dụng.",
                "The communes changed since the preview: here is the new plan; check it, then "
                "press Apply.",
            ),
        )
    counts = applied.counts
    _done(
        Message(
            f"Đã nhập: thêm {counts['add']}, đổi tên {counts['rename']}, đổi mã "
            f"{counts['recode']}, đổi tỉnh {counts['province']}, sáp nhập {counts['merge']}. "
            "Mọi thay đổi đã ghi vào nhật ký.",
            f"Imported: {counts['add']} added, {counts['rename']} renamed, {counts['recode']} "
            f"new codes, {counts['province']} new provinces, {counts['merge']} merged. Every "
            "change is in the audit log.",
        )
    )
    return redirect(url_for("staff_panel.communes_list"), code=303)


# --- The commune's own facts (commune admin) ------------------------------------------------------


@panel_bp.route("/xa-cua-toi", methods=["GET", "POST"])
def my_commune() -> ResponseReturnValue:
    staff = guarded_staff()
    if staff.role != Role.ADMIN or staff.commune_id is None:
        raise OutOfScope("my-commune", "role")
    with rt().db.reading() as s:
        commune = s.get(Commune, staff.commune_id)
        if commune is None:
            raise OutOfScope("my-commune", "no_commune")
        s.expunge(commune)
    stored = {k: [getattr(commune, k)] for k in communes.CONTACT_FIELDS}
    if request.method == "GET":
        return _page("admin/panel_my_commune.html", commune=commune, values=stored)
    form = _form()
    if not csrf_ok():
        return _page(
            "admin/panel_my_commune.html", 422, commune=commune, values=form, notice=STALE_PAGE
        )
    try:
        with rt().db.writing() as s:
            changed = communes.update_contact(s, staff, form, now=now_utc())
    except communes.CommuneFormError as exc:
        return _page(
            "admin/panel_my_commune.html", 422, commune=commune, values=form, errors=exc.errors
        )
    _done(
        Message("Đã lưu.", "Saved.")
        if changed
        else Message("Không có gì thay đổi.", "Nothing changed.")
    )
    return redirect(url_for("staff_panel.my_commune"), code=303)
