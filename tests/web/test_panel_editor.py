"""The procedure editor over HTTP: a commune admin adds a field, previews, publishes; new dossiers
carry the new field and version, old ones keep theirs. Broken drafts are refused with a message
beside each input; stale pages keep what was typed; nobody reaches another commune's procedures.

Forms are posted back exactly as the pages render them (tests/panel_support.form_data), so the
templates are tested along with the views: an unchanged page changes nothing.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.accounts import Role
from core.commune_procedures import newest_shared
from procedures.catalog import load_definition
from storage.definitions import definition_of
from storage.models import (
    AuditEvent,
    Commune,
    CommuneProcedure,
    Dossier,
    ProcedureDraft,
    ProcedureVersion,
    StaffProcedure,
    StaffUser,
)
from storage.runtime import Runtime
from tests import citizen
from tests.panel_support import errors_beside, form_data, post_data
from tests.staff_support import make_commune, make_user, sign_in_cookie

PANEL = "/can-bo/quan-tri"
CODE = "trich-luc-ho-tich"
NEW_LABEL = "Số nhà, tên đường nơi nhận bản trích lục"


def _client(app: Flask, runtime: Runtime, user_id: int) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    return client


def _text(response: object) -> str:
    return html_lib.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def commune(app: Flask) -> Commune:
    runtime: Runtime = app.extensions["kiosk"]
    return make_commune(runtime, "Xã Soạn Thảo")


@pytest.fixture(scope="module")
def admin_id(app: Flask, commune: Commune) -> int:
    user_id, _, _ = make_user(app.extensions["kiosk"], commune, Role.ADMIN)
    return user_id


@pytest.fixture()
def admin(app: Flask, runtime: Runtime, admin_id: int) -> FlaskClient:
    return _client(app, runtime, admin_id)


def _editor(client: FlaskClient, code: str = CODE) -> tuple[str, dict[str, list[str]]]:
    page = client.get(f"{PANEL}/thu-tuc/{code}/soan")
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    text = page.get_data(as_text=True)
    return text, form_data(text, f"/thu-tuc/{code}/soan")


def _version_row(runtime: Runtime, version_id: int) -> ProcedureVersion:
    with runtime.db.reading() as s:
        row = s.get(ProcedureVersion, version_id)
        assert row is not None
        s.expunge(row)
        return row


def _dossier(runtime: Runtime, commune: Commune, code: str) -> Dossier:
    with runtime.db.reading() as s:
        row = s.scalar(
            select(Dossier).where(Dossier.commune_id == commune.id, Dossier.code == code)
        )
        assert row is not None
        s.expunge(row)
        return row


def _setting(runtime: Runtime, commune: Commune, code: str = CODE) -> CommuneProcedure:
    with runtime.db.reading() as s:
        row = s.scalar(
            select(CommuneProcedure).where(
                CommuneProcedure.commune_id == commune.id, CommuneProcedure.code == code
            )
        )
        assert row is not None
        s.expunge(row)
        return row


def _audit_actions(runtime: Runtime, commune_id: int | None) -> list[str]:
    with runtime.db.reading() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.commune_id == commune_id)
                .order_by(AuditEvent.seq)
            )
        )


# --- The whole path -------------------------------------------------------------------------------


def test_admin_adds_a_field_previews_publishes_and_only_new_dossiers_carry_it(
    app: Flask, runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    shared_version_id = _setting(runtime, commune).version_id
    old_defn = definition_of(_version_row(runtime, shared_version_id))
    client = app.test_client()
    old_code, _ = citizen.submit(client, old_defn, seed=3, slug=commune.slug)

    # The editor opens on the version in use; an unchanged page posted back changes nothing.
    page, form = _editor(admin)
    assert old_defn.name.vi in html_lib.unescape(page)
    assert form["revision"] == ["0"]
    section = old_defn.fields[-1].section
    added = admin.post(
        f"{PANEL}/thu-tuc/{CODE}/soan",
        data=post_data(
            form,
            op="add",
            new__kind="text",
            new__label__vi=NEW_LABEL,
            new__label__en="House number and street to send the extract to",
            new__section=section,
        ),
    )
    assert added.status_code == 303, _text(added)[:3000]
    index = len(old_defn.fields)
    assert added.headers["Location"].endswith(f"/thu-tuc/{CODE}/soan/o/{index}")

    # The new field's own page: make it required, give it a hint, back to the list.
    field_page = admin.get(added.headers["Location"])
    assert field_page.status_code == 200
    field_form = form_data(field_page.get_data(as_text=True), f"/soan/o/{index}")
    assert field_form["name"] == ["so_nha_ten_duong_noi_nhan_ban_trich_luc"]
    saved = admin.post(
        f"{PANEL}/thu-tuc/{CODE}/soan/o/{index}",
        data=post_data(
            field_form,
            required="on",
            hint__vi="Ví dụ: 12 đường Tỉnh lộ 15, ấp Bàu Tròn",
            hint__en="E.g. 12 Tỉnh lộ 15, Bàu Tròn hamlet",
            op="back",
        ),
    )
    assert saved.status_code == 303, _text(saved)[:3000]

    # Preview: the citizen's own form at phone size, framed by the editor, never sendable.
    page, form = _editor(admin)
    assert f'src="{PANEL}/thu-tuc/{CODE}/soan/xem-truoc"' in page
    preview = admin.get(f"{PANEL}/thu-tuc/{CODE}/soan/xem-truoc")
    assert preview.status_code == 200
    assert NEW_LABEL in _text(preview)
    assert "Ví dụ: 12 đường Tỉnh lộ 15" in _text(preview)
    csp = preview.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in csp and "form-action 'none'" in csp
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    # Not yet published: citizens still get the old form.
    assert NEW_LABEL not in _text(client.get(f"/x/{commune.slug}/{CODE}"))

    published = admin.post(f"{PANEL}/thu-tuc/{CODE}/soan", data=post_data(form, op="publish"))
    assert published.status_code == 303, _text(published)[:3000]
    settings = admin.get(published.headers["Location"])
    assert "Đã xuất bản phiên bản" in _text(settings)

    setting = _setting(runtime, commune)
    assert setting.version_id != shared_version_id
    new_version = _version_row(runtime, setting.version_id)
    assert new_version.commune_id == commune.id  # the commune's own version
    new_defn = load_definition(new_version.definition, "published")
    new_field = new_defn.fields[index]
    assert new_field.label.vi == NEW_LABEL and new_field.required
    with runtime.db.reading() as s:
        assert s.scalar(select(ProcedureDraft).where(ProcedureDraft.code == CODE)) is None

    # A new dossier through the citizen's form carries the new field and the new version.
    form_page = _text(client.get(f"/x/{commune.slug}/{CODE}"))
    assert NEW_LABEL in form_page
    values = citizen.valid_values(new_defn, seed=4)
    missing = {k: v for k, v in values.items() if k != new_field.name}
    _, csrf, draft = citizen.open_form(client, CODE, commune.slug)
    refused = citizen.post_form(
        client, new_defn, missing, csrf=csrf, draft=draft, slug=commune.slug
    )
    assert refused.status_code == 422  # the new field is required now
    new_code, _ = citizen.submit(client, new_defn, seed=4, slug=commune.slug)
    old, new = _dossier(runtime, commune, old_code), _dossier(runtime, commune, new_code)
    assert old.procedure_version_id == shared_version_id
    assert new.procedure_version_id == new_version.id

    # The officials' dossier pages render each dossier with its own version.
    official_id, _, _ = make_user(runtime, commune, Role.OFFICIAL, procedures=(CODE,))
    official = _client(app, runtime, official_id)
    new_page = official.get(f"/can-bo/ho-so/{new_code}")
    old_page = official.get(f"/can-bo/ho-so/{old_code}")
    assert new_page.status_code == 200 and old_page.status_code == 200
    assert NEW_LABEL in _text(new_page)
    assert NEW_LABEL not in _text(old_page)
    assert old_defn.fields[0].label.vi in _text(old_page)

    actions = _audit_actions(runtime, commune.id)
    assert "procedure.draft_started" in actions and "procedure.published" in actions


def test_the_preview_of_an_old_version_and_its_file_stay_available(
    runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    shared = _shared_version_id(runtime)
    page = admin.get(f"{PANEL}/phien-ban/{shared}")
    assert page.status_code == 200
    preview = admin.get(f"{PANEL}/phien-ban/{shared}/xem-truoc")
    assert (
        preview.status_code == 200
        and "form-action 'none'" in preview.headers["Content-Security-Policy"]
    )
    exported = admin.get(f"{PANEL}/phien-ban/{shared}.toml")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["Content-Disposition"]
    text = exported.get_data(as_text=True)
    with runtime.db.reading() as s:
        row = s.get(ProcedureVersion, shared)
        assert row is not None
        assert load_definition(text, "x") == definition_of(row)


def _shared_version_id(runtime: Runtime, code: str = CODE) -> int:
    with runtime.db.reading() as s:
        version = newest_shared(s, code)
        assert version is not None
        return version.id


# --- Broken drafts --------------------------------------------------------------------------------


def test_a_select_without_options_is_refused_with_the_message_beside_it(
    runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    code = "chung-thuc-chu-ky"
    before = _setting(runtime, commune, code).version_id
    _, form = _editor(admin, code)
    added = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan",
        data=post_data(
            form,
            op="add",
            new__kind="select",
            new__label__vi="Loại giấy tờ",
            new__label__en="Kind of paper",
            new__name="loai_giay_to",
        ),
    )
    assert added.status_code == 303
    index = int(added.headers["Location"].rsplit("/", 1)[1])
    field_page = admin.get(added.headers["Location"]).get_data(as_text=True)
    assert "Ô chọn từ danh sách cần ít nhất một lựa chọn." in errors_beside(field_page, "f-options")
    page, form = _editor(admin, code)
    refused = admin.post(f"{PANEL}/thu-tuc/{code}/soan", data=post_data(form, op="publish"))
    assert refused.status_code == 422
    text = _text(refused)
    assert "Chưa xuất bản được" in text
    assert "Ô chọn từ danh sách cần ít nhất một lựa chọn." in text
    assert f"/soan/o/{index}" in text  # the summary links to the field's page
    assert _setting(runtime, commune, code).version_id == before  # nothing published

    # A condition on a field that does not exist, then a duplicate name: each said beside.
    def save_field(**changes: object) -> str:
        page = admin.get(f"{PANEL}/thu-tuc/{code}/soan/o/{index}").get_data(as_text=True)
        saved = admin.post(
            f"{PANEL}/thu-tuc/{code}/soan/o/{index}",
            data=post_data(form_data(page, f"/soan/o/{index}"), **changes),
        )
        assert saved.status_code == 303
        return admin.get(f"{PANEL}/thu-tuc/{code}/soan/o/{index}").get_data(as_text=True)

    field_page = save_field(
        **{
            "options.0.value": "ban_chinh",
            "options.0.label.vi": "Bản chính",
            "options.0.label.en": "Original",
            "condition.field": "khong_co_o_nay",
            "condition.equals": "co",
        }
    )
    assert "Ô chọn từ danh sách cần ít nhất một lựa chọn." not in field_page
    assert "không có ô nào tên như vậy" in errors_beside(field_page, "f-condition-field")
    field_page = save_field(name="nyc_ho_ten", **{"condition.field": ""})
    assert "đã dùng cho một ô khác ở phía trên" in errors_beside(field_page, "f-name")
    # The draft is discarded: the version in use never changed.
    discard = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan/huy",
        data={"csrf_token": form["csrf_token"][0]},
    )
    assert discard.status_code == 303
    assert _setting(runtime, commune, code).version_id == before


def test_a_stale_page_keeps_everything_typed_and_saves_nothing(
    runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    code = "chung-thuc-ban-sao"
    _, form = _editor(admin, code)
    typed = post_data(
        form, csrf_token="stale", name__vi="Chứng thực bản sao (đã sửa tên)", op="save"
    )
    page = admin.post(f"{PANEL}/thu-tuc/{code}/soan", data=typed)
    assert page.status_code == 422
    text = _text(page)
    assert "Trang đã mở quá lâu" in text
    assert 'value="Chứng thực bản sao (đã sửa tên)"' in text
    with runtime.db.reading() as s:
        assert (
            s.scalar(
                select(ProcedureDraft).where(
                    ProcedureDraft.scope == f"commune:{commune.id}", ProcedureDraft.code == code
                )
            )
            is None
        )


def test_two_admins_saving_at_once_do_not_overwrite_each_other_silently(
    app: Flask, runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    code = "khai-tu"
    other_id, _, _ = make_user(runtime, commune, Role.ADMIN)
    other = _client(app, runtime, other_id)
    _, mine = _editor(admin, code)
    _, theirs = _editor(other, code)
    first = other.post(
        f"{PANEL}/thu-tuc/{code}/soan", data=post_data(theirs, summary__vi="Của người kia")
    )
    assert first.status_code == 303
    second = admin.post(f"{PANEL}/thu-tuc/{code}/soan", data=post_data(mine, summary__vi="Của tôi"))
    assert second.status_code == 409
    text = _text(second)
    assert "Một người khác vừa lưu bản nháp này" in text and 'value="Của tôi"' in text
    again = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan",
        data=post_data(form_data(second.get_data(as_text=True), f"/thu-tuc/{code}/soan")),
    )
    assert again.status_code == 303  # the second press overwrites, knowingly
    _, saved = _editor(admin, code)
    assert saved["summary.vi"] == ["Của tôi"]


def test_autosave_answers_with_the_new_revision(commune: Commune, admin: FlaskClient) -> None:
    code = "ket-hon"
    _, form = _editor(admin, code)
    saved = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan",
        data=post_data(form, tags="ho-tich, hon-nhan"),
        headers={"X-Autosave": "1"},
    )
    assert saved.status_code == 200
    assert saved.get_json()["revision"] == 1
    stale = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan", data=post_data(form), headers={"X-Autosave": "1"}
    )
    assert stale.status_code == 409 and "message" in stale.get_json()


def test_a_file_is_imported_into_the_draft_only_when_it_works(
    runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    import io

    code = "giam-ho"
    shared = _shared_version_id(runtime, code)
    exported = admin.get(f"{PANEL}/phien-ban/{shared}.toml").get_data(as_text=True)
    edited = exported.replace('name.vi = "Đăng ký giám hộ"', 'name.vi = "Đăng ký giám hộ (mới)"')
    page, form = _editor(admin, code)
    token = form["csrf_token"][0]
    broken = edited.replace('kind = "select"', 'kind = "chon"', 1)
    refused = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan/nhap",
        data={
            "csrf_token": token,
            "revision": "0",
            "file": (io.BytesIO(broken.encode()), "x.toml"),
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "Không có kiểu ô «chon»" in _text(refused)
    accepted = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan/nhap",
        data={
            "csrf_token": token,
            "revision": "0",
            "file": (io.BytesIO(edited.encode()), "x.toml"),
        },
        content_type="multipart/form-data",
    )
    assert accepted.status_code == 303, _text(accepted)[:2000]
    _, form = _editor(admin, code)
    assert form["name.vi"] == ["Đăng ký giám hộ (mới)"]
    assert "procedure.draft_imported" in _audit_actions(runtime, commune.id)


# --- The commune's settings -----------------------------------------------------------------------


def test_settings_keep_the_time_within_the_legal_maximum_and_are_audited(
    app: Flask, runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    code = "xac-nhan-tinh-trang-hon-nhan"
    official_id, _, _ = make_user(runtime, commune, Role.OFFICIAL)
    page = admin.get(f"{PANEL}/thu-tuc/{code}")
    assert page.status_code == 200
    form = form_data(page.get_data(as_text=True), f"/thu-tuc/{code}")
    maximum = definition_of(_setting(runtime, commune, code).version).max_processing_days
    too_long = admin.post(
        f"{PANEL}/thu-tuc/{code}",
        data=post_data(form, processing_days=str(maximum + 1), result_place="Bộ phận Một cửa"),
    )
    assert too_long.status_code == 422
    text = too_long.get_data(as_text=True)
    assert f"Không được quá {maximum} ngày làm việc" in html_lib.unescape(
        errors_beside(text, "f-processing_days")
    )
    assert 'value="Bộ phận Một cửa"' in html_lib.unescape(text)  # kept as typed
    ok = admin.post(
        f"{PANEL}/thu-tuc/{code}",
        data=post_data(
            form,
            processing_days=str(maximum),
            fee_amount="5.000",
            result_place="Bộ phận Một cửa, sáng thứ Hai – thứ Sáu",
            officials=[str(official_id)],
        ),
    )
    assert ok.status_code == 303
    setting = _setting(runtime, commune, code)
    assert setting.processing_days == maximum and setting.fee_amount == 5000
    with runtime.db.reading() as s:
        assert s.get(StaffProcedure, (official_id, code)) is not None
        event = s.scalar(
            select(AuditEvent)
            .where(AuditEvent.commune_id == commune.id, AuditEvent.action == "procedure.settings")
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None and f'"officials_added":"{official_id}"' in event.detail
    closed = admin.post(
        f"{PANEL}/thu-tuc/{code}/bat-tat",
        data={"csrf_token": form["csrf_token"][0], "enabled": "0"},
    )
    assert closed.status_code == 303
    assert app.test_client().get(f"/x/{commune.slug}/{code}").status_code == 404
    assert "procedure.disabled" in _audit_actions(runtime, commune.id)
    admin.post(
        f"{PANEL}/thu-tuc/{code}/bat-tat",
        data={"csrf_token": form["csrf_token"][0], "enabled": "1"},
    )
    assert app.test_client().get(f"/x/{commune.slug}/{code}").status_code == 200


# --- Scope ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_procedure(app: Flask, commune: Commune, admin_id: int) -> Iterator[tuple[str, int]]:
    """A procedure only this commune has, published: (code, version id)."""
    runtime: Runtime = app.extensions["kiosk"]
    client = _client(app, runtime, admin_id)
    page = client.get(f"{PANEL}/thu-tuc/moi")
    token = form_data(page.get_data(as_text=True), "/thu-tuc/moi")["csrf_token"][0]
    shared = _shared_version_id(runtime, "chung-thuc-chu-ky")
    with runtime.db.reading() as s:
        row = s.get(ProcedureVersion, shared)
        assert row is not None
        text = row.definition.replace('code = "chung-thuc-chu-ky"', 'code = "xac-nhan-rieng"')
    import io

    made = client.post(
        f"{PANEL}/thu-tuc/moi",
        data={"csrf_token": token, "file": (io.BytesIO(text.encode()), "rieng.toml")},
        content_type="multipart/form-data",
    )
    assert made.status_code == 303, _text(made)[:2000]
    listing = _text(client.get(f"{PANEL}/thu-tuc"))
    assert "xac-nhan-rieng" in listing and "Chưa xuất bản" in listing
    page, form = _editor(client, "xac-nhan-rieng")
    assert f'href="{PANEL}/thu-tuc"' in page  # no settings yet: back to the list
    published = client.post(
        f"{PANEL}/thu-tuc/xac-nhan-rieng/soan", data=post_data(form, op="publish")
    )
    assert published.status_code == 303, _text(published)[:2000]
    setting = _setting(runtime, commune, "xac-nhan-rieng")
    assert not setting.enabled  # a new procedure waits for its fee and officials
    yield "xac-nhan-rieng", setting.version_id


def test_another_communes_admin_gets_404_and_it_is_audited(
    app: Flask, runtime: Runtime, own_procedure: tuple[str, int]
) -> None:
    code, version_id = own_procedure
    stranger_commune = make_commune(runtime, "Xã Người Lạ")
    stranger_id, _, _ = make_user(runtime, stranger_commune, Role.ADMIN)
    stranger = _client(app, runtime, stranger_id)
    for url in (
        f"{PANEL}/thu-tuc/{code}",
        f"{PANEL}/thu-tuc/{code}/soan",
        f"{PANEL}/thu-tuc/{code}/soan/xem-truoc",
        f"{PANEL}/phien-ban/{version_id}.toml",
        f"{PANEL}/phien-ban/{version_id}/xem-truoc",
        f"{PANEL}/xa",
    ):
        assert stranger.get(url).status_code == 404, url
    token = form_data(stranger.get(f"{PANEL}/thu-tuc/moi").get_data(as_text=True), "/thu-tuc/moi")
    attempt = stranger.post(
        f"{PANEL}/thu-tuc/{code}/bat-tat",
        data={"csrf_token": token["csrf_token"][0], "enabled": "1"},
    )
    assert attempt.status_code == 404
    with runtime.db.reading() as s:
        denied = list(
            s.scalars(
                select(AuditEvent.target).where(
                    AuditEvent.action == "access.denied",
                    AuditEvent.commune_id == stranger_commune.id,
                )
            )
        )
    assert f"procedure_version:{version_id}" in denied and f"procedure:{code}" in denied


def test_officials_and_leaders_get_404_on_the_panel(
    app: Flask, runtime: Runtime, commune: Commune
) -> None:
    for role in (Role.OFFICIAL, Role.LEADER):
        user_id, _, _ = make_user(runtime, commune, role)
        client = _client(app, runtime, user_id)
        assert client.get(f"{PANEL}/thu-tuc").status_code == 404
        assert client.get(f"{PANEL}/").status_code == 404


def test_the_province_admin_edits_the_shared_catalog_and_communes_follow(
    app: Flask, runtime: Runtime, commune: Commune
) -> None:
    code = "cham-dut-giam-ho"
    province_id, _, _ = make_user(runtime, None, Role.PROVINCE_ADMIN)
    province = _client(app, runtime, province_id)
    assert province.get(f"{PANEL}/").headers["Location"].endswith(f"{PANEL}/xa")
    listing = province.get(f"{PANEL}/thu-tuc")
    assert listing.status_code == 200 and code in listing.get_data(as_text=True)
    assert province.get(f"{PANEL}/thu-tuc/{code}").status_code == 302  # no commune settings
    before = _shared_version_id(runtime, code)
    _, form = _editor(province, code)
    published = province.post(
        f"{PANEL}/thu-tuc/{code}/soan",
        data=post_data(form, summary__vi="Chấm dứt việc giám hộ (tỉnh sửa).", op="publish"),
    )
    assert published.status_code == 303, _text(published)[:3000]
    after = _shared_version_id(runtime, code)
    assert after != before
    assert _setting(runtime, commune, code).version_id == after  # followed the shared catalog
    with runtime.db.reading() as s:
        demo = s.scalar(select(Commune).where(Commune.slug == "nhuan-duc"))
        assert demo is not None
        event = s.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "procedure.published", AuditEvent.commune_id.is_(None))
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None and '"scope":"shared"' in event.detail
        user = s.get(StaffUser, province_id)
        assert user is not None and user.commune_id is None


def test_the_panel_needs_a_signed_in_staff_member(app: Flask) -> None:
    response = app.test_client().get(f"{PANEL}/thu-tuc")
    assert response.status_code == 302 and "/can-bo/dang-nhap" in response.headers["Location"]


def test_every_panel_page_of_the_commune_admin_answers(
    commune: Commune, admin: FlaskClient
) -> None:
    for url in (
        f"{PANEL}/",
        f"{PANEL}/thu-tuc",
        f"{PANEL}/thu-tuc/moi",
        f"{PANEL}/thu-tuc/khai-sinh",
        f"{PANEL}/thu-tuc/khai-sinh/soan",
        f"{PANEL}/thu-tuc/khai-sinh/soan/o/0",
        f"{PANEL}/thu-tuc/khai-sinh/soan/xem-truoc",
        f"{PANEL}/xa-cua-toi",
    ):
        response = admin.get(url, follow_redirects=True)
        assert response.status_code == 200, url
        assert re.search(r"<html lang=\"vi\">", response.get_data(as_text=True)), url
    assert admin.get(f"{PANEL}/thu-tuc/khai-sinh/soan/o/999").status_code == 404


def test_the_exempt_group_field_is_chosen_in_the_editor_and_checked(
    runtime: Runtime, commune: Commune, admin: FlaskClient
) -> None:
    """The fee's exemption field is one of the procedure's select fields; naming a text field is
    refused beside the input, in Vietnamese, and nothing is published."""
    code = "nhan-cha-me-con"
    before = _setting(runtime, commune, code).version_id
    page, form = _editor(admin, code)
    assert form["fee.exemption_field"] == ["mien_le_phi"]  # the catalog's choice, shown
    choices = re.search(r'<select[^>]*name="fee.exemption_field".*?</select>', page, re.S)
    assert choices is not None and 'value="nyc_ho_ten"' not in choices[0]  # selects only
    saved = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan",
        data=post_data(form, op="publish", fee__exemption_field="nyc_ho_ten"),
    )
    assert saved.status_code == 422
    text = _text(saved)
    assert "phải là ô chọn một (select) liệt kê các đối tượng được miễn" in text
    assert _setting(runtime, commune, code).version_id == before
    discard = admin.post(
        f"{PANEL}/thu-tuc/{code}/soan/huy", data={"csrf_token": form["csrf_token"][0]}
    )
    assert discard.status_code == 303
