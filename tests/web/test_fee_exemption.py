"""A citizen declares a fee-exempt group (Luật Hộ tịch Điều 11.1.a); the official checks the proof.

Until the official has checked it the dossier owes nothing and shows no VietQR; an exemption that
does not hold puts the fee back (and the VietQR with it); one that holds leaves nothing to pay.
Either way the decision is taken once, by an official of the procedure, and written to the audit
log. The group itself (a disability is sensitive personal data) stays in the sealed form data.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from core import services
from core.accounts import Role
from storage.models import AuditEvent, Commune, CommuneProcedure, Dossier
from storage.runtime import Runtime
from tests.citizen import file_fields, open_form, photo, post_form, valid_values
from tests.staff_support import dossier_row, make_commune, make_user, sign_in_cookie

PROCEDURE = "nhan-cha-me-con"  # fee set by the province: the commune's amount
FEE = 15_000


@pytest.fixture()
def commune(runtime: Runtime) -> Commune:
    commune = make_commune(runtime, "Xã Miễn Phí")
    with runtime.db.writing() as s:
        row = s.get(Commune, commune.id)
        assert row is not None
        row.bank_bin, row.bank_account, row.bank_account_name = "970436", "0071000999999", "UBND XA"
        setting = s.scalar(
            select(CommuneProcedure).where(
                CommuneProcedure.commune_id == commune.id, CommuneProcedure.code == PROCEDURE
            )
        )
        assert setting is not None
        setting.fee_amount = FEE
    return commune


def _file(client: FlaskClient, runtime: Runtime, commune: Commune, group: str) -> tuple[str, str]:
    """File the procedure through the form, declaring `group` ("" for none); (code, receipt)."""
    defn = runtime.catalog.get(PROCEDURE)
    assert defn is not None and defn.fee.exemption_field
    _, csrf, draft = open_form(client, PROCEDURE, commune.slug)
    values = valid_values(defn, seed=3) | {defn.fee.exemption_field: group}
    files = {name: [(photo(), "giay-to.jpg")] for name in file_fields(defn)}
    response = post_form(
        client, defn, values, csrf=csrf, draft=draft, files=files, slug=commune.slug
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    code = re.findall(r'<dd class="code">([^<]+)</dd>', receipt)[0].strip()
    return code, receipt


def _staff(client: FlaskClient, runtime: Runtime, commune: Commune, role: Role) -> FlaskClient:
    """A second browser, signed in as a new account of `role` (an official handles PROCEDURE)."""
    scope = (PROCEDURE,) if role == Role.OFFICIAL else ()
    user_id, _, _ = make_user(runtime, commune, role, procedures=scope)
    staff = client.application.test_client()
    staff.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")
    return staff


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return unescape(found[1])


def _post_decision(client: FlaskClient, page: str, code: str, decision: str) -> TestResponse:
    return client.post(
        "/can-bo/le-phi/mien-le-phi",
        data={"csrf_token": _token(page), "code": code, "decision": decision},
    )


def _decide(client: FlaskClient, code: str, decision: str) -> str:
    page = client.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    response = _post_decision(client, page, code, decision)
    assert response.status_code == 303
    return client.get(response.headers["Location"]).get_data(as_text=True)


def _audit(runtime: Runtime, code: str) -> list[str]:
    with runtime.db.reading() as s:
        return list(
            s.scalars(select(AuditEvent.action).where(AuditEvent.target == f"dossier:{code}"))
        )


def _payment(runtime: Runtime, commune: Commune, code: str) -> services.PaymentView | None:
    row = dossier_row(runtime, commune, code)
    with runtime.db.reading() as s:
        fresh = s.get(Commune, commune.id)
        assert fresh is not None
        return services.payment_view(row, fresh)


def test_without_a_declared_group_the_fee_is_owed_at_once(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code, receipt = _file(client, runtime, commune, "")
    row = dossier_row(runtime, commune, code)
    assert row.fee_amount == FEE and row.fee_exemption_state is None
    assert 'id="thanh-toan"' in receipt and "15.000 đ" in receipt


def test_an_exemption_that_does_not_hold_puts_the_fee_and_the_vietqr_back(
    client: FlaskClient, runtime: Runtime, commune: Commune, tmp_path: Path
) -> None:
    code, receipt = _file(client, runtime, commune, "ho_ngheo")
    row = dossier_row(runtime, commune, code)
    assert (row.fee_amount, row.fee_exemption_state, row.fee_without_exemption) == (
        0,
        "claimed",
        FEE,
    )
    # The citizen is told what happens next, and is asked for no payment yet.
    assert "Bạn đã khai thuộc đối tượng được miễn lệ phí" in receipt
    assert "15.000&nbsp;đ" in receipt and 'id="thanh-toan"' not in receipt
    assert "hộ nghèo" not in receipt.lower()  # the group is not repeated on public pages
    # The signed receipt says the same, and verifies.
    signed = client.get(f"/x/{commune.slug}/bien-nhan/bien-nhan.json")
    body = json.loads(signed.data)
    shown = body["payload"]
    assert (shown["fee"], shown["fee_exemption"], shown["fee_without_exemption"]) == (
        0,
        "claimed",
        FEE,
    )
    receipt_file = tmp_path / "bien-nhan.json"
    receipt_file.write_bytes(signed.data)
    verified = client.application.test_cli_runner().invoke(
        args=["receipt", "verify", str(receipt_file)]
    )
    assert verified.exit_code == 0 and "VALID" in verified.output

    staff = _staff(client, runtime, commune, Role.OFFICIAL)
    page = staff.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    assert "Người thuộc hộ nghèo" in page  # the answer, among the form's data
    assert "Không đủ điều kiện miễn" in page

    # A post without one of the two buttons decides nothing.
    assert "Chưa ghi nhận" in _decide(staff, code, "")
    assert dossier_row(runtime, commune, code).fee_exemption_state == "claimed"
    after = _decide(staff, code, "refuse")
    assert f"Hồ sơ {code}: không đủ điều kiện miễn; lệ phí phải nộp 15.000 đ." in after
    row = dossier_row(runtime, commune, code)
    assert (row.fee_amount, row.fee_exemption_state) == (FEE, "refused")
    pay = _payment(runtime, commune, code)
    assert pay is not None and pay.amount == FEE and code in pay.purpose
    assert _audit(runtime, code).count("fees.exemption_refused") == 1

    # Decided once: a second answer changes nothing.
    again = _decide(staff, code, "confirm")
    assert "không có yêu cầu miễn lệ phí đang chờ kiểm tra" in again
    assert dossier_row(runtime, commune, code).fee_amount == FEE
    assert "fees.exemption_confirmed" not in _audit(runtime, code)


def test_a_confirmed_exemption_leaves_nothing_to_pay(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code, _ = _file(client, runtime, commune, "khuyet_tat")
    staff = _staff(client, runtime, commune, Role.OFFICIAL)
    after = _decide(staff, code, "confirm")
    assert "Đã xác nhận: không thu lệ phí." in after
    row = dossier_row(runtime, commune, code)
    assert (row.fee_amount, row.fee_exemption_state) == (0, "confirmed")
    assert _payment(runtime, commune, code) is None
    assert _audit(runtime, code).count("fees.exemption_confirmed") == 1
    # Stored in clear: only the state; the declared group is only in the sealed data.
    clear = [str(getattr(row, c.key)) for c in Dossier.__table__.columns if c.key != "sealed_data"]
    assert not any("khuyet_tat" in value or "khuyết tật" in value for value in clear)


def test_a_leader_sees_the_claim_but_cannot_decide_it(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code, _ = _file(client, runtime, commune, "gia_dinh_co_cong")
    staff = _staff(client, runtime, commune, Role.LEADER)
    page = staff.get(f"/can-bo/ho-so/{code}").get_data(as_text=True)
    assert "kiểm tra giấy tờ chứng minh" in page
    assert "/can-bo/le-phi/mien-le-phi" not in page
    assert _post_decision(staff, page, code, "confirm").status_code in (403, 404)
    assert dossier_row(runtime, commune, code).fee_exemption_state == "claimed"


def test_another_communes_official_cannot_decide_it(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code, _ = _file(client, runtime, commune, "ho_ngheo")
    staff = _staff(client, runtime, make_commune(runtime, "Xã Khác"), Role.OFFICIAL)
    page = staff.get("/can-bo/le-phi/").get_data(as_text=True)
    assert _post_decision(staff, page, code, "confirm").status_code == 404
    assert dossier_row(runtime, commune, code).fee_exemption_state == "claimed"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    declared=st.one_of(
        # Visible text (spaces, control and invisible characters have their own tests).
        st.text(
            st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")), max_size=80
        ),
        st.sampled_from(
            ["", " ", "ho_ngheo", " ho_ngheo ", "HO_NGHEO", "vip", "<b>khuyet_tat</b>"]
        ),
    )
)
def test_only_a_listed_group_can_be_declared(
    client: FlaskClient, runtime: Runtime, commune: Commune, declared: str
) -> None:
    """Whatever arrives in the group's field: a listed group is a claim, nothing is no claim, and
    anything else comes back beside the field with nothing stored (never a free dossier)."""
    defn = runtime.catalog.get(PROCEDURE)
    assert defn is not None and defn.fee.exemption_field
    options = {
        o.value for f in defn.fields if f.name == defn.fee.exemption_field for o in f.options
    }
    _, csrf, draft = open_form(client, PROCEDURE, commune.slug)
    values = valid_values(defn, seed=5) | {defn.fee.exemption_field: declared}
    files = {name: [(photo(), "giay-to.jpg")] for name in file_fields(defn)}
    with runtime.db.reading() as s:
        before = s.scalar(select(func.count(Dossier.id)).where(Dossier.commune_id == commune.id))
    response = post_form(
        client, defn, values, csrf=csrf, draft=draft, files=files, slug=commune.slug
    )
    with runtime.db.reading() as s:
        rows = list(
            s.scalars(select(Dossier).where(Dossier.commune_id == commune.id).order_by(Dossier.id))
        )
    if declared.strip() in options or not declared.strip():
        assert response.status_code == 303
        assert len(rows) == (before or 0) + 1
        claimed = rows[-1].fee_exemption_state == "claimed"
        assert claimed == (declared.strip() in options)
        assert rows[-1].fee_amount == (0 if claimed else FEE)
    else:
        assert response.status_code == 422
        assert len(rows) == before
        page = response.get_data(as_text=True)
        assert 'class="field field-error" id="w-mien_le_phi"' in page
