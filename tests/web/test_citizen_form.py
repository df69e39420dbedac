"""The citizen's form over HTTP: validation, values kept, CSRF, idempotency, receipt, status."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core import services
from core.sealing import unseal_json
from core.services import CONSENT_VERSION
from core.signing import Signature, verify
from procedures.schema import ProcedureDefinition
from storage.models import Attachment, Dossier, DossierEvent
from storage.runtime import Runtime
from tests.citizen import (
    file_fields,
    hidden,
    open_form,
    photo,
    post_form,
    submit,
    valid_values,
)
from tests.staff_support import make_commune


def _count(runtime: Runtime) -> int:
    with runtime.db.reading() as s:
        return int(s.scalar(select(func.count()).select_from(Dossier)) or 0)


def test_valid_birth_registration_is_sealed_signed_and_queued(
    client: FlaskClient, runtime: Runtime
) -> None:
    defn = runtime.catalog.get("khai-sinh")
    code, secret = submit(client, defn, seed=3)
    assert re.fullmatch(r"27517-\d{6}-\d{4}", code)
    assert len(secret) == 10
    with runtime.db.reading() as s:
        dossier = s.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier is not None and dossier.state == "received"
        payload = unseal_json(
            dossier.sealed_data, runtime.keys.sealing, context=services.dossier_context(dossier)
        )
        keys = services.commune_verify_keys(s, dossier.commune_id)
        assert verify(payload, Signature(dossier.signature_key_id, dossier.signature), keys)
        assert payload["procedure"] == "khai-sinh" and payload["commune"] == "27517"
        # The code's number is drawn by the write, after signing: the signed receipt binds it.
        assert "code" not in payload and dossier.content_hash
        assert len(payload["files"]) == 1 and payload["files"][0]["content_type"] == "image/jpeg"
        events = s.scalars(select(DossierEvent).where(DossierEvent.dossier_id == dossier.id))
        assert [e.to_state for e in events] == ["received"]
        atts = s.scalars(select(Attachment).where(Attachment.dossier_id == dossier.id)).all()
        assert len(atts) == 1 and atts[0].draft_hash is None
        assert dossier.due_date >= date(2026, 1, 1)
        # Tampering with the stored payload breaks the signature.
        payload["data"]["tre_ho_ten"] = "Người Khác"
        assert not verify(payload, Signature(dossier.signature_key_id, dossier.signature), keys)


def test_mistake_comes_back_in_vietnamese_with_every_value_kept(
    client: FlaskClient, runtime: Runtime
) -> None:
    defn = runtime.catalog.get("khai-sinh")
    _, csrf, draft = open_form(client, "khai-sinh")
    values = valid_values(defn, seed=4)
    values["nyc_dien_thoai"] = "028 3812 3456"  # a landline
    values["tre_ngay_sinh"] = "31/02/2026"  # no such day
    before = _count(runtime)
    response = post_form(
        client,
        defn,
        values,
        csrf=csrf,
        draft=draft,
        files={"giay_chung_sinh": [(photo(), "chung-sinh.jpg")]},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert _count(runtime) == before
    assert 'id="error-summary"' in html and 'href="#f-nyc_dien_thoai"' in html
    assert 'id="f-nyc_dien_thoai-error"' in html and 'id="f-tre_ngay_sinh-error"' in html
    for name, value in values.items():
        if name in ("co_cha",):
            continue
        assert (
            f'value="{value}"' in html
            or f">{value}</textarea>" in html
            or (f'value="{value}" selected' in html)
        ), name
    # The accepted photo is listed and not asked for again.
    assert "chung-sinh.jpg" in html
    values["nyc_dien_thoai"] = "0912 345 678"
    values["tre_ngay_sinh"] = date.today().strftime("%d/%m/%Y")
    response = post_form(client, defn, values, csrf=csrf, draft=draft)
    assert response.status_code == 303
    assert _count(runtime) == before + 1


def test_missing_or_stale_csrf_keeps_the_values(client: FlaskClient, runtime: Runtime) -> None:
    defn = runtime.catalog.get("ket-hon")
    _, _, draft = open_form(client, "ket-hon")
    values = valid_values(defn, seed=5)
    before = _count(runtime)
    response = post_form(client, defn, values, csrf="stale-token", draft=draft)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Trang đã mở quá lâu" in html
    assert f'value="{values["nam_ho_ten"]}"' in html
    assert _count(runtime) == before


def test_the_form_token_needs_no_cookie_but_its_own_draft_and_site(
    client: FlaskClient, runtime: Runtime
) -> None:
    """A phone with cookies off still files (the token needs no session); a token served with
    another draft's form, or a form posted from another site, gets the form back with what was
    typed and a fresh token, and stores nothing."""
    defn = runtime.catalog.get("trich-luc-ho-tich")
    _, csrf, draft = open_form(client, defn.code)
    _, other_csrf, _other = open_form(client, defn.code)
    values = valid_values(defn, seed=19)
    before = _count(runtime)
    client.delete_cookie("session")
    refused = [
        post_form(client, defn, values, csrf=other_csrf, draft=draft),
        client.post(
            f"/x/nhuan-duc/{defn.code}",
            data={**values, "csrf_token": csrf, "draft": draft, "consent": CONSENT_VERSION},
            headers={"Sec-Fetch-Site": "cross-site"},
        ),
    ]
    for response in refused:
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and "Trang đã mở quá lâu" in html
        assert all(value in html for value in values.values())
        assert _count(runtime) == before
    fresh = hidden(refused[0].get_data(as_text=True), "csrf_token")
    assert fresh != other_csrf
    cookieless = FlaskClient(client.application, use_cookies=False)
    done = post_form(cookieless, defn, values, csrf=fresh, draft=draft)
    assert done.status_code == 303
    assert _count(runtime) == before + 1


def test_double_tap_gives_one_dossier(client: FlaskClient, runtime: Runtime) -> None:
    defn = runtime.catalog.get("trich-luc-ho-tich")
    _, csrf, draft = open_form(client, defn.code)
    values = valid_values(defn, seed=6)
    before = _count(runtime)
    first = post_form(client, defn, values, csrf=csrf, draft=draft)
    second = post_form(client, defn, values, csrf=csrf, draft=draft)
    assert first.status_code == second.status_code == 303
    assert _count(runtime) == before + 1
    receipt = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "Đã nhận hồ sơ" in receipt


def test_racing_double_tap_gets_the_first_receipt_and_no_gap(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second copy of a stored submission passes validation (this procedure needs no paper)
    and tries to store: the draft's unique key refuses it, it answers with the first one's
    receipt, and the day's numbering has no hole."""
    defn = runtime.catalog.get("trich-luc-ho-tich")
    _, csrf, draft = open_form(client, defn.code)
    values = valid_values(defn, seed=16)
    before = _count(runtime)
    first = post_form(client, defn, values, csrf=csrf, draft=draft)
    assert first.status_code == 303
    first_code = _receipt_code(client, first)
    real_store, real_stored = services.store_submission, services.stored_for_draft
    calls: list[str] = []

    def store(*args: object, **kwargs: object) -> object:
        calls.append("store")
        return real_store(*args, **kwargs)  # type: ignore[arg-type]

    def stored(*args: object, **kwargs: object) -> object:
        calls.append("stored")
        return real_stored(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(services, "store_submission", store)
        patch.setattr(services, "stored_for_draft", stored)
        second = post_form(client, defn, values, csrf=csrf, draft=draft)
    assert calls == ["store", "stored"]  # the refused write, then the look-up
    assert second.status_code == 303
    assert _receipt_code(client, second) == first_code
    assert _count(runtime) == before + 1
    _, csrf, other = open_form(client, defn.code)
    third = post_form(client, defn, valid_values(defn, seed=17), csrf=csrf, draft=other)
    number = int(first_code.rsplit("-", 1)[1])
    assert _receipt_code(client, third).endswith(f"-{number + 1:04d}")


def test_a_retry_whose_papers_the_first_copy_took_gets_its_receipt(
    client: FlaskClient, runtime: Runtime
) -> None:
    """A retry after a lost answer, of a form with a required paper: the stored dossier took
    the paper, so the retry alone would lack it; it gets the first receipt, not an error."""
    defn = runtime.catalog.get("khai-sinh")
    _, csrf, draft = open_form(client, defn.code)
    values = valid_values(defn, seed=18)
    before = _count(runtime)
    first = post_form(
        client,
        defn,
        values,
        csrf=csrf,
        draft=draft,
        files={"giay_chung_sinh": [(photo(), "chung-sinh.jpg")]},
    )
    assert first.status_code == 303
    first_code = _receipt_code(client, first)
    for token in (csrf, "stale-token"):  # the same form, and one whose token has expired
        again = post_form(client, defn, values, csrf=token, draft=draft)
        assert again.status_code == 303
        assert _receipt_code(client, again) == first_code
    assert _count(runtime) == before + 1


def _sending_again_stores_it_once(
    client: FlaskClient,
    runtime: Runtime,
    defn: ProcedureDefinition,
    values: dict[str, str],
    html: str,
    draft: str,
) -> None:
    """The form that came back, sent again as it is (its own CSRF token): one dossier more."""
    before = _count(runtime)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    again = post_form(client, defn, values, csrf=token[1], draft=draft)
    assert again.status_code == 303
    assert _count(runtime) == before + 1


def _receipt_code(client: FlaskClient, response: object) -> str:
    location = response.headers["Location"]  # type: ignore[attr-defined]
    receipt = client.get(location).get_data(as_text=True)
    codes = re.findall(r'<dd class="code">([^<]+)</dd>', receipt)
    return str(codes[0]).strip()


def test_papers_removed_while_sending_bring_the_form_back(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The papers the form was checked with are gone when the dossier is written (removed from
    another tab): nothing is stored, the form comes back with everything typed, and sending
    again stores the dossier once."""
    defn = runtime.catalog.get("khai-sinh")
    _, csrf, draft = open_form(client, defn.code)
    values = valid_values(defn, seed=18)
    files = {name: [(photo(), "giay-chung-sinh.jpg")] for name in file_fields(defn)}
    before = _count(runtime)
    real = services.prepare_submission

    def papers_gone(*args: object, **kwargs: object) -> object:
        prepared = real(*args, **kwargs)  # type: ignore[arg-type]
        with runtime.db.writing() as s:  # another tab, in its own transaction
            s.execute(
                Attachment.__table__.delete().where(
                    Attachment.draft_hash == services.draft_hash(draft)
                )
            )
        return prepared

    with monkeypatch.context() as patch:
        patch.setattr(services, "prepare_submission", papers_gone)
        response = post_form(client, defn, values, csrf=csrf, draft=draft, files=files)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Giấy tờ đính kèm vừa thay đổi" in html
    assert f'value="{values["tre_ho_ten"]}"' in html and f'name="draft" value="{draft}"' in html
    assert _count(runtime) == before
    assert "giay-chung-sinh.jpg" not in html  # the form shows the papers there now: none
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    again = post_form(client, defn, values, csrf=token[1], draft=draft, files=files)
    assert again.status_code == 303
    assert _count(runtime) == before + 1


def test_fee_is_computed_and_vietqr_shown(client: FlaskClient, runtime: Runtime) -> None:
    defn = runtime.catalog.get("trich-luc-ho-tich")
    _, csrf, draft = open_form(client, defn.code)
    values = valid_values(defn, seed=7)
    values["so_ban_sao"] = "3"
    response = post_form(client, defn, values, csrf=csrf, draft=draft)
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "24.000 đ" in receipt
    assert "hai mươi bốn nghìn đồng" in receipt
    assert "UBND XA NHUAN DUC" in receipt


def test_required_photo_missing_is_an_error(client: FlaskClient, runtime: Runtime) -> None:
    defn = runtime.catalog.get("khai-tu")
    _, csrf, draft = open_form(client, defn.code)
    response = post_form(client, defn, valid_values(defn, seed=8), csrf=csrf, draft=draft)
    assert response.status_code == 422
    for name in file_fields(defn):
        assert f'id="f-{name}-error"' in response.get_data(as_text=True)


def test_receipt_status_page_and_same_answer_for_wrong_code_or_secret(
    client: FlaskClient, runtime: Runtime
) -> None:
    defn = runtime.catalog.get("chung-thuc-chu-ky")
    code, secret = submit(client, defn, seed=9)
    other = client.application.test_client()
    page = other.get(f"/tra-cuu?ma={code}&k={secret}")
    assert page.status_code == 303
    status = other.get(page.headers["Location"]).get_data(as_text=True)
    assert code in status and "Đã tiếp nhận" in status
    wrong_secret = other.get(f"/tra-cuu?ma={code}&k=AAAAAAAAAA")
    wrong_code = other.get(f"/tra-cuu?ma=27517-990101-9999&k={secret}")
    assert wrong_secret.status_code == wrong_code.status_code == 404

    def text(r):  # the page without the echoed code and the per-session token
        return re.sub(
            r'name="csrf_token" value="[^"]*"|value="[^"]*"', "", r.get_data(as_text=True)
        )

    assert text(wrong_secret) == text(wrong_code)


def test_the_receipt_goes_only_to_the_receipt_page_and_a_made_up_one_shows_nothing(
    client: FlaskClient, runtime: Runtime
) -> None:
    defn = runtime.catalog.get("khai-sinh")
    code, secret = submit(client, defn, seed=11)
    cookie = client.get_cookie("bien_nhan", path="/x/nhuan-duc/bien-nhan")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert cookie.path == "/x/nhuan-duc/bien-nhan" and cookie.value.endswith(f".{secret}")
    with client.session_transaction() as held:  # the cookie every page gets: no secret in it
        assert secret not in repr(dict(held))
    assert code in client.get("/x/nhuan-duc/bien-nhan").get_data(as_text=True)
    assert client.get("/x/nhuan-duc/bien-nhan/bien-nhan.json").status_code == 200

    public_id = cookie.value.split(".")[0]
    stranger = client.application.test_client()
    assert stranger.get("/x/nhuan-duc/bien-nhan").status_code == 302  # to the status lookup
    for value in (f"{public_id}.AAAAAAAAAA", f"{'0' * 32}.{secret}", "garbage", "."):
        stranger.set_cookie("bien_nhan", value, path="/x/nhuan-duc/bien-nhan")
        page = stranger.get("/x/nhuan-duc/bien-nhan")
        assert page.status_code in (302, 404) and code not in page.get_data(as_text=True)
        download = stranger.get("/x/nhuan-duc/bien-nhan/bien-nhan.json")
        assert download.status_code == 404 and code.encode() not in download.data
    # The right cookie under another commune's address shows nothing either.
    other = make_commune(runtime).slug
    stranger.set_cookie("bien_nhan", cookie.value, path=f"/x/{other}/bien-nhan")
    elsewhere = stranger.get(f"/x/{other}/bien-nhan")
    assert elsewhere.status_code == 404 and code not in elsewhere.get_data(as_text=True)


def test_signed_receipt_verifies_with_the_cli(
    client: FlaskClient, runtime: Runtime, tmp_path
) -> None:
    defn = runtime.catalog.get("khai-sinh")
    submit(client, defn, seed=10)
    data = client.get("/x/nhuan-duc/bien-nhan/bien-nhan.json").data
    path = tmp_path / "bien-nhan.json"
    path.write_bytes(data)
    runner = client.application.test_cli_runner()
    ok = runner.invoke(args=["receipt", "verify", str(path)])
    assert ok.exit_code == 0 and "VALID" in ok.output
    path.write_bytes(data.replace(b'"fee": 0', b'"fee": 1'))
    bad = runner.invoke(args=["receipt", "verify", str(path)])
    assert bad.exit_code == 1 and "INVALID" in bad.output


@pytest.mark.parametrize("failing", ["offer_and_papers", "prepare_submission", "store_submission"])
def test_database_down_brings_the_form_back_with_what_was_typed(
    client: FlaskClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """The database stops answering under a submission (first read, or the write): the citizen
    gets the form again with every value typed and the same draft (503, Retry-After), nothing is
    stored, and sending again once the database is back stores the dossier once."""
    defn = runtime.catalog.get("ket-hon")
    _, csrf, draft = open_form(client, "ket-hon")
    values = valid_values(defn, seed=8)
    before = _count(runtime)

    def down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:
        patch.setattr(services, failing, down)
        response = post_form(client, defn, values, csrf=csrf, draft=draft)
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.headers.get("Retry-After")
    assert "Thông tin bạn nhập vẫn còn đây" in html
    assert f'value="{values["nam_ho_ten"]}"' in html and f'value="{values["nu_ho_ten"]}"' in html
    assert f'name="draft" value="{draft}"' in html
    assert _count(runtime) == before
    _sending_again_stores_it_once(client, runtime, defn, values, html, draft)
