"""The staff poster pages (/can-bo/ap-phich): who sees what, create, bulk, revoke, reprint,
downloads from the cache, and the funnel and silent flag on the list.

Staff are signed in by opening a server-side session directly (`start_session`), the same row the
sign-in page opens; the sign-in itself is tested with the staff authentication.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

import admin.posters as poster_views
from core import services
from core.accounts import Role
from core.posters import poster_url
from storage.models import AuditEvent, Commune, Poster, PosterDay, StaffUser
from storage.runtime import Runtime
from tests.staff_support import make_commune, make_user, sign_in_cookie

SLUG = "nhuan-duc"
BASE = "/can-bo/ap-phich"


def _now() -> datetime:
    return datetime.now(UTC)


def _client_for(app: Flask, runtime: Runtime, username: str) -> FlaskClient:
    with runtime.db.reading() as s:
        user_id = s.scalar(select(StaffUser.id).where(StaffUser.username == username))
    assert user_id is not None, username
    client = app.test_client()
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    return client


@pytest.fixture(scope="module")
def other_commune_admin(app: Flask) -> str:
    """An admin of a second commune, which has one poster of its own."""
    runtime: Runtime = app.extensions["kiosk"]
    commune = make_commune(runtime, "Xã Phú Hòa Đông")
    _id, username, _password = make_user(runtime, commune, Role.ADMIN)
    with runtime.db.writing() as s:
        own = s.get(Commune, commune.id)
        assert own is not None
        services.create_poster(
            s, commune=own, code=services.offered_procedures(s, own)[0].code,
            location="Chợ Phú Hòa Đông", keys=runtime.keys, now=_now(),
        )  # fmt: skip
    return username


@pytest.fixture()
def admin(app: Flask, runtime: Runtime) -> FlaskClient:
    return _client_for(app, runtime, "nhuanduc.admin")


@pytest.fixture()
def leader(app: Flask, runtime: Runtime) -> FlaskClient:
    return _client_for(app, runtime, "nhuanduc.lanhdao")


@pytest.fixture()
def official(app: Flask, runtime: Runtime) -> FlaskClient:
    return _client_for(app, runtime, "nhuanduc.hotich")


@pytest.fixture()
def offered(runtime: Runtime) -> Iterator[list[services.OfferedProcedure]]:
    with runtime.db.reading() as s:
        yield services.offered_procedures(s, services.commune_by_slug(s, SLUG))


def _csrf(client: FlaskClient) -> str:
    html = client.get(f"{BASE}/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def _make(runtime: Runtime, code: str, location: str, **kw: object) -> Poster:
    with runtime.db.writing() as s:
        commune = services.commune_by_slug(s, SLUG)
        poster = services.create_poster(
            s, commune=commune, code=code, location=location, keys=runtime.keys, now=_now(),
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip
        s.expunge(poster)
        return poster


def _url(runtime: Runtime, poster: Poster) -> str:
    return poster_url(runtime.public_base_url, services.poster_token(poster, runtime.keys))


def _audit(runtime: Runtime, action: str, poster_id: int) -> list[AuditEvent]:
    with runtime.db.reading() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == action, AuditEvent.target == f"poster:{poster_id}"
                )
            )
        )


# --- who may see what -------------------------------------------------------------------------


def test_signed_out_people_are_sent_to_sign_in(client: FlaskClient) -> None:
    for path in ("/", "/1", "/1/qr.png", "/1/thu-hoi"):
        response = client.get(BASE + path)
        assert response.status_code in (302, 303), path
        assert "/can-bo/" in response.headers["Location"]
    assert client.post(f"{BASE}/tao", data={"code": "khai-sinh"}).status_code in (302, 303, 400)


def test_the_admin_sees_posters_grouped_by_procedure_and_by_place(
    admin: FlaskClient, offered: list[services.OfferedProcedure]
) -> None:
    response = admin.get(f"{BASE}/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    names = {p.code: p.name_vi for p in offered}
    assert f"<h2>{names['khai-sinh']}</h2>" in html
    assert "Công viên ấp 3" in html and "Bộ phận Một cửa" in html
    assert f'action="{BASE}/tao"' in html and f'action="{BASE}/tao-hang-loat"' in html
    assert f'action="{BASE}/in-lai"' in html
    assert re.search(r'name="poster" value="\d+"', html)
    by_place = admin.get(f"{BASE}/?theo=noi").get_data(as_text=True)
    assert "<h2>Công viên ấp 3</h2>" in by_place and "<h2>Bảng tin UBND xã</h2>" in by_place


def test_a_leader_reads_but_cannot_change(
    leader: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    poster = _make(runtime, offered[0].code, "Hội trường ấp 2")
    html = leader.get(f"{BASE}/").get_data(as_text=True)
    assert "Hội trường ấp 2" in html
    assert f'action="{BASE}/tao"' not in html and f'action="{BASE}/tao-hang-loat"' not in html
    assert leader.get(f"{BASE}/{poster.id}").status_code == 200
    assert leader.get(f"{BASE}/{poster.id}/qr.png").status_code == 200
    token = _csrf(leader)
    created = leader.post(
        f"{BASE}/tao",
        data={"csrf_token": token, "code": offered[0].code, "location": "Nơi của lãnh đạo"},
    )
    assert created.status_code == 404
    assert leader.get(f"{BASE}/{poster.id}/thu-hoi").status_code == 404
    assert leader.post(f"{BASE}/{poster.id}/thu-hoi", data={"csrf_token": token}).status_code == 404
    with runtime.db.reading() as s:
        assert s.get(Poster, poster.id).revoked_at is None  # type: ignore[union-attr]
        assert s.scalar(select(Poster).where(Poster.location == "Nơi của lãnh đạo")) is None


def test_officials_get_404_everywhere(official: FlaskClient, runtime: Runtime) -> None:
    with runtime.db.reading() as s:
        poster_id = s.scalar(select(Poster.id).limit(1))
    for path in ("/", f"/{poster_id}", f"/{poster_id}/qr.png", f"/{poster_id}/ap-phich.pdf"):
        assert official.get(BASE + path).status_code == 404, path


def test_another_communes_admin_gets_404_for_our_posters(
    app: Flask, runtime: Runtime, other_commune_admin: str, offered: list[services.OfferedProcedure]
) -> None:
    ours = _make(runtime, offered[0].code, "Bảng tin ấp 4")
    stranger = _client_for(app, runtime, other_commune_admin)
    html = stranger.get(f"{BASE}/").get_data(as_text=True)
    assert "Chợ Phú Hòa Đông" in html and "Bảng tin ấp 4" not in html
    for path in ("", "/qr.png", "/qr.svg", "/ap-phich.pdf", "/thu-hoi"):
        assert stranger.get(f"{BASE}/{ours.id}{path}").status_code == 404, path
    token = _csrf(stranger)
    assert stranger.post(f"{BASE}/{ours.id}/thu-hoi", data={"csrf_token": token}).status_code == 404
    reprint = stranger.post(f"{BASE}/in-lai", data={"csrf_token": token, "poster": [ours.id]})
    assert reprint.status_code == 404
    with runtime.db.reading() as s:
        assert s.get(Poster, ours.id).revoked_at is None  # type: ignore[union-attr]
    assert not _audit(runtime, "poster.revoke", ours.id)


# --- making posters ---------------------------------------------------------------------------


def test_create_one_poster_is_audited(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    code = offered[-1].code
    last_day = (_now() + timedelta(days=40)).astimezone(runtime.calendar.tz).date()
    response = admin.post(
        f"{BASE}/tao",
        data={
            "csrf_token": _csrf(admin),
            "code": code,
            "location": "  Nhà   văn hóa ấp 6 ",
            "expires_on": last_day.isoformat(),
        },
    )
    assert response.status_code == 303
    poster_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    with runtime.db.reading() as s:
        poster = s.get(Poster, poster_id)
        assert poster is not None
        admin_id = s.scalar(select(StaffUser.id).where(StaffUser.username == "nhuanduc.admin"))
        assert (poster.code, poster.location, poster.created_by) == (
            code,
            "Nhà văn hóa ấp 6",
            admin_id,
        )
        assert poster.expires_at is not None
        expires = poster.expires_at.replace(tzinfo=poster.expires_at.tzinfo or UTC)
        assert expires.astimezone(runtime.calendar.tz).date() == last_day + timedelta(days=1)
    [event] = _audit(runtime, "poster.create", poster_id)
    assert event.actor.startswith(f"user:{admin_id} ")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nhà văn hóa ấp 6" in page and "Đã tạo áp phích" in page


@pytest.mark.parametrize(
    ("form", "field_text"),
    [
        ({"location": "x"}, "2–200 ký tự"),
        ({"code": "khong-co"}, "Chọn một thủ tục"),
        ({"expires_on": "2020-01-01"}, "Ngày hết hạn phải từ hôm nay"),
        ({"expires_on": "31/12/2099"}, "Ngày không hợp lệ"),
    ],
)
def test_create_says_what_to_fix(
    admin: FlaskClient,
    runtime: Runtime,
    offered: list[services.OfferedProcedure],
    form: dict[str, str],
    field_text: str,
) -> None:
    with runtime.db.reading() as s:
        before = len(s.scalars(select(Poster.id)).all())
    data = {"csrf_token": _csrf(admin), "code": offered[0].code, "location": "Ngã ba ấp 8"}
    response = admin.post(f"{BASE}/tao", data={**data, **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert field_text in html and 'aria-invalid="true"' in html
    with runtime.db.reading() as s:
        assert len(s.scalars(select(Poster.id)).all()) == before


def test_a_stale_form_changes_nothing(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    response = admin.post(
        f"{BASE}/tao", data={"code": offered[0].code, "location": "Không có mã chống giả"}
    )
    assert response.status_code == 400
    assert "quá lâu" in response.get_data(as_text=True)
    with runtime.db.reading() as s:
        assert s.scalar(select(Poster).where(Poster.location == "Không có mã chống giả")) is None


def test_bulk_creates_every_enabled_procedure_once(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    place = "Nhà văn hóa ấp Bàu Tròn mới"
    first = _make(runtime, offered[0].code, place.upper())  # already up there (other case)
    token = _csrf(admin)
    response = admin.post(f"{BASE}/tao-hang-loat", data={"csrf_token": token, "location": place})
    assert response.status_code == 303
    assert "chon=" in response.headers["Location"]
    with runtime.db.reading() as s:
        here = s.scalars(select(Poster).where(Poster.location == place)).all()
    assert sorted(p.code for p in here) == sorted(p.code for p in offered[1:])
    for poster in here:
        [event] = _audit(runtime, "poster.create", poster.id)
        assert '"bulk":true' in event.detail.replace(" ", "")
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Đã tạo {len(offered) - 1} áp phích" in page and "Bỏ qua" in page
    for poster in here:  # ticked, ready to print
        assert f'value="{poster.id}" id="p-{poster.id}" checked' in page
    assert f'value="{first.id}" id="p-{first.id}" checked' not in page
    again = admin.post(f"{BASE}/tao-hang-loat", data={"csrf_token": token, "location": place})
    assert again.status_code == 303
    with runtime.db.reading() as s:
        assert len(s.scalars(select(Poster).where(Poster.location == place)).all()) == len(here)
    assert "Đã tạo 0 áp phích" in admin.get(again.headers["Location"]).get_data(as_text=True)


# --- revoking ---------------------------------------------------------------------------------


def test_revoke_asks_first_then_stops_the_printed_code(
    admin: FlaskClient, client: FlaskClient, runtime: Runtime,
    offered: list[services.OfferedProcedure],
) -> None:  # fmt: skip
    poster = _make(runtime, offered[0].code, "Cột điện ấp 3")
    url = _url(runtime, poster)
    path = url.removeprefix(runtime.public_base_url)
    assert client.get(path).status_code == 200
    confirm = admin.get(f"{BASE}/{poster.id}/thu-hoi")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "không thể hoàn tác" in html
    assert f'action="{BASE}/{poster.id}/thu-hoi"' in html
    with runtime.db.reading() as s:
        assert s.get(Poster, poster.id).revoked_at is None  # type: ignore[union-attr]
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    done = admin.post(f"{BASE}/{poster.id}/thu-hoi", data={"csrf_token": token})
    assert done.status_code == 303
    with runtime.db.reading() as s:
        row = s.get(Poster, poster.id)
        assert row is not None and row.revoked_at is not None and row.revoked_by is not None
    [event] = _audit(runtime, "poster.revoke", poster.id)
    assert "nhuanduc.admin" in event.actor
    assert client.get(path).status_code == 410
    assert admin.get(f"{BASE}/{poster.id}/qr.png").status_code == 410
    assert admin.get(f"{BASE}/{poster.id}/ap-phich.pdf").status_code == 410
    assert "Đã thu hồi" in admin.get(done.headers["Location"]).get_data(as_text=True)
    twice = admin.post(f"{BASE}/{poster.id}/thu-hoi", data={"csrf_token": token})
    assert twice.status_code == 303
    assert len(_audit(runtime, "poster.revoke", poster.id)) == 1
    listed = admin.get(f"{BASE}/").get_data(as_text=True)
    assert "Cột điện ấp 3" not in listed
    assert "Cột điện ấp 3" in admin.get(f"{BASE}/?tat-ca=1").get_data(as_text=True)


# --- downloads and printing -------------------------------------------------------------------


def test_png_and_svg_decode_to_the_poster_url_and_come_from_the_cache(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    poster = _make(runtime, offered[0].code, "Trường tiểu học Nhuận Đức")
    renders = []
    real_png = poster_views.qr_png

    def counting_png(*args: object, **kw: object) -> bytes:
        renders.append(1)
        return real_png(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(poster_views, "qr_png", counting_png)
    png = admin.get(f"{BASE}/{poster.id}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert "attachment" in png.headers["Content-Disposition"]
    [barcode] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert barcode.text == _url(runtime, poster)
    again = admin.get(f"{BASE}/{poster.id}/qr.png")
    assert again.data == png.data
    assert len(renders) == 1  # rendered once, then served from the cache

    svg = admin.get(f"{BASE}/{poster.id}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.data.startswith(b"<svg") and b"<path" in svg.data
    assert admin.get(f"{BASE}/{poster.id}/qr.svg?xem=1").headers["Content-Disposition"] == "inline"


@pytest.mark.parametrize(("layout", "pages"), [("poster", 1), ("sheet", 1)])
def test_one_posters_pdf(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure],
    layout: str, pages: int,
) -> None:  # fmt: skip
    poster = _make(runtime, offered[0].code, "Sân bóng ấp Ràng")
    response = admin.get(f"{BASE}/{poster.id}/ap-phich.pdf?layout={layout}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages) == pages
    text = " ".join(reader.pages[0].extract_text().split())
    assert "Sân bóng ấp Ràng" in text


def test_reprint_the_selected_posters_in_both_layouts(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    chosen = [_make(runtime, offered[0].code, f"Bảng tin tổ {n}") for n in range(1, 4)]
    gone = _make(runtime, offered[0].code, "Bảng tin tổ đã gỡ")
    with runtime.db.writing() as s:
        s.get(Poster, gone.id).revoked_at = _now()  # type: ignore[union-attr]
    token = _csrf(admin)
    ids = [p.id for p in chosen] + [gone.id]
    for layout, pages in (("poster", 3), ("sheet", 1)):
        response = admin.post(
            f"{BASE}/in-lai", data={"csrf_token": token, "poster": ids, "layout": layout}
        )
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        reader = PdfReader(io.BytesIO(response.data))
        assert len(reader.pages) == pages
        text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
        for n in range(1, 4):
            assert f"Bảng tin tổ {n}" in text
        assert "đã gỡ" not in text
    page = admin.get(f"{BASE}/").get_data(as_text=True)
    assert "1 áp phích đã chọn không được in" in page
    nothing = admin.post(f"{BASE}/in-lai", data={"csrf_token": token})
    assert nothing.status_code == 303
    assert "Chưa chọn áp phích nào" in admin.get(f"{BASE}/").get_data(as_text=True)


# --- figures ----------------------------------------------------------------------------------


def test_the_list_shows_the_funnel_and_flags_a_silent_poster(
    admin: FlaskClient, runtime: Runtime, offered: list[services.OfferedProcedure]
) -> None:
    tz = runtime.calendar.tz
    today = _now().astimezone(tz).date()
    long_ago = _now() - timedelta(days=60)
    code = offered[-1].code
    place = "Bến phà Nhuận Đức"
    torn = _make(runtime, code, place)
    alive = _make(runtime, offered[0].code, place)
    with runtime.db.writing() as s:
        commune_id = services.commune_by_slug(s, SLUG).id
        for p in (torn, alive):
            s.get(Poster, p.id).created_at = long_ago  # type: ignore[union-attr]
        for n in range(1, 50):
            day = today - timedelta(days=n)
            if n > 7:  # the torn poster: 4 scans a day until 8 days ago, then nothing
                s.add(PosterDay(poster_id=torn.id, day=day, commune_id=commune_id, scans=4,
                                forms_started=2, submitted=1, approved=1))  # fmt: skip
            s.add(PosterDay(poster_id=alive.id, day=day, commune_id=commune_id, scans=3,
                            forms_started=0, submitted=0, approved=0))  # fmt: skip
    html = admin.get(f"{BASE}/").get_data(as_text=True)
    assert "Áp phích có thể đã bị che hoặc bị gỡ" in html
    assert f'href="{BASE}/{torn.id}"' in html
    assert "Không có lượt quét nào trong 7 ngày qua" in html
    assert "4,0 lượt/ngày" in html
    # The torn poster's row: 30-day funnel (days 8..29 → 22 days) and its lifetime figures.
    row = re.search(rf'id="p-{torn.id}".*?</tr>', html, re.S)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
    assert cells[1].startswith("88") and cells[2].startswith("44") and "(50%)" in cells[2]
    assert cells[3].startswith("22") and cells[4].startswith("22")
    assert "168 / 42" in row.group(0)  # lifetime: 42 days × 4 scans, 42 submitted
    assert "Im lặng" in row.group(0)
    alive_row = re.search(rf'id="p-{alive.id}".*?</tr>', html, re.S)
    assert alive_row is not None and "Im lặng" not in alive_row.group(0)

    detail = admin.get(f"{BASE}/{torn.id}").get_data(as_text=True)
    assert "Áp phích im lặng" in detail
    assert (today - timedelta(days=8)).strftime("%d/%m/%Y") in detail  # last scan
    assert detail.count("<tr><td>") == 30  # one row per day of the period
