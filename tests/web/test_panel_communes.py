"""The province admin's administrative units over HTTP: add and edit communes (errors beside the
inputs, what was typed kept), stop one into a successor, import the official list (plan first,
then apply), and the commune admin's own address and office hours. Every change is audited.
"""

from __future__ import annotations

import html as html_lib
import io
import secrets

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.accounts import Role
from storage.models import AuditEvent, Commune, CommuneProcedure
from storage.runtime import Runtime
from tests.panel_support import errors_beside, form_data, post_data
from tests.staff_support import make_commune, make_user, sign_in_cookie

PANEL = "/can-bo/quan-tri"


def _client(app: Flask, runtime: Runtime, user_id: int) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    return client


@pytest.fixture(scope="module")
def province_id(app: Flask) -> int:
    return make_user(app.extensions["kiosk"], None, Role.PROVINCE_ADMIN)[0]


@pytest.fixture()
def province(app: Flask, runtime: Runtime, province_id: int) -> FlaskClient:
    return _client(app, runtime, province_id)


def _free_code(runtime: Runtime) -> str:
    with runtime.db.reading() as s:
        taken = set(s.scalars(select(Commune.code)))
    while (code := f"{secrets.randbelow(90000) + 10000}") in taken:
        pass
    return code


def _by_code(runtime: Runtime, code: str) -> Commune | None:
    with runtime.db.reading() as s:
        row = s.scalar(select(Commune).where(Commune.code == code))
        if row is not None:
            s.expunge(row)
        return row


def _actions(runtime: Runtime, commune_id: int) -> list[str]:
    with runtime.db.reading() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.commune_id == commune_id)
                .order_by(AuditEvent.seq)
            )
        )


def test_adding_a_commune_shows_every_problem_beside_its_input_and_keeps_the_rest(
    runtime: Runtime, province: FlaskClient
) -> None:
    page = province.get(f"{PANEL}/xa/moi")
    assert page.status_code == 200
    form = form_data(page.get_data(as_text=True), "/xa/moi")
    refused = province.post(
        f"{PANEL}/xa/moi",
        data=post_data(
            form,
            code="2751",
            name="Xã Tân Phú Trung",
            province_code="79",
            province_name="Thành phố Hồ Chí Minh",
            slug="nhuan-duc",
            bank_bin="970405",
            bank_account="1700 2012 3456 7",
            bank_account_name="UBND XA TAN PHU TRUNG",
        ),
    )
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "đúng 5 chữ số" in html_lib.unescape(errors_beside(text, "f-code"))
    assert "Đã dùng cho Xã Nhuận Đức" in html_lib.unescape(errors_beside(text, "f-slug"))
    assert "tài khoản chuyên thu của UBND xã" in html_lib.unescape(
        errors_beside(text, "f-account_confirmed")
    )
    assert 'value="Xã Tân Phú Trung"' in html_lib.unescape(text)

    code = _free_code(runtime)
    created = province.post(
        f"{PANEL}/xa/moi",
        data=post_data(
            form_data(text, "/xa/moi"),
            code=code,
            slug=f"tan-phu-trung-{code}",
            account_confirmed="on",
        ),
    )
    assert created.status_code == 303, created.get_data(as_text=True)[:2000]
    commune = _by_code(runtime, code)
    assert commune is not None and commune.name == "Xã Tân Phú Trung"
    assert commune.bank_account == "1700201234567" and commune.bank_account_name
    with runtime.db.reading() as s:
        settings = list(
            s.scalars(select(CommuneProcedure).where(CommuneProcedure.commune_id == commune.id))
        )
    assert settings and not any(p.enabled for p in settings)
    assert _actions(runtime, commune.id)[:2] == ["commune.added", "fees.account_set"]

    # Editing: an unchanged page changes nothing; a rename is audited with the name before.
    edit = province.get(f"{PANEL}/xa/{commune.id}").get_data(as_text=True)
    form = form_data(edit, f"/xa/{commune.id}")
    same = province.post(f"{PANEL}/xa/{commune.id}", data=post_data(form, account_confirmed="on"))
    assert same.status_code == 303
    assert "Không có gì thay đổi" in province.get(same.headers["Location"]).get_data(as_text=True)
    renamed = province.post(
        f"{PANEL}/xa/{commune.id}",
        data=post_data(form, name="Xã Tân Phú Trung Mới", account_confirmed="on"),
    )
    assert renamed.status_code == 303
    assert _by_code(runtime, code).name == "Xã Tân Phú Trung Mới"  # type: ignore[union-attr]
    assert "commune.updated" in _actions(runtime, commune.id)


def test_stopping_a_commune_needs_a_successor_and_a_confirmation(
    app: Flask, runtime: Runtime, province: FlaskClient
) -> None:
    gone = make_commune(runtime, "Xã Sắp Sáp Nhập")
    stays = make_commune(runtime, "Xã Tiếp Nhận")
    page = province.get(f"{PANEL}/xa/{gone.id}").get_data(as_text=True)
    form = form_data(page, f"/xa/{gone.id}/ngung")
    unconfirmed = province.post(
        f"{PANEL}/xa/{gone.id}/ngung", data=post_data(form, successor_id=str(stays.id))
    )
    assert unconfirmed.status_code == 422
    assert _by_code(runtime, gone.code).active  # type: ignore[union-attr]
    no_successor = province.post(
        f"{PANEL}/xa/{gone.id}/ngung", data=post_data(form, successor_id="", confirm="on")
    )
    assert no_successor.status_code == 422
    assert "Xin chọn xã đang hoạt động" in html_lib.unescape(
        errors_beside(no_successor.get_data(as_text=True), "f-successor_id")
    )
    done = province.post(
        f"{PANEL}/xa/{gone.id}/ngung",
        data=post_data(form, successor_id=str(stays.id), confirm="on"),
    )
    assert done.status_code == 303
    after = _by_code(runtime, gone.code)
    assert after is not None and not after.active and after.successor_id == stays.id
    assert "commune.merged" in _actions(runtime, gone.id)
    listing = province.get(f"{PANEL}/xa").get_data(as_text=True)
    assert "Đã sáp nhập vào" in html_lib.unescape(listing)
    reopened = province.post(
        f"{PANEL}/xa/{gone.id}/mo-lai", data={"csrf_token": form["csrf_token"][0]}
    )
    assert reopened.status_code == 303 and _by_code(runtime, gone.code).active  # type: ignore[union-attr]


def test_importing_the_official_list_shows_the_plan_then_applies_it(
    runtime: Runtime, province: FlaskClient
) -> None:
    keeps = make_commune(runtime, "Xã Bình Mỹ")
    merged = make_commune(runtime, "Xã Hòa Phú")
    new_code = _free_code(runtime)
    csv_text = (
        "ma_xa;ten_xa;ma_tinh;ten_tinh;ma_cu\n"
        f"{keeps.code};Xã Bình Mỹ Mới;79;Thành phố Hồ Chí Minh;{merged.code}\n"
        f"{new_code};Xã Hòa Lợi;79;Thành phố Hồ Chí Minh;\n"
    )
    page = province.get(f"{PANEL}/xa/nhap").get_data(as_text=True)
    token = form_data(page, "/xa/nhap")["csrf_token"][0]
    planned = province.post(
        f"{PANEL}/xa/nhap",
        data={"csrf_token": token, "file": (io.BytesIO(csv_text.encode()), "danh-muc.csv")},
        content_type="multipart/form-data",
    )
    assert planned.status_code == 200
    text = html_lib.unescape(planned.get_data(as_text=True))
    assert "sáp nhập vào Xã Bình Mỹ Mới" in text and "Thêm Xã Hòa Lợi" in text
    assert _by_code(runtime, merged.code).active  # type: ignore[union-attr]  # nothing yet
    apply_form = form_data(planned.get_data(as_text=True), "/xa/nhap/ap-dung")
    applied = province.post(f"{PANEL}/xa/nhap/ap-dung", data=apply_form)
    assert applied.status_code == 303
    assert not _by_code(runtime, merged.code).active  # type: ignore[union-attr]
    assert _by_code(runtime, keeps.code).name == "Xã Bình Mỹ Mới"  # type: ignore[union-attr]
    assert _by_code(runtime, new_code) is not None
    # The same plan again is stale (the install changed): a new plan is shown instead.
    again = province.post(f"{PANEL}/xa/nhap/ap-dung", data=apply_form)
    assert again.status_code == 409
    assert "Danh sách xã đã thay đổi" in html_lib.unescape(again.get_data(as_text=True))


def test_a_file_that_is_not_the_list_is_refused_on_the_upload_page(
    province: FlaskClient,
) -> None:
    page = province.get(f"{PANEL}/xa/nhap").get_data(as_text=True)
    token = form_data(page, "/xa/nhap")["csrf_token"][0]
    refused = province.post(
        f"{PANEL}/xa/nhap",
        data={"csrf_token": token, "file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "Dòng đầu phải là tên cột" in html_lib.unescape(refused.get_data(as_text=True))


def test_the_commune_admin_sets_its_own_office_hours_but_not_the_list(
    app: Flask, runtime: Runtime
) -> None:
    commune = make_commune(runtime, "Xã Giờ Làm Việc")
    admin_id, _, _ = make_user(runtime, commune, Role.ADMIN)
    admin = _client(app, runtime, admin_id)
    assert admin.get(f"{PANEL}/xa").status_code == 404
    assert admin.get(f"{PANEL}/xa/{commune.id}").status_code == 404
    page = admin.get(f"{PANEL}/xa-cua-toi").get_data(as_text=True)
    form = form_data(page, "/xa-cua-toi")
    too_long = admin.post(f"{PANEL}/xa-cua-toi", data=post_data(form, phone="0" * 40))
    assert too_long.status_code == 422
    assert 'value="' + "0" * 40 + '"' in too_long.get_data(as_text=True)
    saved = admin.post(
        f"{PANEL}/xa-cua-toi",
        data=post_data(form, office_hours="Thứ Hai – Thứ Sáu 7:30–11:30, 13:30–17:00"),
    )
    assert saved.status_code == 303
    assert _by_code(runtime, commune.code).office_hours.startswith("Thứ Hai")  # type: ignore[union-attr]
    assert "commune.contact_updated" in _actions(runtime, commune.id)
    province_only = make_user(runtime, None, Role.PROVINCE_ADMIN)[0]
    assert _client(app, runtime, province_only).get(f"{PANEL}/xa-cua-toi").status_code == 404
