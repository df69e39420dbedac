"""The staff header: every role is offered exactly the areas it can open, and nothing else.

For each role, the entry page of every staff area (the workspace's pages and every other staff
blueprint's, whatever the install registers) is requested: the header must link it if and only if
the role gets it (200), and every link must lead to a page that opens. The current area is marked
for screen readers (aria-current), and the sign-out is a form with a CSRF token.
"""

from __future__ import annotations

import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.accounts import Role
from storage.runtime import Runtime
from tests.staff_support import make_commune, make_user, sign_in_cookie

STAFF_BLUEPRINTS = ("staff_posters", "staff_payments", "staff_panel")
# The workspace's own areas (admin blueprint): one entry page each.
WORKSPACE_AREAS = ("/can-bo/ho-so", "/can-bo/bao-cao", "/can-bo/nguoi-dung", "/can-bo/nhat-ky")

ROLES = {
    "official": (Role.OFFICIAL, True, ("khai-sinh",)),
    "leader": (Role.LEADER, True, ()),
    "admin": (Role.ADMIN, True, ()),
    "province-admin": (Role.PROVINCE_ADMIN, False, ()),
}


def entry_pages(app: Flask) -> list[str]:
    """Every staff area's entry page: the workspace's, and the shortest argument-free GET route
    of each other staff blueprint the app has."""
    pages = list(WORKSPACE_AREAS)
    for blueprint in STAFF_BLUEPRINTS:
        rules = [
            r.rule
            for r in app.url_map.iter_rules()
            if r.endpoint.startswith(f"{blueprint}.") and not r.arguments and "GET" in r.methods
        ]
        if rules:
            pages.append(min(rules, key=lambda rule: (len(rule), rule)))
    return pages


def header_links(page: str) -> dict[str, str]:
    """The header's area links: {path: label}."""
    nav = re.search(r'<ul class="areas"[^>]*>(.*?)</ul>', page, re.S)
    assert nav, "no area navigation in the header"
    return {
        unescape(href): unescape(label)
        for href, label in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav[1])
    }


@pytest.fixture(scope="module")
def clients(app: Flask) -> dict[str, FlaskClient]:
    runtime: Runtime = app.extensions["kiosk"]
    commune = make_commune(runtime, "Xã Điều Hướng")
    out = {}
    for name, (role, in_commune, procedures) in ROLES.items():
        where = commune if in_commune else None
        user_id = make_user(runtime, where, role, procedures=procedures)[0]
        client = app.test_client()
        client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
        out[name] = client
    return out


@pytest.mark.parametrize("role", list(ROLES))
def test_the_header_links_exactly_the_areas_the_role_can_open(
    app: Flask, clients: dict[str, FlaskClient], role: str
) -> None:
    client = clients[role]
    home = client.get("/can-bo/", follow_redirects=True)
    assert home.status_code == 200
    links = header_links(home.get_data(as_text=True))
    opens = {
        path
        for path in entry_pages(app)
        if client.get(path, follow_redirects=True).status_code == 200
    }
    assert set(links) == opens, (role, sorted(links), sorted(opens))
    assert len(set(links.values())) == len(links), "two areas with the same name"


def test_each_role_gets_its_areas_in_order(clients: dict[str, FlaskClient]) -> None:
    labels = {
        role: list(header_links(c.get("/can-bo/doi-mat-khau").get_data(as_text=True)).values())
        for role, c in clients.items()
    }
    assert labels["official"] == ["Hồ sơ", "Lệ phí"]
    assert labels["leader"][:2] == ["Hồ sơ", "Báo cáo"]
    assert {"Áp phích", "Lệ phí", "Nhật ký"} <= set(labels["leader"])
    assert "Người dùng" not in labels["leader"]
    assert labels["admin"][0] == "Báo cáo"
    assert {"Áp phích", "Lệ phí", "Người dùng", "Nhật ký"} <= set(labels["admin"])
    assert "Hồ sơ" not in labels["admin"]
    assert "Lệ phí" not in labels["province-admin"]
    assert "Áp phích" not in labels["province-admin"]


def test_the_current_area_is_marked_and_the_account_links_are_there(
    clients: dict[str, FlaskClient],
) -> None:
    page = clients["leader"].get("/can-bo/bao-cao").get_data(as_text=True)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', page)
    assert current == ["/can-bo/bao-cao"]
    assert 'href="/can-bo/doi-mat-khau"' in page
    sign_out = re.search(r'<form method="post" action="/can-bo/dang-xuat".*?</form>', page, re.S)
    assert sign_out and 'name="csrf_token"' in sign_out[0] and "Đăng xuất" in sign_out[0]
    fees = clients["official"].get("/can-bo/le-phi/").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', fees) == ["/can-bo/le-phi/"]


def test_no_area_links_before_the_sign_in_is_complete(app: Flask) -> None:
    runtime: Runtime = app.extensions["kiosk"]
    commune = make_commune(runtime, "Xã Đổi Mật Khẩu")
    user_id = make_user(runtime, commune, Role.LEADER, must_change=True)[0]
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    page = client.get("/can-bo/doi-mat-khau").get_data(as_text=True)
    assert '<ul class="areas"' not in page
    assert 'action="/can-bo/dang-xuat"' in page
    assert client.get("/can-bo/dang-nhap").status_code == 200
    assert '<ul class="areas"' not in client.get("/can-bo/dang-nhap").get_data(as_text=True)
