"""What a citizen sees first: the home page, the commune's procedures, errors, headers."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_root_leads_to_the_demo_communes_procedures(client: FlaskClient) -> None:
    first = client.get("/")
    if first.status_code == 302:
        first = client.get(first.headers["Location"])
    else:  # several communes: one link to the demo commune
        assert 'href="/x/nhuan-duc"' in first.get_data(as_text=True)
        first = client.get("/x/nhuan-duc")
    html = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "Xã Nhuận Đức" in html
    assert "Đăng ký khai sinh" in html
    assert "Đăng ký kết hôn" in html
    assert "Chứng thực bản sao" in html


def test_commune_home_lists_every_enabled_procedure(client: FlaskClient, runtime) -> None:
    html = client.get("/x/nhuan-duc").get_data(as_text=True)
    for defn in runtime.catalog:
        assert defn.name.vi in html


def test_english_switch(client: FlaskClient) -> None:
    html = client.get("/x/nhuan-duc?lang=en").get_data(as_text=True)
    assert "Administrative procedures" in html
    assert "Birth registration" in html


def test_unknown_page_is_a_friendly_vietnamese_404(client: FlaskClient) -> None:
    response = client.get("/x/khong-co-xa-nay")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Không tìm thấy trang" in html
    assert "Traceback" not in html


def test_security_headers_on_every_page(client: FlaskClient) -> None:
    for path in ("/x/nhuan-duc", "/x/nhuan-duc/khai-sinh", "/tra-cuu", "/nope"):
        h = client.get(path).headers
        csp = h["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin"


def test_form_page_is_no_store(client: FlaskClient) -> None:
    assert client.get("/x/nhuan-duc/khai-sinh").headers["Cache-Control"] == "no-store"


def test_catalog_api_lists_procedures_with_fields(client: FlaskClient) -> None:
    data = client.get("/api/v1/procedures").get_json()
    codes = {p["code"] for p in data["procedures"]}
    assert {"khai-sinh", "ket-hon", "khai-tu", "chung-thuc-ban-sao"} <= codes
    one = client.get("/api/v1/procedures/khai-sinh").get_json()
    assert one["name"]["vi"] == "Đăng ký khai sinh"
    kinds = {f["kind"] for f in one["fields"]}
    assert {"person_name", "date", "cccd", "phone"} <= kinds
    for f in one["fields"]:
        assert {"name", "kind", "required", "label"} <= set(f)
        assert set(f["label"]) == {"vi", "en"}
        if f["kind"] == "select":
            assert f["options"]
    assert client.get("/api/v1/procedures/khong-co").status_code == 404


def test_health(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_the_page_a_citizen_lands_on_weighs_under_30_kb_compressed(
    client: FlaskClient, runtime
) -> None:
    """Poster landing + form, with its stylesheet and script, gzip-compressed as served."""
    import gzip
    import re
    from datetime import UTC, datetime

    from core import services

    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, "nhuan-duc")
        poster = next(
            p
            for p in services.active_posters(s, commune, datetime.now(UTC))
            if p.code == "khai-sinh"
        )
        token = services.poster_token(poster, runtime.keys)
    html = client.get(f"/q/{token}").data
    assets = re.findall(rb'(?:href|src)="(/static/[^"]+)"', html)
    assert assets, "the page links its stylesheet"
    total = len(gzip.compress(html, 6))
    for path in assets:
        response = client.get(path.decode())
        total += len(gzip.compress(response.data, 6))
        response.close()
    assert total <= 30 * 1024, total
    # Nothing from another host.
    assert not re.search(rb'(?:href|src)="(?:https?:)?//', html)
