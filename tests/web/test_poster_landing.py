"""Scanning a poster (GET /q/<token>): genuine, forged, revoked and expired codes, and counting.

Every test makes its own posters in the shared demo install, so none depends on another's state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select

from core import poster_register, services
from core.posters import ALPHABET, official_host
from core.staff_auth import identity_of
from storage.models import Base, Poster, PosterDay, StaffUser
from storage.runtime import Runtime

SLUG = "nhuan-duc"
SCANNER_IP = "203.0.113.77"
SCANNER_AGENT = "Mozilla/5.0 (Linux; Android 14; SM-A546E) UniqueAgent/4242"
ANTI_OTP = "KHÔNG BAO GIỜ hỏi mã OTP"


@pytest.fixture()
def scanner(app: Flask) -> FlaskClient:
    """A phone: its address and user agent must never reach the database."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": SCANNER_IP, "HTTP_USER_AGENT": SCANNER_AGENT})
    return client


def _make(runtime: Runtime, code: str, location: str, **kw: object) -> tuple[int, str]:
    with runtime.db.writing() as s:
        commune = services.commune_by_slug(s, SLUG)
        poster = services.create_poster(
            s,
            commune=commune,
            code=code,
            location=location,
            keys=runtime.keys,
            now=datetime.now(UTC),
            **kw,  # type: ignore[arg-type]
        )
        return poster.id, services.poster_token(poster, runtime.keys)


@pytest.fixture()
def offered(runtime: Runtime) -> Iterator[services.OfferedProcedure]:
    with runtime.db.reading() as s:
        yield services.offered_procedures(s, services.commune_by_slug(s, SLUG))[0]


def _scans_today(runtime: Runtime, poster_id: int) -> int:
    today = runtime.calendar.local_date(datetime.now(UTC))
    with runtime.db.reading() as s:
        row = s.get(PosterDay, (poster_id, today))
        return row.scans if row is not None else 0


def _form_posting_to_a_procedure(html: str) -> bool:
    return re.search(rf'<form[^>]*action="[^"]*/x/{SLUG}/[^"]*"', html) is not None


def _assert_warning_page(html: str) -> None:
    assert "<form" not in html and not _form_posting_to_a_procedure(html)
    assert 'name="poster"' not in html
    assert "OTP" in html  # the warning says never to give one
    assert official_host("http://kiosk.test") in html  # the real address to go to instead


def test_a_genuine_poster_opens_its_landing_and_form(
    runtime: Runtime, scanner: FlaskClient, offered: services.OfferedProcedure
) -> None:
    poster_id, token = _make(runtime, offered.code, "Chợ Nhuận Đức, cổng số 2")
    before = _scans_today(runtime, poster_id)
    response = scanner.get(f"/q/{token}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with runtime.db.reading() as s:
        commune_name = services.commune_by_slug(s, SLUG).name
    assert commune_name in html  # "Xã Nhuận Đức"
    assert offered.name_vi in html
    assert "Chợ Nhuận Đức, cổng số 2" in html
    assert "Áp phích thật" in html
    assert "http://kiosk.test" in html
    assert ANTI_OTP in html
    assert re.search(rf'<form[^>]*method="post"[^>]*action="/x/{SLUG}/{offered.code}"', html)
    assert f'name="poster" value="{token}"' in html
    assert _scans_today(runtime, poster_id) == before + 1


@pytest.mark.parametrize("position", [0, 1, 2, 5, -1])
def test_one_altered_character_gets_the_forged_warning(
    runtime: Runtime,
    scanner: FlaskClient,
    offered: services.OfferedProcedure,
    position: int,
) -> None:
    poster_id, token = _make(runtime, offered.code, "Bảng tin ấp 1")
    index = position % len(token)
    replacement = ALPHABET[(ALPHABET.index(token[index]) + 1) % len(ALPHABET)]
    altered = token[:index] + replacement + token[index + 1 :]
    assert altered != token
    response = scanner.get(f"/q/{altered}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    _assert_warning_page(html)
    assert "không phải của UBND xã" in html
    assert _scans_today(runtime, poster_id) == 0  # a forged code counts for no poster


def test_a_revoked_poster_gets_the_gone_warning(
    runtime: Runtime, scanner: FlaskClient, offered: services.OfferedProcedure
) -> None:
    poster_id, token = _make(runtime, offered.code, "Trạm y tế xã")
    assert scanner.get(f"/q/{token}").status_code == 200
    with runtime.db.writing() as s:
        admin = s.scalar(select(StaffUser).where(StaffUser.username == "nhuanduc.admin"))
        assert admin is not None
        poster_register.revoke(s, identity_of(s, admin), poster_id, now=datetime.now(UTC))
    response = scanner.get(f"/q/{token}")
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    _assert_warning_page(html)
    assert "thu hồi hoặc hết hạn" in html
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, SLUG)
        assert commune.name in html and commune.address in html  # where to go instead
    assert _scans_today(runtime, poster_id) == 1  # the scan before revocation only


def test_an_expired_poster_gets_the_gone_warning(
    runtime: Runtime, scanner: FlaskClient, offered: services.OfferedProcedure
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    poster_id, token = _make(runtime, offered.code, "Nhà văn hóa ấp 5", expires_at=soon)
    assert scanner.get(f"/q/{token}").status_code == 200
    with runtime.db.writing() as s:
        poster = s.get(Poster, poster_id)
        assert poster is not None
        poster.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    response = scanner.get(f"/q/{token}")
    assert response.status_code == 410
    _assert_warning_page(response.get_data(as_text=True))
    assert _scans_today(runtime, poster_id) == 1


def test_garbage_tokens_are_404_without_a_form(scanner: FlaskClient) -> None:
    for token in ("x", "A" * 16, "../../etc/passwd", "Q" * 200, "K7P3-9XQA-BC"):
        response = scanner.get(f"/q/{token}")
        assert response.status_code == 404, token
        assert "<form" not in response.get_data(as_text=True)


def test_scans_are_counted_per_day_without_address_or_device(
    runtime: Runtime, scanner: FlaskClient, offered: services.OfferedProcedure
) -> None:
    poster_id, token = _make(runtime, offered.code, "Bến đò ấp 7")
    other_id, other_token = _make(runtime, offered.code, "Bến xe xã")
    for _ in range(3):
        assert scanner.get(f"/q/{token}").status_code == 200
    assert scanner.get(f"/q/{other_token}?lang=en").status_code == 200
    assert _scans_today(runtime, poster_id) == 3
    assert _scans_today(runtime, other_id) == 1

    # A day's row holds counts and nothing else.
    assert {c.key for c in PosterDay.__table__.columns} == {
        "poster_id",
        "day",
        "commune_id",
        "scans",
        "forms_started",
        "submitted",
        "approved",
    }
    # Neither the phone's address nor its user agent is anywhere in the database.
    with runtime.db.reading() as s:
        tables = set(inspect(s.get_bind()).get_table_names())
        for table in Base.metadata.sorted_tables:
            if table.name not in tables:
                continue
            for row in s.execute(select(table)):
                text = repr(tuple(row))
                assert SCANNER_IP not in text, table.name
                assert "UniqueAgent" not in text, table.name
