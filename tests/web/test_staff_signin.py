"""Signing in to the staff side through the pages: passwords, second factor, throttling, sessions.

Every test makes its own accounts (unique usernames), so the shared rate counters of one test do
not throttle another.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from core.accounts import Role
from core.staff_auth import enrolment_secret, token_id
from storage.models import AuditEvent, Commune, StaffSession, StaffUser
from storage.runtime import Runtime
from tests.staff_support import make_user

PASSWORD = "lúa chín vàng cả đồng 2026"
LOGIN = "/can-bo/dang-nhap"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:400]
    return match.group(1)


def form_token(client: FlaskClient, path: str) -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def sign_in(
    client: FlaskClient, username: str, password: str = PASSWORD, *, address: str = "10.0.0.1"
):
    token = form_token(client, LOGIN)
    return client.post(
        LOGIN,
        data={"csrf_token": token, "username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def staff_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("kiosk_staff", path="/can-bo")
    return cookie.value if cookie else None


@pytest.fixture()
def commune(runtime: Runtime) -> Commune:
    with runtime.db.reading() as s:
        found = s.scalar(select(Commune).where(Commune.slug == "nhuan-duc"))
        assert found is not None
        s.expunge(found)
        return found


def official(runtime: Runtime, commune: Commune, **kw: object) -> tuple[int, str]:
    user_id, username, _ = make_user(
        runtime, commune, Role.OFFICIAL, procedures=("khai-sinh",), password=PASSWORD, **kw
    )  # type: ignore[arg-type]
    return user_id, username


def test_sign_in_page_is_vietnamese_with_csrf_and_no_inline_script(client: FlaskClient) -> None:
    response = client.get(LOGIN)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Đăng nhập cán bộ" in html and 'name="csrf_token"' in html
    assert "<script>" not in html and not re.search(r"\son[a-z]+=", html)
    assert "Staff sign-in" in client.get(LOGIN + "?lang=en").get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_staff_pages_ask_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/can-bo/ho-so?han=overdue")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(LOGIN + "?next=")


def test_a_good_sign_in_opens_a_server_side_session(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    response = sign_in(client, username)
    assert response.status_code == 303 and response.headers["Location"].endswith("/can-bo/")
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("kiosk_staff="))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/can-bo" in header
    token = staff_cookie(client)
    assert token
    with runtime.db.reading() as s:
        row = s.get(StaffSession, token_id(token))
        assert row is not None and row.user_id == user_id and row.second_factor_done
        assert s.get(StaffSession, token) is None  # the table never holds the token itself
    assert client.get("/can-bo/ho-so").status_code == 200


def test_wrong_password_keeps_the_username_and_is_audited(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    response = sign_in(client, username, "not the password")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in html
    assert f'value="{username}"' in html and "not the password" not in html
    with runtime.db.reading() as s:
        last = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "auth.login_failed", AuditEvent.target == f"user:{user_id}"
            )
        ).all()
    assert len(last) == 1
    unknown = sign_in(client, "khong.co.ai")
    assert unknown.status_code == 422
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in unknown.get_data(as_text=True)


def test_missing_csrf_keeps_what_was_typed(client: FlaskClient) -> None:
    response = client.post(LOGIN, data={"username": "nhuanduc.hotich", "password": "x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Trang đã mở quá lâu" in html and 'value="nhuanduc.hotich"' in html


def test_empty_fields_get_errors_beside_them(client: FlaskClient) -> None:
    token = form_token(client, LOGIN)
    html = client.post(LOGIN, data={"csrf_token": token}).get_data(as_text=True)
    assert 'id="f-username-error"' in html and 'id="f-password-error"' in html


def test_throttled_per_account_and_address_but_not_from_elsewhere(
    client: FlaskClient, app: Flask, runtime: Runtime, commune: Commune
) -> None:
    _, username = official(runtime, commune)
    for _ in range(5):
        assert sign_in(client, username, "sai mật khẩu", address="203.0.113.50").status_code == 422
    blocked = sign_in(client, username, address="203.0.113.50")  # even the right password
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "quá nhiều lần" in blocked.get_data(as_text=True)
    assert staff_cookie(client) is None
    elsewhere = app.test_client()
    assert sign_in(elsewhere, username, address="10.1.1.1").status_code == 303


def test_first_sign_in_forces_a_new_password(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune, must_change=True)
    response = sign_in(client, username)
    assert response.headers["Location"].endswith("/can-bo/doi-mat-khau")
    assert client.get("/can-bo/ho-so").headers["Location"].endswith("/can-bo/doi-mat-khau")
    old_token = staff_cookie(client)
    token = form_token(client, "/can-bo/doi-mat-khau")
    bad = client.post(
        "/can-bo/doi-mat-khau",
        data={"csrf_token": token, "current": PASSWORD, "new": "ngắn", "repeat": "ngắn"},
    )
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="f-new-error"' in html and "ít nhất 10 ký tự" in html
    new = "mùa nước nổi miền tây 1945"
    good = client.post(
        "/can-bo/doi-mat-khau",
        data={"csrf_token": token, "current": PASSWORD, "new": new, "repeat": new},
    )
    assert good.status_code == 303
    assert staff_cookie(client) != old_token  # a new session
    assert client.get("/can-bo/ho-so").status_code == 200
    with runtime.db.reading() as s:
        user = s.get(StaffUser, user_id)
        assert user is not None and not user.must_change_password
        old = s.get(StaffSession, token_id(old_token or ""))
        assert old is not None and old.revoked


def test_sign_out_ends_the_session(client: FlaskClient, runtime: Runtime, commune: Commune) -> None:
    _, username = official(runtime, commune)
    sign_in(client, username)
    token = staff_cookie(client)
    csrf = form_token(client, "/can-bo/ho-so")
    response = client.post("/can-bo/dang-xuat", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"].endswith(LOGIN)
    again = client.get("/can-bo/ho-so")
    assert again.status_code == 302
    replay = client.application.test_client()
    replay.set_cookie("kiosk_staff", token or "", path="/can-bo")
    assert replay.get("/can-bo/ho-so").status_code == 302


def test_idle_and_absolute_timeouts(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    sign_in(client, username)
    sid = token_id(staff_cookie(client) or "")
    now = datetime.now(UTC)
    with runtime.db.writing() as s:
        s.execute(
            update(StaffSession)
            .where(StaffSession.id == sid)
            .values(last_seen_at=now - timedelta(minutes=31))
        )
    idle = client.get("/can-bo/ho-so")
    assert idle.status_code == 302 and "het_han=idle" in idle.headers["Location"]
    assert "Phiên làm việc đã hết hạn" in client.get(idle.headers["Location"]).get_data(
        as_text=True
    )

    sign_in(client, username)
    sid = token_id(staff_cookie(client) or "")
    with runtime.db.writing() as s:
        s.execute(
            update(StaffSession)
            .where(StaffSession.id == sid)
            .values(created_at=now - timedelta(hours=10, minutes=1), last_seen_at=now)
        )
        s.execute(
            update(StaffUser)
            .where(StaffUser.id == user_id)
            .values(password_changed_at=now - timedelta(days=1))
        )
    expired = client.get("/can-bo/ho-so")
    assert expired.status_code == 302 and "het_han=expired" in expired.headers["Location"]


def test_disabling_a_user_ends_their_sessions(
    client: FlaskClient, app: Flask, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    sign_in(client, username)
    assert client.get("/can-bo/ho-so").status_code == 200
    admin = app.test_client()
    _, admin_name, _ = make_user(runtime, commune, Role.ADMIN, password=PASSWORD)
    sign_in(admin, admin_name)
    csrf = form_token(admin, "/can-bo/nguoi-dung")
    done = admin.post(
        f"/can-bo/nguoi-dung/{user_id}/trang-thai", data={"csrf_token": csrf, "active": "0"}
    )
    assert done.status_code == 303
    assert client.get("/can-bo/ho-so").status_code == 302
    refused = sign_in(client, username)
    assert refused.status_code == 422 and "đã bị khóa" in refused.get_data(as_text=True)


def test_an_admin_password_reset_ends_sessions_and_forces_a_change(
    client: FlaskClient, app: Flask, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    sign_in(client, username)
    admin = app.test_client()
    _, admin_name, _ = make_user(runtime, commune, Role.ADMIN, password=PASSWORD)
    sign_in(admin, admin_name)
    csrf = form_token(admin, "/can-bo/nguoi-dung")
    page = admin.post(f"/can-bo/nguoi-dung/{user_id}/mat-khau", data={"csrf_token": csrf})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "chỉ hiện MỘT LẦN" in html
    one_time = re.search(r'<span class="code" id="otp">([^<]+)</span>', html)
    assert one_time
    assert client.get("/can-bo/ho-so").status_code == 302
    assert sign_in(client, username, PASSWORD).status_code == 422
    fresh = sign_in(client, username, one_time.group(1))
    assert fresh.headers["Location"].endswith("/can-bo/doi-mat-khau")


def test_second_factor_enrol_then_single_use_codes(
    client: FlaskClient, app: Flask, runtime: Runtime, commune: Commune
) -> None:
    user_id, username = official(runtime, commune)
    sign_in(client, username)
    page = client.get("/can-bo/bao-mat/xac-thuc-hai-buoc")
    assert page.status_code == 200 and "<svg" in page.get_data(as_text=True)
    secret = enrolment_secret(
        runtime.keys.secret_key, user_id, token_id(staff_cookie(client) or "")
    )
    csrf = csrf_of(page.get_data(as_text=True))
    wrong = client.post(
        "/can-bo/bao-mat/xac-thuc-hai-buoc", data={"csrf_token": csrf, "code": "000000"}
    )
    assert wrong.status_code == 422 and 'id="f-code-error"' in wrong.get_data(as_text=True)
    code = pyotp.TOTP(secret).now()
    assert (
        client.post(
            "/can-bo/bao-mat/xac-thuc-hai-buoc", data={"csrf_token": csrf, "code": code}
        ).status_code
        == 303
    )
    with runtime.db.reading() as s:
        user = s.get(StaffUser, user_id)
        assert (
            user is not None and user.totp_secret_sealed and secret not in user.totp_secret_sealed
        )

    # From now on the password alone opens only the code page.
    other = app.test_client()
    step_one = sign_in(other, username)
    assert step_one.headers["Location"].endswith("/can-bo/dang-nhap/ma")
    assert other.get("/can-bo/ho-so").headers["Location"].endswith("/can-bo/dang-nhap/ma")
    csrf = form_token(other, "/can-bo/dang-nhap/ma")
    # The code just used for enrolment is spent: a replay is refused.
    replay = other.post("/can-bo/dang-nhap/ma", data={"csrf_token": csrf, "code": code})
    assert replay.status_code == 422 and "đã dùng rồi" in replay.get_data(as_text=True)
    half_open = staff_cookie(other)
    fresh = pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30))
    done = other.post("/can-bo/dang-nhap/ma", data={"csrf_token": csrf, "code": fresh})
    assert done.status_code == 303
    assert staff_cookie(other) != half_open
    assert other.get("/can-bo/ho-so").status_code == 200
    assert other.get_cookie("kiosk_staff_device", path="/can-bo") is not None


def test_an_install_can_require_the_second_factor(
    client: FlaskClient, app: Flask, runtime: Runtime, commune: Commune, monkeypatch
) -> None:
    monkeypatch.setitem(app.config, "STAFF_REQUIRE_TOTP", True)
    _, username = official(runtime, commune)
    response = sign_in(client, username)
    assert response.headers["Location"].endswith("/can-bo/bao-mat/xac-thuc-hai-buoc")
    assert (
        client.get("/can-bo/ho-so")
        .headers["Location"]
        .endswith("/can-bo/bao-mat/xac-thuc-hai-buoc")
    )
    assert client.get("/can-bo/bao-mat/xac-thuc-hai-buoc").status_code == 200


def test_next_only_goes_to_staff_pages(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    _, username = official(runtime, commune)
    token = form_token(client, LOGIN)
    response = client.post(
        LOGIN,
        data={
            "csrf_token": token,
            "username": username,
            "password": PASSWORD,
            "next": "https://evil.example/can-bo/",
        },
    )
    assert response.headers["Location"].endswith("/can-bo/")
    assert "evil" not in response.headers["Location"]
