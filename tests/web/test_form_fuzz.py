"""Fuzzing the form endpoint: whatever arrives, never a 500 and never half a dossier."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from storage.models import Dossier, DossierEvent
from storage.runtime import Runtime
from tests.citizen import open_form, post_form, valid_values

FIELDS_OF_KHAI_SINH = [
    "nyc_ho_ten",
    "nyc_ngay_sinh",
    "nyc_cccd",
    "nyc_dien_thoai",
    "tre_ho_ten",
    "tre_gioi_tinh",
    "tre_ngay_sinh",
    "me_nam_sinh",
    "me_cccd",
    "co_cha",
    "so_ban_sao",
    "nyc_email",
    "unknown",
]
HOSTILE_SAMPLES = [
    "<script>alert(1)</script>",
    "{{7*7}}",
    '=HYPERLINK("http://x")',
    "\x00\x01",
    "‮evil",
    "a\u0301\u0301\u0301",
    "9" * 5000,
    "-1",
    "99999999999999999999",
    "31/02/2020",
    "0000-00-00",
    "+84 000 000 000",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
]
hostile_text = st.one_of(st.text(max_size=300), st.sampled_from(HOSTILE_SAMPLES))


def _state(runtime: Runtime) -> tuple[int, int]:
    with runtime.db.reading() as s:
        dossiers = s.scalar(select(func.count()).select_from(Dossier)) or 0
        events = s.scalar(select(func.count()).select_from(DossierEvent)) or 0
    return int(dossiers), int(events)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(changes=st.dictionaries(st.sampled_from(FIELDS_OF_KHAI_SINH), hostile_text, max_size=6))
def test_form_endpoint_never_fails_and_never_half_stores(
    client: FlaskClient, runtime: Runtime, changes: dict[str, str]
) -> None:
    defn = runtime.catalog.get("khai-sinh")
    _, csrf, draft = open_form(client, "khai-sinh")
    values = {**valid_values(defn, seed=21), **changes}
    before = _state(runtime)
    response = post_form(client, defn, values, csrf=csrf, draft=draft)
    after = _state(runtime)
    assert response.status_code in (303, 422), response.status_code
    if response.status_code == 422:
        assert after == before  # nothing stored
        html = response.get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html  # shown as text, never as markup
    else:
        assert after == (before[0] + 1, before[1] + 1)  # the dossier and its first event


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/x/nhuan-duc/khai-sinh", "/tra-cuu", "/kiem-tra", "/xac-minh"]),
    data=st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=200), max_size=8),
)
def test_any_post_is_answered_without_a_server_error(
    client: FlaskClient, path: str, data: dict[str, str]
) -> None:
    response = client.post(path, data=data)
    assert response.status_code < 500


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/x/nhuan-duc",
        "/x/nhuan-duc/khai-sinh",
        "/x/nhuan-duc/bien-nhan",
        "/tra-cuu",
        "/tra-cuu/ho-so",
        "/kiem-tra",
        "/xac-minh",
        "/api/v1/procedures",
        "/q/{v}",
        "/x/{v}",
        "/x/nhuan-duc/{v}",
        "/api/v1/procedures/{v}",
    ],
)
def test_any_address_a_phone_opens_is_answered_without_a_server_error(
    client: FlaskClient, path: str
) -> None:
    """Hostile text in the path and in every query parameter a citizen page reads."""
    keys = ["ma", "k", "lang", "t", "q", "poster", "code", "next"]
    for i, value in enumerate([*HOSTILE_SAMPLES, "9" * 5000, "%00", "..%2F..%2Fetc"]):
        url = path.replace("{v}", quote(value, safe="")) if "{v}" in path else path
        # Each try from its own address, so the shared rate limits of the status lookup are not
        # spent for the tests that run after this one.
        phone = {"REMOTE_ADDR": f"10.251.{secrets.randbelow(250)}.{i}"}
        response = client.get(url, query_string={k: value for k in keys}, environ_base=phone)
        assert response.status_code < 500, (url[:80], value[:20], response.status_code)
