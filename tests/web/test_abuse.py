"""Bad input and abuse, through the HTTP layer: limits, hostile uploads, headers, redirects,
injection into pages, enumeration and rate limits shared by every worker.

Each refusal is checked for what it leaves behind too: no dossier, no attachment, nothing of the
hostile input in what is stored or shown.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import func, select

from core import services
from core.accounts import Role
from core.reports import csv_cell
from core.sealing import unseal_file_bytes, unseal_json
from storage.files import FileStore
from storage.models import Attachment, Commune, Dossier
from storage.runtime import Runtime
from tests.citizen import file_fields, open_form, photo, post_form, valid_values
from tests.staff_support import make_dossier, make_user, sign_in_cookie

SLUG, CODE = "nhuan-duc", "khai-sinh"


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.db.reading() as s:
        return (
            s.scalar(select(func.count()).select_from(Dossier)) or 0,
            s.scalar(select(func.count()).select_from(Attachment)) or 0,
        )


def defn(runtime: Runtime) -> Any:
    d = runtime.catalog.get(CODE)
    assert d is not None
    return d


def demo_commune(runtime: Runtime) -> Commune:
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, SLUG)
        s.expunge(commune)
        return commune


def draft_files(runtime: Runtime, draft: str) -> list[Attachment]:
    with runtime.db.reading() as s:
        rows = services.draft_attachments(s, demo_commune(runtime), draft)
        for r in rows:
            s.expunge(r)
        return rows


def post_raw_multipart(client: FlaskClient, values: dict[str, str]) -> Any:
    """POST a multipart body built in memory (the test client spools big bodies to a temporary
    file, which it does not close when the request is refused)."""
    body = b"".join(
        f'--zzz\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in values.items()
    )
    body += b"--zzz--\r\n"
    return client.post(
        f"/x/{SLUG}/{CODE}",
        input_stream=io.BytesIO(body),
        content_type="multipart/form-data; boundary=zzz",
        headers={"Content-Length": str(len(body))},
    )


# --- Request limits ------------------------------------------------------------------------------


def test_a_50_mb_body_is_refused_before_it_is_read(client: FlaskClient, runtime: Runtime) -> None:
    _, csrf, draft = open_form(client, CODE)
    before = counts(runtime)
    body = io.BytesIO(b"x" * (50 * 1024 * 1024))
    response = client.post(
        f"/x/{SLUG}/{CODE}",
        input_stream=body,
        content_type="multipart/form-data; boundary=zzz",
        headers={"Content-Length": str(50 * 1024 * 1024)},
    )
    assert response.status_code == 413
    assert "Tệp quá lớn" in response.get_data(as_text=True)
    assert body.tell() == 0  # refused on Content-Length: not one byte of the body was read
    assert counts(runtime) == before
    assert csrf and draft


def test_thousands_of_parts_are_refused(client: FlaskClient, runtime: Runtime) -> None:
    _, csrf, draft = open_form(client, CODE)
    before = counts(runtime)
    data = {f"f{i}": "x" for i in range(5000)} | {"csrf_token": csrf, "draft": draft}
    response = post_raw_multipart(client, data)
    assert response.status_code == 413
    assert counts(runtime) == before


def test_a_huge_field_is_refused(client: FlaskClient, runtime: Runtime) -> None:
    _, csrf, draft = open_form(client, CODE)
    before = counts(runtime)
    values = valid_values(defn(runtime)) | {"tre_noi_sinh": "A" * (2 * 1024 * 1024)}
    response = post_raw_multipart(client, values | {"csrf_token": csrf, "draft": draft})
    assert response.status_code == 413
    assert counts(runtime) == before


def test_deeply_nested_and_unknown_names_are_ignored_not_stored(
    client: FlaskClient, runtime: Runtime
) -> None:
    d = defn(runtime)
    _, csrf, draft = open_form(client, CODE)
    nested = "a" + "[b]" * 2000
    extra = {nested: "<nested>", "x" * 4000: "long-name", "__proto__[admin]": "1"}
    files = {name: [(photo(), "giay.jpg")] for name in file_fields(d)}
    response = post_form(
        client, d, valid_values(d), csrf=csrf, draft=draft, files=files, extra=extra
    )
    assert response.status_code == 303
    with runtime.db.reading() as s:
        dossier = services.find_by_draft(s, demo_commune(runtime), draft)
        assert dossier is not None
        payload = unseal_json(
            dossier.sealed_data, runtime.keys.sealing, context=services.dossier_context(dossier)
        )
    stored = repr(payload)
    assert "<nested>" not in stored and "long-name" not in stored and "__proto__" not in stored
    assert set(payload["data"]) <= {f.name for f in d.fields}


# --- Uploads -------------------------------------------------------------------------------------


def _bomb_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


SCRIPTED_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction 3 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"3 0 obj<</S/JavaScript/JS(app.alert('x'))>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (b"<html><script>alert(1)</script></html>", "giay-chung-sinh.jpg"),
        (b"MZ\x90\x00" + b"\x00" * 200, "anh.png"),
        (_bomb_png(), "bomb.png"),
        (SCRIPTED_PDF, "giay.pdf"),
        (b"GIF89a" + b"\x00" * 100, "anh.gif"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "anh.svg"),
    ],
    ids=["html-named-jpg", "exe-named-png", "pixel-bomb", "pdf-with-javascript", "gif", "svg"],
)
def test_hostile_uploads_are_refused_and_nothing_is_kept(
    client: FlaskClient, runtime: Runtime, content: bytes, filename: str
) -> None:
    d = defn(runtime)
    _, csrf, draft = open_form(client, CODE)
    before = counts(runtime)
    field = file_fields(d)[0]
    response = post_form(
        client, d, valid_values(d), csrf=csrf, draft=draft, files={field: [(content, filename)]}
    )
    assert response.status_code == 422  # the form comes back, with the paper asked for again
    assert counts(runtime) == before
    assert draft_files(runtime, draft) == []


def test_polyglot_and_hostile_name_are_neutralised(client: FlaskClient, runtime: Runtime) -> None:
    """A real JPEG with an HTML page in a comment and after its end marker is accepted as the
    photo it is, re-encoded so that neither survives; its name loses path and shell characters."""
    d = defn(runtime)
    jpeg = photo((640, 480))
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    polyglot = jpeg[:2] + b"\xff\xfe" + (len(html) + 2).to_bytes(2, "big") + html + jpeg[2:] + html
    name = "../../etc/passwd;rm -rf ~|$(reboot)`id`.jpg"
    _, csrf, draft = open_form(client, CODE)
    field = file_fields(d)[0]
    response = post_form(
        client, d, valid_values(d), csrf=csrf, draft=draft, files={field: [(polyglot, name)]}
    )
    assert response.status_code == 303
    with runtime.db.reading() as s:
        dossier = services.find_by_draft(s, demo_commune(runtime), draft)
        assert dossier is not None
        atts = list(s.scalars(select(Attachment).where(Attachment.dossier_id == dossier.id)))
        assert len(atts) == 1
        att = atts[0]
        shown = services.attachment_name(att, runtime.keys.sealing)
    assert re.fullmatch(r"[0-9a-f]{32}", att.storage_name)
    assert "/" not in shown and ".." not in shown.split("_")[0]
    assert not set(shown) & set(";|$`")
    stored = unseal_file_bytes(
        FileStore(runtime.upload_dir).read(att.storage_name),
        runtime.keys.sealing,
        context=f"file:{att.commune_id}:{att.storage_name}".encode(),
    )
    assert stored.startswith(b"\xff\xd8") and b"<script" not in stored and b"<html" not in stored


# --- Headers on every route ----------------------------------------------------------------------

PERSONAL_PAGES = ("/x/nhuan-duc/khai-sinh", "/tra-cuu", "/tra-cuu/ho-so", "/can-bo/dang-nhap")


def _sample_paths(app: Flask) -> Iterator[str]:
    fill = {"slug": SLUG, "code": CODE, "token": "AAAA", "kind": "thu-tuc", "public_id": "0" * 32}
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        path = rule.rule
        for arg in rule.arguments:
            converter = rule._converters.get(arg)  # noqa: SLF001 - only to pick a sample value
            value = "1" if converter and "Integer" in type(converter).__name__ else "x"
            path = re.sub(rf"<(?:[a-z]+:)?{arg}>", fill.get(arg, value), path)
        yield path


def _assert_headers(response: Any, where: str) -> None:
    h = response.headers
    csp = h.get("Content-Security-Policy", "")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip()
    )
    assert "unsafe-inline" not in directives.get("script-src", directives.get("default-src")), where
    assert "'unsafe-eval'" not in csp, where
    assert directives.get("frame-ancestors") == "'none'", where
    assert h.get("X-Content-Type-Options") == "nosniff", where
    assert h.get("Referrer-Policy") in ("same-origin", "no-referrer", "strict-origin"), where


def test_security_headers_on_every_route(app: Flask, client: FlaskClient) -> None:
    paths = sorted(set(_sample_paths(app))) + ["/khong-co-trang-nay", "/static/kiosk.css"]
    assert len(paths) > 20
    for path in paths:
        with client.get(path) as response:
            _assert_headers(response, path)
    for path in PERSONAL_PAGES:
        with client.get(path) as response:
            assert "no-store" in response.headers.get("Cache-Control", ""), path


def test_pages_with_personal_data_are_not_cached(client: FlaskClient, runtime: Runtime) -> None:
    d = defn(runtime)
    _, csrf, draft = open_form(client, CODE)
    files = {name: [(photo(), "giay.jpg")] for name in file_fields(d)}
    done = post_form(client, d, valid_values(d, seed=11), csrf=csrf, draft=draft, files=files)
    assert done.status_code == 303
    receipt = client.get(done.headers["Location"])
    assert receipt.status_code == 200
    assert "no-store" in receipt.headers["Cache-Control"]
    assert "no-store" in client.get(f"/x/{SLUG}/bien-nhan/bien-nhan.json").headers["Cache-Control"]


def _cookie_flags(response: Any) -> dict[str, str]:
    return {
        c.split("=", 1)[0]: c.lower()
        for c in response.headers.getlist("Set-Cookie")
        if not c.lower().startswith(tuple(f"{n}=;" for n in ("session", "lang")))
    }


def test_cookies_are_httponly_samesite_and_secure_over_https(
    app: Flask, client: FlaskClient
) -> None:
    from application import create_app

    # The form sets only the language; its token needs no session (kiosk/form_token.py). The
    # status look-up's form keeps its token in the session.
    assert set(_cookie_flags(client.get(f"/x/{SLUG}/{CODE}?lang=en"))) == {"lang"}
    plain = _cookie_flags(client.get("/tra-cuu?lang=vi"))
    assert {"session", "lang"} <= set(plain)
    for name, flags in plain.items():
        assert "httponly" in flags and "samesite=" in flags, name
        assert "secure" not in flags, name  # over http a Secure cookie would never come back

    https_app = create_app(
        {**{k: app.config[k] for k in ("INSTANCE_PATH", "DATABASE_URL", "TESTING")},
         "PUBLIC_BASE_URL": "https://xa.example.gov.vn"}
    )  # fmt: skip
    try:
        secure_client = https_app.test_client()
        response = secure_client.get("/tra-cuu?lang=en", base_url="https://xa.example.gov.vn")
        flags = _cookie_flags(response)
        assert {"session", "lang"} <= set(flags)
        for name, value in flags.items():
            assert "secure" in value and "httponly" in value and "samesite=" in value, name
        assert "max-age" in response.headers.get("Strict-Transport-Security", "")
        staff = secure_client.get("/can-bo/dang-nhap", base_url="https://xa.example.gov.vn")
        for name, value in _cookie_flags(staff).items():
            assert "secure" in value and "httponly" in value, name
    finally:
        https_app.extensions["kiosk"].db.dispose()


# --- Redirects -----------------------------------------------------------------------------------

EVIL = ["https://evil.example/", "//evil.example/x", "/\\evil.example", "http:evil.example"]


def test_redirects_only_lead_to_our_own_paths(app: Flask, client: FlaskClient) -> None:
    for path in sorted(set(_sample_paths(app))):
        for target in EVIL:
            query = f"next={target}&return={target}&url={target}&redirect={target}"
            with client.get(f"{path}?{query}") as response:
                status, location = response.status_code, response.headers.get("Location", "")
            if 300 <= status < 400:
                assert location.startswith("/") and not location.startswith(("//", "/\\")), (
                    path,
                    location,
                )


def test_sign_in_never_sends_a_user_to_another_site(client: FlaskClient, runtime: Runtime) -> None:
    commune = demo_commune(runtime)
    _, username, password = make_user(runtime, commune, Role.OFFICIAL, procedures=(CODE,))
    for target in EVIL + ["/x/nhuan-duc"]:
        client.delete_cookie("kiosk_staff", path="/can-bo")
        page = client.get(f"/can-bo/dang-nhap?next={target}").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        response = client.post(
            f"/can-bo/dang-nhap?next={target}",
            data={"csrf_token": csrf.group(1), "username": username, "password": password,
                  "next": target},
        )  # fmt: skip
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
        location = response.headers["Location"]
        assert location.startswith("/can-bo") and "evil" not in location, (target, location)


# --- What a citizen typed is shown as text -------------------------------------------------------

HOSTILE = {
    "script": "<script>alert('xss')</script>",
    "attribute": '" onmouseover="alert(1)" x="',
    "template": "{{7*7}} {% raw %}${7*7}",
    "formula": '=HYPERLINK("http://evil.example","bấm")',
}


def test_typed_text_comes_back_escaped_in_the_form(client: FlaskClient, runtime: Runtime) -> None:
    d = defn(runtime)
    _, csrf, draft = open_form(client, CODE)
    values = valid_values(d) | {
        "tre_noi_sinh": HOSTILE["script"],
        "tre_que_quan": HOSTILE["attribute"],
        "me_dan_toc": HOSTILE["template"],
        "nyc_ho_ten": HOSTILE["script"],
    }
    response = post_form(client, d, values, csrf=csrf, draft=draft)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<script>alert('xss')</script>" not in html
    assert "&lt;script&gt;" in html
    assert 'onmouseover="alert(1)"' not in html
    assert "{{7*7}}" in html


def test_typed_text_is_text_on_the_staff_pages(client: FlaskClient, runtime: Runtime) -> None:
    commune = demo_commune(runtime)
    data: dict[str, object] = {
        "tre_ho_ten": HOSTILE["script"],
        "tre_noi_sinh": HOSTILE["attribute"],
        "tre_que_quan": HOSTILE["template"],
        "me_dan_toc": HOSTILE["formula"],
    }
    code = make_dossier(runtime, commune, CODE, data=data)
    user_id, _, _ = make_user(runtime, commune, Role.OFFICIAL, procedures=(CODE,))
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    pages = [client.get(f"/can-bo/ho-so/{code}"), client.get("/can-bo/ho-so")]
    assert all(p.status_code == 200 for p in pages)
    html = pages[0].get_data(as_text=True)
    assert "<script>alert('xss')</script>" not in html and "&lt;script&gt;" in html
    assert 'onmouseover="alert(1)"' not in html
    assert "{{7*7}}" in html.replace("&#123;", "{").replace("&#125;", "}")
    assert "=HYPERLINK(" in html.replace("&#34;", '"').replace("&quot;", '"')
    for page in pages:
        assert "<script>alert" not in page.get_data(as_text=True)


@pytest.mark.parametrize("value", ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1"])
def test_spreadsheet_formulas_are_neutralised_in_exports(value: str) -> None:
    cell = csv_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert value.strip() in cell


# --- Enumeration and shared rate limits ----------------------------------------------------------


def test_wrong_code_and_wrong_secret_get_the_same_answer(
    client: FlaskClient, runtime: Runtime
) -> None:
    code = make_dossier(runtime, demo_commune(runtime), CODE)
    real = client.get(f"/tra-cuu?ma={code}&k=AAAAAAAAAA", environ_base={"REMOTE_ADDR": "10.9.0.1"})
    wrong_code = code[:-4] + "9999"
    fake = client.get(
        f"/tra-cuu?ma={wrong_code}&k=AAAAAAAAAA", environ_base={"REMOTE_ADDR": "10.9.0.2"}
    )
    assert real.status_code == fake.status_code == 404

    def page(response: Any, typed: str) -> str:
        # The form's CSRF token carries the second it was made: two requests may straddle one.
        text = re.sub(r'name="csrf_token" value="[^"]*"', "", response.get_data(as_text=True))
        return text.replace(typed, "")

    assert 'name="csrf_token"' in real.get_data(as_text=True)
    assert page(real, code) == page(fake, wrong_code)


def test_forged_poster_tokens_are_refused(client: FlaskClient) -> None:
    answers = {client.get(f"/q/{secrets.token_urlsafe(12)}").status_code for _ in range(5)}
    assert answers == {404}


def test_rate_limits_hold_across_workers(app: Flask, runtime: Runtime) -> None:
    """Two app instances (two workers: separate engines and pools) on one database count
    together: ten tries on one dossier code, whichever worker answers, then 429 from both."""
    from application import create_app

    second = create_app({k: app.config[k] for k in ("INSTANCE_PATH", "DATABASE_URL", "TESTING")})
    try:
        assert second.extensions["kiosk"] is not runtime
        clients = [app.test_client(), second.test_client()]
        code = f"{demo_commune(runtime).code}-990101-{secrets.randbelow(9000) + 1000}"
        ip = f"10.77.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
        statuses = [
            clients[i % 2]
            .get(f"/tra-cuu?ma={code}&k=WRONGSECRT", environ_base={"REMOTE_ADDR": ip})
            .status_code
            for i in range(12)
        ]
        assert statuses[:10] == [404] * 10
        assert statuses[10:] == [429, 429]
        limited = clients[1].get(f"/tra-cuu?ma={code}&k=X", environ_base={"REMOTE_ADDR": ip})
        assert limited.status_code == 429 and limited.headers.get("Retry-After")
    finally:
        second.extensions["kiosk"].db.dispose()


def test_behind_a_trusted_proxy_each_phone_has_its_own_limit(app: Flask, runtime: Runtime) -> None:
    """Behind nginx (KIOSK_TRUSTED_PROXIES=1) every request comes from the proxy's address: the
    per-address limit counts the phone's address that nginx forwards, so one abuser does not lock
    out the park; without the setting a forged X-Forwarded-For changes nothing."""
    from application import create_app

    keep = ("INSTANCE_PATH", "DATABASE_URL", "TESTING")
    proxied = create_app({k: app.config[k] for k in keep} | {"TRUSTED_PROXIES": 1})
    prefix = demo_commune(runtime).code

    def ask(client: FlaskClient, forwarded: str, socket_address: str) -> int:
        code = f"{prefix}-990102-{secrets.randbelow(9000) + 1000}"  # a new code each time
        return client.get(
            f"/tra-cuu?ma={code}&k=WRONGSECRT",
            headers={"X-Forwarded-For": forwarded},
            environ_base={"REMOTE_ADDR": socket_address},
        ).status_code

    try:
        behind = proxied.test_client()
        abuser = f"10.78.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
        assert [ask(behind, abuser, "127.0.0.1") for _ in range(21)][-1] == 429
        assert ask(behind, f"10.79.{secrets.randbelow(250)}.7", "127.0.0.1") == 404

        # Directly exposed (no trusted proxy): the header is ignored, the socket address counts.
        direct = app.test_client()
        spoofer = f"10.80.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
        statuses = [ask(direct, f"10.81.0.{i}", spoofer) for i in range(21)]
        assert statuses[-1] == 429
    finally:
        proxied.extensions["kiosk"].db.dispose()


def test_staff_requests_lose_control_characters_in_every_value(app: Flask) -> None:
    """A repeated key's later values are cleaned too, in the address and in the posted form."""
    with app.test_request_context(
        "/can-bo/ho-so?q=a&q=b%00c%1b",
        method="POST",
        data={"note": ["x", "y\x00z"], "keep": "tab\there\nline"},
    ):
        app.preprocess_request()
        assert request.args.getlist("q") == ["a", "bc"]
        assert request.form.getlist("note") == ["x", "yz"]
        assert request.form["keep"] == "tab\there\nline"
