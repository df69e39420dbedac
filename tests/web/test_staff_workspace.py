"""The workspace pages: queue markers, the dossier page and its forms, downloads, reports, accounts.

A commune of its own per module; staff are signed in with a real server-side session.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from core import services
from core.accounts import Role
from storage.files import FileStore
from storage.models import Attachment, Commune, Dossier, StaffUser
from storage.runtime import Runtime
from tests.staff_support import (
    dossier_row,
    make_commune,
    make_dossier,
    make_dossier_with_file,
    make_user,
    png_bytes,
    sign_in_cookie,
)

KS = "khai-sinh"


@dataclass
class Office:
    app: Flask
    runtime: Runtime
    commune: Commune
    official: FlaskClient
    official_id: int
    leader: FlaskClient
    admin: FlaskClient


def client_for(app: Flask, runtime: Runtime, user_id: int) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    return client


@pytest.fixture(scope="module")
def office(app: Flask) -> Office:
    runtime: Runtime = app.extensions["kiosk"]
    commune = make_commune(runtime, "Xã Văn Phòng")
    official_id = make_user(runtime, commune, Role.OFFICIAL, procedures=(KS, "ket-hon"))[0]
    leader_id = make_user(runtime, commune, Role.LEADER)[0]
    admin_id = make_user(runtime, commune, Role.ADMIN)[0]
    return Office(
        app,
        runtime,
        commune,
        client_for(app, runtime, official_id),
        official_id,
        client_for(app, runtime, leader_id),
        client_for(app, runtime, admin_id),
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def version_of(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match
    return match.group(1)


def no_inline_script(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "javascript:" not in html


def set_due(office: Office, code: str, due: date) -> None:
    with office.runtime.db.writing() as s:
        s.execute(
            update(Dossier)
            .where(Dossier.commune_id == office.commune.id, Dossier.code == code)
            .values(due_date=due)
        )


def test_queue_marks_overdue_and_due_today_with_words_and_icons(office: Office) -> None:
    today = office.runtime.calendar.local_date(datetime.now(UTC))
    late = make_dossier(office.runtime, office.commune, KS)
    due = make_dossier(office.runtime, office.commune, KS)
    set_due(office, late, today - timedelta(days=3))
    set_due(office, due, today)
    response = office.official.get("/can-bo/ho-so")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    no_inline_script(html)
    row = re.search(rf"<tr class=\"overdue\">.*?{late}.*?</tr>", html, re.S)
    assert row and "⚠" in row.group(0) and "Quá hạn" in row.group(0)
    row = re.search(rf"<tr class=\"due_today\">.*?{due}.*?</tr>", html, re.S)
    assert row and "◷" in row.group(0) and "Đến hạn hôm nay" in row.group(0)
    assert html.index(late) < html.index(due)  # most urgent first
    english_reader = client_for(office.app, office.runtime, office.official_id)
    english = english_reader.get("/can-bo/ho-so?lang=en").get_data(as_text=True)
    assert "Overdue" in english and "Due today" in english
    only_late = office.official.get("/can-bo/ho-so?han=overdue").get_data(as_text=True)
    assert late in only_late and due not in only_late


def test_dossier_page_shows_data_and_valid_signatures(office: Office) -> None:
    code = make_dossier(
        office.runtime, office.commune, KS, data={"ho_ten_tre": "Phạm Thị Xuân Mai"}
    )
    response = office.official.get(f"/can-bo/ho-so/{code}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    no_inline_script(html)
    assert "Phạm Thị Xuân Mai" in html and "Chữ ký số hợp lệ" in html
    assert "CẢNH BÁO" not in html
    assert "Nhận xử lý" in html and "Từ chối" in html


def test_a_tampered_dossier_is_shown_loudly(office: Office) -> None:
    code = make_dossier(office.runtime, office.commune, KS)
    with office.runtime.db.writing() as s:
        s.execute(
            update(Dossier)
            .where(Dossier.commune_id == office.commune.id, Dossier.code == code)
            .values(content_hash="0" * 64)
        )
    html = office.leader.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    assert "CẢNH BÁO: HỒ SƠ CÓ DẤU HIỆU BỊ SỬA ĐỔI" in html and 'role="alert"' in html
    assert "Chữ ký số hợp lệ" not in html


def test_claim_then_refuse_needs_a_reason_beside_the_field(office: Office) -> None:
    code = make_dossier(office.runtime, office.commune, KS)
    page = office.official.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    token, version = csrf_of(page), version_of(page)
    claimed = office.official.post(
        f"/can-bo/ho-so/{code}/thao-tac",
        data={"csrf_token": token, "version": version, "action": "claim"},
    )
    assert claimed.status_code == 303
    page = office.official.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    assert "Bạn đã nhận xử lý hồ sơ." in page
    version = version_of(page)
    empty = office.official.post(
        f"/can-bo/ho-so/{code}/thao-tac",
        data={"csrf_token": token, "version": version, "action": "refuse", "reason": " "},
    )
    html = empty.get_data(as_text=True)
    assert empty.status_code == 422
    assert 'id="f-refuse-reason-error"' in html and "lý do từ chối" in html
    # A stale page (lost CSRF token): nothing done, the reason typed is still there.
    stale = office.official.post(
        f"/can-bo/ho-so/{code}/thao-tac",
        data={"version": version, "action": "refuse", "reason": "Sai tên cha trong tờ khai."},
    )
    html = stale.get_data(as_text=True)
    assert stale.status_code == 422 and "Sai tên cha trong tờ khai." in html
    assert "Trang đã mở quá lâu" in html
    done = office.official.post(
        f"/can-bo/ho-so/{code}/thao-tac",
        data={
            "csrf_token": token,
            "version": version,
            "action": "refuse",
            "reason": "Sai tên cha trong tờ khai.",
        },
    )
    assert done.status_code == 303
    assert dossier_row(office.runtime, office.commune, code).state == "refused"


def test_a_second_click_on_an_old_page_is_refused_clearly(office: Office) -> None:
    code = make_dossier(office.runtime, office.commune, KS)
    page = office.official.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    form = {"csrf_token": csrf_of(page), "version": version_of(page), "action": "claim"}
    assert office.official.post(f"/can-bo/ho-so/{code}/thao-tac", data=form).status_code == 303
    again = office.official.post(f"/can-bo/ho-so/{code}/thao-tac", data=form)
    assert again.status_code == 409
    assert "người khác thay đổi" in again.get_data(as_text=True)


def test_apology_errors_stay_beside_their_fields(office: Office) -> None:
    code = make_dossier(office.runtime, office.commune, KS)
    page = office.official.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    token = csrf_of(page)
    office.official.post(
        f"/can-bo/ho-so/{code}/thao-tac",
        data={"csrf_token": token, "version": version_of(page), "action": "claim"},
    )
    page = office.official.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    bad = office.official.post(
        f"/can-bo/ho-so/{code}/xin-loi",
        data={
            "csrf_token": token,
            "version": version_of(page),
            "new_due": "hôm qua",
            "reason": "Chờ xác minh của xã khác.",
        },
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'id="f-apology-new_due-error"' in html and "ngày/tháng/năm" in html
    assert "Chờ xác minh của xã khác." in html and 'value="hôm qua"' in html


def test_attachment_download_and_a_swapped_file(office: Office) -> None:
    code, public_id = make_dossier_with_file(office.runtime, office.commune, KS)
    url = f"/can-bo/ho-so/{code}/tep/{public_id}"
    response = office.official.get(url)
    assert response.status_code == 200 and response.data == png_bytes()
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    with office.runtime.db.reading() as s:
        att = s.scalar(select(Attachment).where(Attachment.public_id == public_id))
        assert att is not None
        name = att.storage_name
    store = FileStore(office.runtime.upload_dir)
    store.write(name, store.read(name)[:-2] + b"xx")
    swapped = office.official.get(url)
    assert swapped.status_code == 409
    assert "không khớp" in swapped.get_data(as_text=True) and swapped.data != png_bytes()


def test_reports_page_csv_and_print(office: Office) -> None:
    rt = office.runtime
    with rt.db.writing() as s:
        commune = s.get(Commune, office.commune.id)
        services.create_poster(
            s,
            commune=commune,
            code=KS,
            location='=HYPERLINK("http://evil.example","Bấm vào đây")',
            keys=rt.keys,
            now=datetime.now(UTC),
        )
    make_dossier(rt, office.commune, KS)
    page = office.leader.get("/can-bo/bao-cao")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Đăng ký khai sinh" in html
    no_inline_script(html)
    response = office.leader.get("/can-bo/bao-cao/thu-tuc.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][0] == "Mã thủ tục" and rows[0][2] == "Tiếp nhận trong kỳ"
    births = next(r for r in rows if r[0] == KS)
    assert births[1] == "Đăng ký khai sinh" and int(births[2]) >= 1
    posters = office.leader.get("/can-bo/bao-cao/ap-phich.csv").data.decode("utf-8-sig")
    cells = [c for row in csv.reader(io.StringIO(posters)) for c in row]
    assert '\'=HYPERLINK("http://evil.example","Bấm vào đây")' in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    printable = office.admin.get("/can-bo/bao-cao/in").get_data(as_text=True)
    no_inline_script(printable)
    assert "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ" in printable and "staff.js" in printable


def test_admin_creates_an_account_with_errors_beside_fields(office: Office) -> None:
    form_page = office.admin.get("/can-bo/nguoi-dung/moi").get_data(as_text=True)
    no_inline_script(form_page)
    token = csrf_of(form_page)
    bad = office.admin.post(
        "/can-bo/nguoi-dung/moi",
        data={
            "csrf_token": token,
            "username": "Tên Có Dấu",
            "display_name": "Nguyễn Thị Lan – Công chức Tư pháp",
            "role": "official",
        },
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'id="f-username-error"' in html and "Nguyễn Thị Lan – Công chức Tư pháp" in html
    assert "ít nhất một thủ tục" in html
    username = f"vanphong.lan{office.commune.code}"
    good = office.admin.post(
        "/can-bo/nguoi-dung/moi",
        data={
            "csrf_token": token,
            "username": username,
            "display_name": "Nguyễn Thị Lan",
            "role": "official",
            "procedures": [KS],
        },
    )
    assert good.status_code == 200 and "chỉ hiện MỘT LẦN" in good.get_data(as_text=True)
    with office.runtime.db.reading() as s:
        user = s.scalar(select(StaffUser).where(StaffUser.username == username))
        assert user is not None and user.must_change_password
        assert user.commune_id == office.commune.id
    listing = office.admin.get("/can-bo/nguoi-dung").get_data(as_text=True)
    assert username in listing and "Đăng ký khai sinh" in listing


def test_audit_log_page(office: Office) -> None:
    html = office.leader.get("/can-bo/nhat-ky").get_data(as_text=True)
    assert "Nhật ký kiểm toán" in html and "dossier.view" in html
    no_inline_script(html)


def test_every_staff_page_here_is_no_store(office: Office) -> None:
    for client, path in (
        (office.official, "/can-bo/ho-so"),
        (office.leader, "/can-bo/bao-cao"),
        (office.admin, "/can-bo/nguoi-dung"),
    ):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
