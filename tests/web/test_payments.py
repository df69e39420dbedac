"""Staff fee pages: desk payments, the collecting account, bank statements, and their scope."""

from __future__ import annotations

import re
from html import unescape
from io import BytesIO
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from core import services
from core.accounts import Role
from core.reconciliation import Outcome
from core.sealing import unseal
from storage.models import AuditEvent, BankTransfer, Commune, StatementUpload
from storage.runtime import Runtime
from tests.staff_support import dossier_row, make_commune, make_dossier, make_user, sign_in_cookie

PROCEDURE = "trich-luc-ho-tich"  # 8,000 đ per copy
BASE = "/can-bo/le-phi"


def _copies(runtime: Runtime, n: int) -> dict[str, object]:
    defn = runtime.catalog.get(PROCEDURE)
    assert defn is not None and defn.fee.quantity_field
    return {defn.fee.quantity_field: n}


def _sign_in(client: FlaskClient, runtime: Runtime, user_id: int) -> None:
    client.set_cookie("kiosk_staff", sign_in_cookie(runtime, user_id), path="/can-bo")


def _csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page[:500]
    return unescape(m[1])


def _audit(runtime: Runtime, action: str, target: str) -> list[AuditEvent]:
    with runtime.db.reading() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == target)
            )
        )


@pytest.fixture()
def commune(runtime: Runtime) -> Commune:
    return make_commune(runtime, "Xã Lệ Phí")


def _client(
    client: FlaskClient, runtime: Runtime, commune: Commune, role: Role, **kw: Any
) -> tuple[int, str]:
    """A new account of `role` in `commune`, signed in on `client`."""
    user_id, username, _ = make_user(runtime, commune, role, **kw)
    _sign_in(client, runtime, user_id)
    return user_id, username


# --- fees at the desk ----------------------------------------------------------------------------


def test_an_official_records_a_fee_paid_and_the_log_says_who_and_when(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 2))
    assert dossier_row(runtime, commune, code).fee_amount == 16_000
    user_id, username = _client(client, runtime, commune, Role.OFFICIAL, procedures=(PROCEDURE,))

    page = client.get(f"{BASE}/").get_data(as_text=True)
    assert code in page and "16.000 đ" in page
    token = _csrf(client, f"{BASE}/")
    typed = code.replace("-", " ")  # as read off paper or a transfer note
    response = client.post(
        f"{BASE}/da-nop", data={"csrf_token": token, "code": typed, "note": "Biên lai 0012"}
    )
    assert response.status_code == 303

    row = dossier_row(runtime, commune, code)
    assert row.fee_paid_at is not None and row.fee_paid_by == user_id
    [event] = _audit(runtime, "fees.paid_at_desk", f"dossier:{code}")
    assert event.actor == f"user:{user_id} {username}" and event.commune_id == commune.id
    assert '"amount":16000' in event.detail and "Biên lai 0012" in event.detail
    after = client.get(f"{BASE}/").get_data(as_text=True)
    assert f"Đã ghi nhận hồ sơ {code} nộp lệ phí 16.000 đ" in after
    assert f'<td class="code">{code}</td>' not in after  # no longer owed
    # The receipt and status page stop offering the VietQR once the fee is paid.
    with runtime.db.reading() as s:
        assert services.payment_view(row, s.get(Commune, commune.id)) is None

    again = client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": code})
    assert again.status_code == 409
    assert "đã được ghi nhận trước đó" in again.get_data(as_text=True)
    assert len(_audit(runtime, "fees.paid_at_desk", f"dossier:{code}")) == 1


def test_errors_stay_beside_the_field_with_what_was_typed(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    _client(client, runtime, commune, Role.OFFICIAL, procedures=(PROCEDURE,))
    token = _csrf(client, f"{BASE}/")
    empty = client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": " ", "note": "x"})
    assert empty.status_code == 422
    body = empty.get_data(as_text=True)
    assert 'id="f-code-error"' in body and "Xin nhập mã hồ sơ" in body
    assert 'name="note" value="x"' in body
    unknown = client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": "99999-990101-0001"})
    assert unknown.status_code == 404
    assert 'value="99999-990101-0001"' in unknown.get_data(as_text=True)
    stale = client.post(f"{BASE}/da-nop", data={"csrf_token": "stale", "code": "1"})
    assert stale.status_code == 400


def test_an_official_reaches_only_the_procedures_they_handle(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 1))
    _client(client, runtime, commune, Role.OFFICIAL, procedures=("khai-sinh",))
    assert code not in client.get(f"{BASE}/").get_data(as_text=True)
    token = _csrf(client, f"{BASE}/")
    response = client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": code})
    assert response.status_code == 404
    assert dossier_row(runtime, commune, code).fee_paid_at is None


def test_another_communes_official_cannot_touch_the_fee(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 1))
    elsewhere = make_commune(runtime, "Xã Bên Cạnh")
    _client(client, runtime, elsewhere, Role.OFFICIAL, procedures=(PROCEDURE,))
    assert code not in client.get(f"{BASE}/").get_data(as_text=True)
    token = _csrf(client, f"{BASE}/")
    assert (
        client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": code}).status_code == 404
    )
    assert dossier_row(runtime, commune, code).fee_paid_at is None


def test_leaders_read_the_list_but_do_not_record_payments(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    code = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 1))
    _client(client, runtime, commune, Role.LEADER)
    page = client.get(f"{BASE}/").get_data(as_text=True)
    assert code in page and 'action="/can-bo/le-phi/da-nop"' not in page
    token = _csrf(client, "/can-bo/doi-mat-khau")  # a form a leader has
    assert (
        client.post(f"{BASE}/da-nop", data={"csrf_token": token, "code": code}).status_code == 404
    )
    assert client.get(f"{BASE}/sao-ke").status_code == 404
    assert client.get(f"{BASE}/tai-khoan").status_code == 404


def test_signed_out_people_are_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get(f"{BASE}/sao-ke")
    assert response.status_code == 302 and "/can-bo/dang-nhap" in response.headers["Location"]


# --- the collecting account ----------------------------------------------------------------------


def test_the_admin_sets_the_collecting_account_explicitly(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    user_id, _ = _client(client, runtime, commune, Role.ADMIN)
    code = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 1))
    with runtime.db.reading() as s:
        fresh = s.get(Commune, commune.id)
        assert fresh is not None and fresh.bank_account is None
        assert services.payment_view(dossier_row(runtime, commune, code), fresh) is None

    token = _csrf(client, f"{BASE}/tai-khoan")
    typed = {"csrf_token": token, "action": "set", "bin": "970405", "account": "1700 2012 34",
             "name": "Ủy ban nhân dân xã Lệ Phí mới thành lập"}  # fmt: skip
    refused = client.post(f"{BASE}/tai-khoan", data=typed)
    assert refused.status_code == 422
    body = refused.get_data(as_text=True)
    assert 'id="f-name-error"' in body and "tối đa 25" in body
    assert 'id="f-confirm-error"' in body  # the explicit confirmation is required
    assert 'value="1700 2012 34"' in body and '<option value="970405" selected>' in body

    ok = client.post(
        f"{BASE}/tai-khoan", data={**typed, "name": "UBND xã Lệ Phí", "confirm": "yes"}
    )
    assert ok.status_code == 303
    with runtime.db.reading() as s:
        fresh = s.get(Commune, commune.id)
        assert fresh is not None
        assert (fresh.bank_bin, fresh.bank_account, fresh.bank_account_name) == (
            "970405",
            "1700201234",
            "UBND XA LE PHI",
        )
        pay = services.payment_view(dossier_row(runtime, commune, code), fresh)
    assert pay is not None and pay.account_name == "UBND XA LE PHI" and pay.amount == 8_000
    [event] = _audit(runtime, "fees.account_set", f"commune:{commune.code}")
    assert event.actor.startswith(f"user:{user_id} ") and '"account":"1700201234"' in event.detail
    page = client.get(f"{BASE}/tai-khoan").get_data(as_text=True)
    assert "UBND XA LE PHI" in page and "<svg" in page  # the check code to scan

    removed = client.post(f"{BASE}/tai-khoan", data={"csrf_token": token, "action": "remove"})
    assert removed.status_code == 303
    with runtime.db.reading() as s:
        fresh = s.get(Commune, commune.id)
        assert fresh is not None and fresh.bank_account is None
    assert len(_audit(runtime, "fees.account_removed", f"commune:{commune.code}")) == 1


def test_only_the_admin_sets_the_account(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    _client(client, runtime, commune, Role.OFFICIAL, procedures=(PROCEDURE,))
    assert client.get(f"{BASE}/tai-khoan").status_code == 404
    token = _csrf(client, f"{BASE}/")
    data = {"csrf_token": token, "action": "set", "bin": "970405", "account": "123456789",
            "name": "NGUYEN VAN A", "confirm": "yes"}  # fmt: skip
    assert client.post(f"{BASE}/tai-khoan", data=data).status_code == 404
    with runtime.db.reading() as s:
        fresh = s.get(Commune, commune.id)
        assert fresh is not None and fresh.bank_account is None


# --- bank statements -----------------------------------------------------------------------------


def _statement(lines: list[tuple[str, str, str, str]]) -> bytes:
    rows = ["STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Mô tả"]
    for i, (ref, debit, credit, note) in enumerate(lines, start=1):
        rows.append(f'{i},01/12/2026 09:00:00,{ref},"{debit}","{credit}",{note}')
    return ("\ufeff" + "\n".join(rows) + "\n").encode()


def _upload(client: FlaskClient, data: bytes, token: str, name: str = "saoke.csv") -> TestResponse:
    return client.post(
        f"{BASE}/sao-ke",
        data={"csrf_token": token, "statement": (BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_statement_is_reconciled_and_uploading_it_again_changes_nothing(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    paid = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 2))  # 16,000
    short = make_dossier(runtime, commune, PROCEDURE, data=_copies(runtime, 2))  # 16,000
    user_id, _ = _client(client, runtime, commune, Role.ADMIN)
    statement = _statement(
        [
            ("FT001", "", "16,000", f"MBVCB.123.NGUYEN VAN AN.{paid.replace('-', '')} LE PHI"),
            ("FT002", "", "8,000", f"TRAN THI BE {short.replace('-', ' ')}"),
            ("FT003", "", "50,000", "NGUYEN VAN AN ung ho"),
            ("FT002", "", "8,000", f"TRAN THI BE {short.replace('-', ' ')}"),
            ("FT004", "22,000", "", "PHI DICH VU"),
        ]
    )
    token = _csrf(client, f"{BASE}/sao-ke")
    response = _upload(client, statement, token)
    assert response.status_code == 303
    detail_url = response.headers["Location"]
    page = client.get(detail_url).get_data(as_text=True)
    assert "Đã đối soát sao kê." in page
    assert f"Khớp hồ sơ {paid}: đã nhận đủ lệ phí 16.000 đ." in page
    assert f"hồ sơ {short} còn phải nộp 16.000 đ" in page and "thiếu 8.000 đ" in page
    assert "không có mã hồ sơ" in page
    assert "Trùng với dòng 3 của sao kê này" in page  # line 1 is the header
    # A line to sort out by hand shows its note (unsealed for the admin); a match does not.
    assert "NGUYEN VAN AN ung ho" in page and "MBVCB.123.NGUYEN VAN AN" not in page

    paid_row = dossier_row(runtime, commune, paid)
    assert paid_row.fee_paid_at is not None and paid_row.fee_paid_by == user_id
    assert dossier_row(runtime, commune, short).fee_paid_at is None
    with runtime.db.reading() as s:
        transfers = {
            t.reference: t
            for t in s.scalars(select(BankTransfer).where(BankTransfer.commune_id == commune.id))
        }
        upload = s.scalar(select(StatementUpload).where(StatementUpload.commune_id == commune.id))
        assert upload is not None
        assert (upload.lines, upload.matched, upload.mismatched, upload.unknown) == (5, 1, 1, 1)
        assert (upload.duplicates, upload.ignored, upload.uploaded_by) == (1, 1, user_id)
        assert {r: t.status for r, t in transfers.items()} == {
            "FT001": Outcome.MATCHED.value,
            "FT002": Outcome.UNDERPAID.value,
            "FT003": Outcome.UNKNOWN_CODE.value,
        }
        assert transfers["FT001"].description_sealed is None  # a match keeps no note
        sealed = transfers["FT003"].description_sealed
        assert sealed is not None and "NGUYEN" not in sealed
        context = f"bank-transfer:{commune.id}:FT003".encode()
        assert unseal(sealed, runtime.keys.sealing, context=context) == b"NGUYEN VAN AN ung ho"
    assert len(_audit(runtime, "fees.paid_by_transfer", f"dossier:{paid}")) == 1

    def snapshot() -> tuple[int, int, int]:
        with runtime.db.reading() as s:
            return (
                s.scalar(select(func.count()).select_from(BankTransfer)) or 0,
                s.scalar(select(func.count()).select_from(StatementUpload)) or 0,
                s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            )

    before = snapshot()
    again = _upload(client, statement, token, name="saoke (1).csv")
    assert again.status_code == 303 and again.headers["Location"] == detail_url
    assert "không có gì thay đổi" in client.get(detail_url).get_data(as_text=True)
    assert snapshot() == before

    # The next statement overlaps (FT002 again) and brings the rest of the short payment.
    following = _statement(
        [
            ("FT002", "", "8,000", f"TRAN THI BE {short.replace('-', ' ')}"),
            ("FT005", "", "8.000", f"{short} nop not"),
        ]
    )
    second = _upload(client, following, token)
    assert second.status_code == 303
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "đã được ghi nhận từ một sao kê tải lên trước" in page
    assert f"Khớp hồ sơ {short}: cùng 8.000 đ đã chuyển trước" in page
    assert dossier_row(runtime, commune, short).fee_paid_at is not None


def test_a_file_that_is_not_a_statement_comes_back_with_the_reason(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    _client(client, runtime, commune, Role.ADMIN)
    token = _csrf(client, f"{BASE}/sao-ke")
    response = _upload(client, b"PK\x03\x04 an xlsx", token, name="saoke.xlsx")
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="f-statement-error"' in body and "Excel" in body
    missing = client.post(f"{BASE}/sao-ke", data={"csrf_token": token})
    assert missing.status_code == 422 and "Xin chọn tệp sao kê" in missing.get_data(as_text=True)


def test_another_communes_admin_gets_404_for_a_statement(
    client: FlaskClient, runtime: Runtime, commune: Commune
) -> None:
    _client(client, runtime, commune, Role.ADMIN)
    token = _csrf(client, f"{BASE}/sao-ke")
    response = _upload(client, _statement([("X1", "", "1,000", "ung ho")]), token)
    detail_url = response.headers["Location"]
    assert client.get(detail_url).status_code == 200

    elsewhere = make_commune(runtime, "Xã Khác")
    other_id, _ = _client(client, runtime, elsewhere, Role.ADMIN)  # same browser, other admin
    assert client.get(detail_url).status_code == 404
    assert "ung ho" not in client.get(f"{BASE}/sao-ke").get_data(as_text=True)
    denied = _audit(runtime, "access.denied", f"statement:{detail_url.rsplit('/', 1)[1]}")
    assert denied and denied[-1].actor.startswith(f"user:{other_id} ")
