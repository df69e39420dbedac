"""Every staff POST route, every role, hostile input: never a server error, never a change.

Each route gets a signed-in member of each role (with a valid CSRF token, so the request reaches
the view), path parameters both real and absurd, and form bodies a careless or hostile person
could send: empty, huge, control characters, markup, template syntax, SQL, path tricks, numbers
out of range, repeated keys and files that are nothing they claim. The answer may be a refusal
(4xx) or the page again with its errors; it is never a 500.
"""

from __future__ import annotations

import io
import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.accounts import Role
from storage.models import Commune
from storage.runtime import Runtime
from tests.staff_support import make_commune, make_dossier, make_user, sign_in_cookie

HOSTILE = [
    "",
    " ",
    "<script>alert(1)</script>",
    "{{7*7}}{% raw %}",
    "'; DROP TABLE dossier; --",
    "../../../etc/passwd",
    "\x00\x01\x1b[31m",
    "9" * 5000,
    "-1",
    "1e309",
    "٣٤",  # Arabic-Indic digits
    "ｋｈａｉ－ｓｉｎｈ",  # full-width
    "a\u0301\u200b\u202e",
    '=HYPERLINK("http://x")',
]
FIELDS = [
    "code", "note", "reason", "action", "decision", "enabled", "huong", "op", "name", "username",
    "display_name", "role", "procedure", "procedures", "location", "fee_amount", "processing_days",
    "officials", "instructions_vi", "instructions_en", "result_place", "office_hours", "slug",
    "public_host", "province_code", "bank_bin", "bank_account", "bank_account_name", "successor",
    "confirm", "revision", "index", "kind", "label.vi", "new.kind", "new.name", "fee.kind",
    "fee.amount", "options.0.value", "condition.field", "remove_file", "password", "new_password",
    "totp", "count", "plan", "token", "back", "layout", "assign_to", "version", "replace_newer",
    "poster", "to_user", "user", "successor_id", "file_name",
]  # fmt: skip


def _bodies() -> list[dict[str, object]]:
    bodies: list[dict[str, object]] = [{}]
    for i, value in enumerate(HOSTILE):
        bodies.append({name: value for name in FIELDS[i % 3 :: 3]})
    bodies.append({name: [HOSTILE[2], HOSTILE[7], ""] for name in FIELDS})  # repeated keys
    bodies.append(
        {
            "file": (io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "sao-ke.csv"),
            "csv": (io.BytesIO("mã,tên\n\x00\xff".encode("utf-8", "surrogatepass")), "x.csv"),
        }
    )
    return bodies


@pytest.fixture()
def world(app: Flask) -> dict[str, object]:
    """A commune of its own for each role's run: what one role's hostile posts change (an admin
    may switch a procedure off) must not hide the routes from the next role."""
    runtime: Runtime = app.extensions["kiosk"]
    commune = make_commune(runtime, "Xã Thử Lửa")
    other = make_commune(runtime, "Xã Bên Cạnh")
    code = make_dossier(runtime, commune, "khai-sinh")
    target = make_user(runtime, commune, Role.OFFICIAL, procedures=("khai-tu",))[0]
    users = {
        role: make_user(
            runtime,
            None if role == Role.PROVINCE_ADMIN else commune,
            role,
            procedures=("khai-sinh",) if role == Role.OFFICIAL else (),
        )[0]
        for role in (Role.ADMIN, Role.OFFICIAL, Role.LEADER, Role.PROVINCE_ADMIN)
    }
    return {"commune": commune, "other": other, "code": code, "users": users, "target": target}


def _paths(app: Flask, world: dict[str, object], method: str = "POST") -> list[str]:
    commune, other = world["commune"], world["other"]
    assert isinstance(commune, Commune) and isinstance(other, Commune)
    fills = {
        "code": [str(world["code"]), "khai-sinh", "..%2F..", "%00%1b", "x" * 300],
        "user_id": [str(world["target"]), "999999999"],  # never the actor's own account
        "poster_id": ["1", "999999999"],
        "commune_id": [str(commune.id), str(other.id), "999999999"],
        "index": ["0", "999"],
        "slug": [commune.slug, "khong-co"],
    }
    paths = []
    for rule in app.url_map.iter_rules():
        if method not in (rule.methods or ()) or not rule.rule.startswith("/can-bo"):
            continue
        if rule.endpoint in ("admin.login", "admin.second_factor", "admin.logout"):
            continue  # the sign-in forms have their own tests; logout would end the session
        variants = [rule.rule]
        for arg in rule.arguments:
            values = fills.get(arg, ["1"])
            variants = [
                re.sub(rf"<(?:[a-z]+:)?{arg}>", value, v) for v in variants for value in values
            ]
        paths += variants
    return paths


def _client(app: Flask, runtime: Runtime, user_id: int) -> tuple[FlaskClient, str]:
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    page = client.get("/can-bo/doi-mat-khau").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page[:300]
    return client, unescape(token[1])


def _signed_in(
    app: Flask, runtime: Runtime, world: dict[str, object], role: Role
) -> tuple[FlaskClient, str]:
    users = world["users"]
    assert isinstance(users, dict)
    return _client(app, runtime, users[role])


ROLES = [Role.ADMIN, Role.OFFICIAL, Role.LEADER, Role.PROVINCE_ADMIN]


@pytest.mark.parametrize("role", ROLES)
def test_no_staff_post_answers_with_a_server_error(
    app: Flask, runtime: Runtime, world: dict[str, object], role: Role
) -> None:
    failures = []
    for path in _paths(app, world):
        # Signed in afresh for each route: one route may end the session (a new password, a
        # second factor switched on) and the next must still reach its view.
        client, token = _signed_in(app, runtime, world, role)
        for body in _bodies():
            data = {**body, "csrf_token": token}
            response = client.post(path, data=data, content_type="multipart/form-data")
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {path} {sorted(body)[:4]}")
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("role", ROLES)
def test_no_staff_page_answers_hostile_query_strings_with_a_server_error(
    app: Flask, runtime: Runtime, world: dict[str, object], role: Role
) -> None:
    """Filters, searches, pages and sort orders of every staff page, read from the address bar."""
    client, _ = _signed_in(app, runtime, world, role)
    keys = ["chon", "cua_toi", "den", "han", "het_han", "layout", "sau", "theo", "thu_tuc"]
    keys += ["trang_thai", "truoc", "tu", "xa", "xem", "q", "ma", "trang", "lang", "next"]
    failures = []
    for path in _paths(app, world, method="GET"):
        for value in HOSTILE:
            response = client.get(path, query_string={k: value for k in keys})
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {path} {value[:20]!r}")
    assert not failures, "\n".join(failures[:20])
