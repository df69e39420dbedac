"""A request for a supplement, answered by the citizen from the status page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy import select

from core import services, workspace
from core.sealing import unseal_json
from core.signing import Signature, verify
from storage.models import Dossier, DossierEvent, StaffUser
from storage.runtime import Runtime
from tests.citizen import hidden, photo, submit
from tests.staff_support import identity


def _official(runtime: Runtime) -> int:
    with runtime.db.reading() as s:
        return int(s.scalar(select(StaffUser.id).where(StaffUser.username == "nhuanduc.hotich")))


def _request_supplement(runtime: Runtime, code: str, reason: str) -> None:
    who = identity(runtime, _official(runtime))
    with runtime.db.writing() as s:
        dossier = s.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier is not None
        for action, why in (("claim", None), ("request_supplement", reason)):
            workspace.act(
                s,
                who,
                code,
                action,
                expected_version=None,
                reason=why,
                keys=runtime.keys,
                calendar=runtime.calendar,
                now=datetime.now(UTC),
            )


def test_citizen_answers_a_request_for_supplement(client: FlaskClient, runtime: Runtime) -> None:
    defn = runtime.catalog.get("khai-sinh")
    code, secret = submit(client, defn, seed=31)
    reason = "Ảnh giấy chứng sinh bị mờ, xin chụp lại."
    _request_supplement(runtime, code, reason)

    page = client.get(f"/tra-cuu?ma={code}&k={secret}")
    status = client.get(page.headers["Location"]).get_data(as_text=True)
    assert "Cần bổ sung" in status or "bổ sung" in status
    assert reason in status

    form = client.get("/tra-cuu/bo-sung")
    html = form.get_data(as_text=True)
    assert form.status_code == 200 and reason in html
    empty = client.post(
        "/tra-cuu/bo-sung",
        data={"csrf_token": hidden(html, "csrf_token"), "draft": hidden(html, "draft")},
        content_type="multipart/form-data",
    )
    assert empty.status_code == 422  # nothing to send: says so, keeps the page
    import io

    answer = client.post(
        "/tra-cuu/bo-sung",
        data={
            "csrf_token": hidden(html, "csrf_token"),
            "draft": hidden(html, "draft"),
            "supplement_note": "Gửi lại ảnh rõ hơn.",
            "tre_noi_sinh": "Bệnh viện Đa khoa Củ Chi",
            "giay_chung_sinh": [(io.BytesIO(photo(color=(250, 250, 250))), "chup-lai.jpg")],
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    status = client.get("/tra-cuu/ho-so").get_data(as_text=True)
    assert "Đã bổ sung" in status

    with runtime.db.reading() as s:
        dossier = s.scalar(select(Dossier).where(Dossier.code == code))
        assert dossier is not None and dossier.state == "supplemented"
        assert dossier.paused_since is None
        event = s.scalar(
            select(DossierEvent).where(
                DossierEvent.dossier_id == dossier.id, DossierEvent.action == "submit_supplement"
            )
        )
        assert event is not None and event.sealed_data
        payload = unseal_json(
            event.sealed_data,
            runtime.keys.sealing,
            context=services.supplement_context(dossier, event),
        )
        assert payload["data"] == {"tre_noi_sinh": "Bệnh viện Đa khoa Củ Chi"}
        assert payload["note"] == "Gửi lại ảnh rõ hơn." and len(payload["files"]) == 1
        keys = services.commune_verify_keys(s, dossier.commune_id)
        assert verify(payload, Signature(event.signature_key_id, event.signature), keys)
        # The original dossier is untouched: history keeps both.
        original = unseal_json(
            dossier.sealed_data, runtime.keys.sealing, context=services.dossier_context(dossier)
        )
        assert verify(original, Signature(dossier.signature_key_id, dossier.signature), keys)
        assert original["kind"] == "dossier" and original["data"]["tre_noi_sinh"] != (
            "Bệnh viện Đa khoa Củ Chi"
        )
