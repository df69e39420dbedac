"""The officials' queue and decisions against a real database (the shared test install).

Each test works in a commune of its own (tests/staff_support.py), with officials for two
procedures, a second official for the first one, and a leader.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from PIL import Image
from sqlalchemy import select, update

from core import services, workspace
from core.accounts import Role
from core.deadlines import DeadlineStatus
from core.dossier import DossierState
from core.signing import Signature, verify
from core.staff_auth import OutOfScope, StaffIdentity
from core.uploads import UploadLimits, inspect_upload
from core.workspace import ActionRefused, Conflict, QueueFilter
from storage.files import FileStore
from storage.models import AuditEvent, Commune, Dossier, DossierEvent, Poster, PosterDay
from storage.runtime import Runtime
from tests.staff_support import (
    dossier_row,
    identity,
    local,
    make_commune,
    make_dossier,
    make_user,
)

KS, KH = "khai-sinh", "ket-hon"
MON = local(2026, 3, 2)  # Monday 2 March 2026, 09:00


@dataclass
class Town:
    runtime: Runtime
    commune: Commune
    ks: StaffIdentity  # official for birth registration
    ks2: StaffIdentity  # a second one
    kh: StaffIdentity  # official for marriage only
    leader: StaffIdentity
    admin: StaffIdentity


@pytest.fixture()
def town(runtime: Runtime) -> Town:
    commune = make_commune(runtime)
    ids = {
        "ks": make_user(runtime, commune, Role.OFFICIAL, procedures=(KS,))[0],
        "ks2": make_user(runtime, commune, Role.OFFICIAL, procedures=(KS,))[0],
        "kh": make_user(runtime, commune, Role.OFFICIAL, procedures=(KH,))[0],
        "leader": make_user(runtime, commune, Role.LEADER)[0],
        "admin": make_user(runtime, commune, Role.ADMIN)[0],
    }
    return Town(runtime, commune, **{k: identity(runtime, v) for k, v in ids.items()})


def set_due(town: Town, code: str, due: date) -> None:
    with town.runtime.db.writing() as s:
        s.execute(
            update(Dossier)
            .where(Dossier.commune_id == town.commune.id, Dossier.code == code)
            .values(due_date=due, original_due_date=due, row_version=Dossier.row_version + 1)
        )


def queue(town: Town, who: StaffIdentity, now: datetime, **flt: object) -> workspace.QueuePage:
    with town.runtime.db.reading() as s:
        return workspace.inbox(
            s,
            who,
            QueueFilter(**flt),
            calendar=town.runtime.calendar,
            now=now,  # type: ignore[arg-type]
        )


def act(town: Town, who: StaffIdentity, code: str, action: str, now: datetime, **kw: object):
    if "version" in kw:
        version = kw.pop("version")
    else:
        version = dossier_row(town.runtime, town.commune, code).row_version
    with town.runtime.db.writing() as s:
        return workspace.act(
            s,
            who,
            code,
            action,
            expected_version=version,  # type: ignore[arg-type]
            reason=kw.get("reason"),  # type: ignore[arg-type]
            keys=town.runtime.keys,
            calendar=town.runtime.calendar,
            now=now,
        )


def page(town: Town, who: StaffIdentity, code: str, now: datetime) -> workspace.DossierPage:
    return workspace.open_dossier(
        town.runtime.db, who, code, keys=town.runtime.keys, calendar=town.runtime.calendar, now=now
    )


# --- the queue ------------------------------------------------------------------------------------


def test_queue_is_scoped_and_sorted_by_urgency(town: Town) -> None:
    now = local(2026, 3, 10)  # Tuesday
    codes = {}
    for name, proc, due in [
        ("overdue", KS, date(2026, 3, 5)),
        ("today", KS, date(2026, 3, 10)),
        ("tomorrow", KS, date(2026, 3, 11)),
        ("later", KS, date(2026, 3, 20)),
        ("marriage", KH, date(2026, 3, 1)),
    ]:
        codes[name] = make_dossier(town.runtime, town.commune, proc, now=MON)
        set_due(town, codes[name], due)

    mine = queue(town, town.ks, now)
    assert [r.code for r in mine.rows] == [
        codes["overdue"],
        codes["today"],
        codes["tomorrow"],
        codes["later"],
    ]
    assert [r.deadline for r in mine.rows] == [
        DeadlineStatus.OVERDUE,
        DeadlineStatus.DUE_TODAY,
        DeadlineStatus.DUE_SOON,
        DeadlineStatus.ON_TIME,
    ]
    assert (mine.summary.overdue, mine.summary.due_today) == (1, 1)
    assert set(mine.procedures) == {KS}

    everything = queue(town, town.leader, now)
    assert [r.code for r in everything.rows][:2] == [codes["marriage"], codes["overdue"]]
    assert everything.summary.overdue == 2
    assert [r.code for r in queue(town, town.kh, now).rows] == [codes["marriage"]]

    assert [r.code for r in queue(town, town.ks, now, due="overdue").rows] == [codes["overdue"]]
    assert [r.code for r in queue(town, town.ks, now, due="today").rows] == [codes["today"]]
    assert [r.code for r in queue(town, town.ks, now, due="soon").rows] == [
        codes["overdue"],
        codes["today"],
        codes["tomorrow"],
    ]
    assert [r.code for r in queue(town, town.leader, now, procedure=KH).rows] == [codes["marriage"]]
    # An official asking for a procedure not theirs gets nothing, not the other procedure.
    assert queue(town, town.ks, now, procedure=KH).rows == []

    act(town, town.ks, codes["later"], "claim", now)
    assert [r.code for r in queue(town, town.ks, now, mine=True).rows] == [codes["later"]]
    row = next(r for r in queue(town, town.ks2, now).rows if r.code == codes["later"])
    assert row.assignee == f"Cán bộ {town.ks.username}" and not row.mine


def test_admin_has_no_queue(town: Town) -> None:
    with pytest.raises(OutOfScope):
        queue(town, town.admin, MON)


def test_keyset_pages_cover_everything_once_in_order(town: Town) -> None:
    days = [date(2026, 3, d) for d in (12, 5, 12, 9, 5, 12, 20, 9)]
    codes = []
    for due in days:
        code = make_dossier(town.runtime, town.commune, KS, now=MON)
        set_due(town, code, due)
        codes.append((due, dossier_row(town.runtime, town.commune, code).id, code))
    expected = [code for _, _, code in sorted(codes)]
    seen: list[str] = []
    after = None
    for _ in range(10):
        with town.runtime.db.reading() as s:
            result = workspace.inbox(
                s, town.ks, QueueFilter(after=after), calendar=town.runtime.calendar,
                now=MON, page_size=3,
            )  # fmt: skip
        seen += [r.code for r in result.rows]
        assert len(result.rows) <= 3
        if result.next_cursor is None:
            break
        after = workspace.Cursor.decode(result.next_cursor.encode())
    assert seen == expected


def test_cursor_and_filter_parsing_refuse_garbage() -> None:
    assert workspace.Cursor.decode("2026-03-05.17") == workspace.Cursor(date(2026, 3, 5), 17)
    for bad in ("", None, "x", "2026-13-01.1", "2026-03-05.x", "2026-03-05" + "9" * 40):
        assert workspace.Cursor.decode(bad) is None
    flt = QueueFilter.from_args({"trang_thai": "nope", "han": "yesterday", "cua_toi": "1"})
    assert (flt.state, flt.due, flt.mine) == ("", "", True)
    assert flt.states() == workspace.ACTIONABLE


# --- decisions ------------------------------------------------------------------------------------


def test_claim_approve_and_the_citizen_sees_it(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    act(town, town.ks, code, "claim", MON + timedelta(hours=1))
    act(town, town.ks, code, "approve", MON + timedelta(hours=2))
    row = dossier_row(town.runtime, town.commune, code)
    assert row.state == DossierState.APPROVED and row.assigned_to == town.ks.user_id
    assert row.closed_at is not None
    with town.runtime.db.reading() as s:
        status = services.dossier_status(s, s.get(Dossier, row.id))
    assert [st.state for st in status.steps] == [
        DossierState.RECEIVED,
        DossierState.PROCESSING,
        DossierState.APPROVED,
    ]
    act(town, town.ks2, code, "return_result", MON + timedelta(days=1))  # anyone at the desk
    assert dossier_row(town.runtime, town.commune, code).state == DossierState.RETURNED


def test_decisions_are_signed_who_what_when_why(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    at = MON + timedelta(minutes=30)
    act(town, town.ks, code, "refuse", at, reason="Giấy chứng sinh bị mờ, không đọc được.")
    with town.runtime.db.reading() as s:
        event = s.scalars(
            select(DossierEvent)
            .where(DossierEvent.action == "refuse")
            .join(Dossier, Dossier.id == DossierEvent.dossier_id)
            .where(Dossier.code == code, Dossier.commune_id == town.commune.id)
        ).one()
        keys = services.commune_verify_keys(s, town.commune.id)
    payload = workspace.decision_payload(
        commune_code=town.commune.code, dossier_code=code, action="refuse",
        from_state="received", to_state="refused",
        reason="Giấy chứng sinh bị mờ, không đọc được.", actor=town.ks.username, at=at,
    )  # fmt: skip
    signature = Signature(event.signature_key_id or "", event.signature or "")
    assert verify(payload, signature, keys)
    assert not verify({**payload, "actor": town.ks2.username}, signature, keys)
    assert not verify({**payload, "reason": "Khác"}, signature, keys)


def test_reason_is_required_to_refuse_and_to_ask_for_more(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    for action in ("refuse", "request_supplement"):
        with pytest.raises(ActionRefused) as caught:
            act(town, town.ks, code, action, MON, reason="   ")
        assert caught.value.field == "reason"
        assert "reason" in caught.value.errors
    assert dossier_row(town.runtime, town.commune, code).state == DossierState.RECEIVED


def test_only_the_assigned_official_decides(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    act(town, town.ks, code, "claim", MON)
    with pytest.raises(Conflict) as caught:
        act(town, town.ks2, code, "approve", MON)
    assert "cán bộ khác" in caught.value.message.vi
    with pytest.raises(Conflict):
        act(town, town.ks2, code, "claim", MON)
    with pytest.raises(ActionRefused):
        act(town, town.leader, code, "approve", MON)
    with pytest.raises(OutOfScope):
        act(town, town.kh, code, "approve", MON)
    assert dossier_row(town.runtime, town.commune, code).state == DossierState.PROCESSING


def test_a_stale_page_cannot_decide(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    seen = dossier_row(town.runtime, town.commune, code).row_version
    act(town, town.ks, code, "claim", MON)
    with pytest.raises(Conflict) as caught:
        act(town, town.ks, code, "approve", MON, version=seen)
    assert "người khác thay đổi" in caught.value.message.vi
    assert dossier_row(town.runtime, town.commune, code).state == DossierState.PROCESSING


def test_the_supplement_pauses_the_clock_and_the_answer_resumes_it(town: Town) -> None:
    rt = town.runtime
    code = make_dossier(rt, town.commune, KS, now=MON)
    set_due(town, code, date(2026, 3, 6))  # Friday
    act(town, town.ks, code, "claim", MON)
    asked = local(2026, 3, 3, 10)  # Tuesday
    act(town, town.ks, code, "request_supplement", asked, reason="Thiếu bản sao CCCD của mẹ.")
    row = dossier_row(rt, town.commune, code)
    assert row.state == DossierState.SUPPLEMENT_REQUESTED and row.paused_since is not None
    # Paused dossiers leave the "to do" queue and show as paused in the open view.
    assert code not in [r.code for r in queue(town, town.ks, asked).rows]
    paused = [r for r in queue(town, town.ks, asked, state="open").rows if r.code == code]
    assert paused and paused[0].paused and paused[0].deadline is None
    # The citizen answers the next Monday: Tue, Wed, Thu, Fri and Mon were touched by the pause.
    answered = local(2026, 3, 9, 8)
    with rt.db.writing() as s:
        dossier = s.get(Dossier, row.id)
        services.submit_supplement(
            s, dossier=dossier, cleaned={}, note="Đã nộp bản sao CCCD.",
            draft=secrets.token_urlsafe(24), keys=rt.keys, calendar=rt.calendar, now=answered,
        )  # fmt: skip
    row = dossier_row(rt, town.commune, code)
    assert row.state == DossierState.SUPPLEMENTED and row.paused_since is None
    assert row.due_date == date(2026, 3, 13)  # Friday 6 + 5 working days
    # The same official takes it back and settles it; a second request would break the rule.
    act(town, town.ks, code, "claim", answered)
    with pytest.raises(ActionRefused) as caught:
        act(town, town.ks, code, "request_supplement", answered, reason="Thêm giấy nữa.")
    assert "một lần" in caught.value.message.vi
    act(town, town.ks, code, "approve", answered)
    assert dossier_row(rt, town.commune, code).state == DossierState.APPROVED


def test_apology_once_with_a_working_day_and_visible_to_the_citizen(town: Town) -> None:
    rt = town.runtime
    code = make_dossier(rt, town.commune, KS, now=MON)
    set_due(town, code, date(2026, 3, 6))
    act(town, town.ks, code, "claim", MON)
    now = local(2026, 3, 5)

    def apologise(who: StaffIdentity, new_due: str, reason: str = "Cần xác minh thêm.") -> None:
        with rt.db.writing() as s:
            workspace.apologise(
                s, who, code, expected_version=None, new_due=new_due, reason=reason,
                keys=rt.keys, calendar=rt.calendar, now=now,
            )  # fmt: skip

    with pytest.raises(ActionRefused) as caught:
        apologise(town.ks, "07/03/2026")  # a Saturday
    assert "ngày làm việc" in caught.value.errors["new_due"].vi
    with pytest.raises(ActionRefused) as caught:
        apologise(town.ks, "06/03/2026", reason="")
    assert set(caught.value.errors) == {"new_due", "reason"}
    with pytest.raises(ActionRefused):
        apologise(town.ks2, "10/03/2026")  # not the one handling it
    apologise(town.ks, "10/03/2026")
    row = dossier_row(rt, town.commune, code)
    assert row.due_date == date(2026, 3, 10) and row.original_due_date == date(2026, 3, 6)
    assert row.apology_sent_at is not None
    with pytest.raises(ActionRefused) as caught:
        apologise(town.leader, "2026-03-12")
    assert "một lần" in caught.value.message.vi
    with rt.db.reading() as s:
        status = services.dossier_status(s, s.get(Dossier, row.id))
    assert status.apology and status.steps[-1].new_due_date == date(2026, 3, 10)
    assert status.steps[-1].note == "Cần xác minh thêm."


def test_leader_reassigns_to_an_official_of_the_procedure(town: Town) -> None:
    rt = town.runtime
    code = make_dossier(rt, town.commune, KS, now=MON)
    act(town, town.ks, code, "claim", MON)

    def reassign(who: StaffIdentity, to: int) -> None:
        with rt.db.writing() as s:
            workspace.reassign(s, who, code, expected_version=None, to_user_id=to, now=MON)

    with pytest.raises(ActionRefused):
        reassign(town.ks, town.ks2.user_id)  # officials do not reassign
    with pytest.raises(ActionRefused) as caught:
        reassign(town.leader, town.kh.user_id)  # not an official of this procedure
    assert caught.value.field == "to_user"
    reassign(town.leader, town.ks2.user_id)
    with pytest.raises(Conflict):
        act(town, town.ks, code, "approve", MON)  # no longer theirs
    act(town, town.ks2, code, "approve", MON)
    with rt.db.reading() as s:
        audited = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "dossier.reassign")
            .order_by(AuditEvent.seq.desc()).limit(1)
        ).one()  # fmt: skip
    assert audited.actor.startswith(f"user:{town.leader.user_id} ")


# --- the dossier page -----------------------------------------------------------------------------


def test_dossier_page_shows_data_history_and_is_audited(town: Town) -> None:
    rt = town.runtime
    code = make_dossier(rt, town.commune, KS, now=MON)
    act(town, town.ks, code, "claim", MON)
    before = _audit_count(rt, "dossier.view")
    view = page(town, town.ks, code, MON)
    assert view.integrity.ok
    assert any(item.value == "Nguyễn Văn Bé" for item in view.data)
    assert [h.label.en for h in view.history] == ["Dossier filed", "Take for processing"]
    assert {a.action.value for a in view.actions} == {"request_supplement", "approve", "refuse"}
    assert _audit_count(rt, "dossier.view") == before + 1
    leader_view = page(town, town.leader, code, MON)
    assert leader_view.actions == [] and leader_view.can_reassign
    with pytest.raises(OutOfScope) as caught:
        page(town, town.kh, code, MON)
    assert caught.value.reason == "procedure"
    with pytest.raises(OutOfScope):
        page(town, town.admin, code, MON)


def test_other_communes_dossiers_do_not_exist(town: Town, runtime: Runtime) -> None:
    elsewhere = make_commune(runtime, "Xã Bên Cạnh")
    foreign = make_dossier(runtime, elsewhere, KS, now=MON)
    with pytest.raises(OutOfScope) as caught:
        page(town, town.ks, foreign, MON)
    assert caught.value.reason == "other_commune"
    with pytest.raises(OutOfScope):
        act(town, town.leader, foreign, "claim", MON, version=1)


def _tamper(town: Town, code: str, **values: object) -> None:
    with town.runtime.db.writing() as s:
        s.execute(
            update(Dossier)
            .where(Dossier.commune_id == town.commune.id, Dossier.code == code)
            .values(**values)
        )


def test_edited_state_is_shown_as_tampered(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    act(town, town.ks, code, "claim", MON)
    _tamper(town, code, state=DossierState.SUPPLEMENTED)
    view = page(town, town.ks, code, MON)
    assert not view.integrity.ok
    assert any("tình trạng đã bị sửa" in p.vi for p in view.integrity.problems)


def test_replaced_data_cannot_be_approved(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    other = make_dossier(town.runtime, town.commune, KS, now=MON, data={"ho_ten_tre": "Người Khác"})
    act(town, town.ks, code, "claim", MON)
    sealed = dossier_row(town.runtime, town.commune, other).sealed_data
    _tamper(town, code, sealed_data=sealed)  # another dossier's ciphertext: will not open here
    view = page(town, town.ks, code, MON)
    assert not view.integrity.ok and view.data == []
    with pytest.raises(ActionRefused) as caught:
        act(town, town.ks, code, "approve", MON)
    assert "bị sửa đổi" in caught.value.message.vi
    act(town, town.ks, code, "refuse", MON, reason="Hồ sơ có dấu hiệu bị sửa, đề nghị nộp lại.")


def test_an_edited_decision_is_shown_as_tampered(town: Town) -> None:
    code = make_dossier(town.runtime, town.commune, KS, now=MON)
    act(town, town.ks, code, "refuse", MON, reason="Không đủ điều kiện.")
    dossier_id = dossier_row(town.runtime, town.commune, code).id
    with town.runtime.db.writing() as s:
        s.execute(
            update(DossierEvent)
            .where(DossierEvent.dossier_id == dossier_id, DossierEvent.action == "refuse")
            .values(public_note="Đã duyệt.")
        )
    view = page(town, town.leader, code, MON)
    assert not view.integrity.ok
    assert any("quyết định đã bị sửa" in p.vi for p in view.integrity.problems)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_attachments_download_unsealed_and_audited_and_tampering_shows(town: Town) -> None:
    rt = town.runtime
    draft = secrets.token_urlsafe(24)
    store = FileStore(rt.upload_dir)
    accepted = inspect_upload(_png(), filename="giấy chứng sinh.png", limits=UploadLimits())
    with rt.db.writing() as s:
        commune = s.get(Commune, town.commune.id)
        att = services.accept_upload(
            s, commune=commune, draft=draft, field_name="giay_chung_sinh", accepted=accepted,
            store=store, keyring=rt.keys.sealing, now=MON,
        )  # fmt: skip
        public_id, storage_name = att.public_id, att.storage_name
        done = services.submit(
            s, commune=commune, offered=services.offered_procedure(s, commune, KS),
            cleaned={"ho_ten_tre": "Trần Thị Hoa"}, draft=draft, poster_id=None, lang="vi",
            keys=rt.keys, calendar=rt.calendar, now=MON,
        )  # fmt: skip
        code = done.dossier.code
    view = page(town, town.ks, code, MON)
    assert view.integrity.ok
    assert [a.filename for a in view.attachments] == ["giấy chứng sinh.png"]
    before = _audit_count(rt, "attachment.download")
    got = workspace.open_attachment(
        rt.db, town.ks, code, public_id, keys=rt.keys, store=store, now=MON
    )
    assert got.intact and hashlib.sha256(got.data).hexdigest() == accepted.sha256
    assert got.content_type == "image/png"
    assert _audit_count(rt, "attachment.download") == before + 1
    with pytest.raises(OutOfScope):
        workspace.open_attachment(
            rt.db, town.kh, code, public_id, keys=rt.keys, store=store, now=MON
        )
    with pytest.raises(OutOfScope):
        workspace.open_attachment(
            rt.db, town.ks, code, "0" * 32, keys=rt.keys, store=store, now=MON
        )
    # Someone swaps the file on disk for another sealed file: it no longer opens as this one.
    store.write(storage_name, store.read(storage_name)[:-1] + b"\x00")
    bad = workspace.open_attachment(
        rt.db, town.ks, code, public_id, keys=rt.keys, store=store, now=MON
    )
    assert not bad.intact and bad.data == b""


def test_approval_counts_in_the_posters_funnel(town: Town) -> None:
    rt = town.runtime
    with rt.db.writing() as s:
        commune = s.get(Commune, town.commune.id)
        poster = services.create_poster(
            s, commune=commune, code=KS, location="Bảng tin ấp 1", keys=rt.keys, now=MON
        )
        poster_id = poster.id
    code = make_dossier(rt, town.commune, KS, now=MON, poster_id=poster_id)
    act(town, town.ks, code, "claim", MON)
    act(town, town.ks, code, "approve", MON)
    with rt.db.reading() as s:
        day = s.get(PosterDay, (poster_id, date(2026, 3, 2)))
        assert day is not None and (day.submitted, day.approved) == (1, 1)
        assert s.get(Poster, poster_id) is not None


def _audit_count(rt: Runtime, action: str) -> int:
    with rt.db.reading() as s:
        return len(list(s.scalars(select(AuditEvent.seq).where(AuditEvent.action == action))))


def test_identity_reflects_the_accounts_procedures(town: Town) -> None:
    assert town.ks.procedures == frozenset({KS}) and town.leader.procedures is None
    assert town.ks.covers(town.commune.id, KS) and not town.ks.covers(town.commune.id, KH)
    assert not town.admin.covers(town.commune.id, KS)
    assert town.leader.covers(town.commune.id, KH)
    assert not town.leader.covers(town.commune.id + 1000, KH)


# --- the dashboard -------------------------------------------------------------------------------


def test_dashboard_counts_on_time_late_overdue_and_average_working_days(town: Town) -> None:
    rt = town.runtime
    filed = MON  # Monday 2 March, 09:00

    def filed_and(due: date, *steps: tuple[str, datetime, str | None]) -> str:
        code = make_dossier(rt, town.commune, KS, now=filed)
        set_due(town, code, due)
        for action, at, reason in steps:
            if action == "apology":
                with rt.db.writing() as s:
                    workspace.apologise(
                        s, town.ks, code, expected_version=None, new_due="11/03/2026",
                        reason="Chờ xác minh.", keys=rt.keys, calendar=rt.calendar, now=at,
                    )  # fmt: skip
            else:
                act(town, town.ks, code, action, at, reason=reason)
        return code

    friday = date(2026, 3, 6)
    filed_and(friday, ("claim", filed, None), ("approve", local(2026, 3, 4), None))  # on time
    filed_and(friday, ("refuse", local(2026, 3, 10), "Không đủ điều kiện."))  # late
    filed_and(  # kept its new date, but needed an apology: late
        friday,
        ("claim", filed, None),
        ("apology", local(2026, 3, 5), None),
        ("approve", local(2026, 3, 9), None),
    )
    filed_and(date(2026, 3, 5), ("claim", filed, None))  # open and overdue
    filed_and(
        date(2026, 3, 5), ("request_supplement", local(2026, 3, 3), "Thiếu CCCD.")
    )  # paused: not overdue
    make_dossier(rt, town.commune, KH, now=filed)

    from core.reports import Period, dashboard

    with rt.db.reading() as s:
        commune = s.get(Commune, town.commune.id)
        report = dashboard(
            s, commune, Period(date(2026, 3, 1), date(2026, 3, 31)), calendar=rt.calendar,
            now=local(2026, 3, 12),
        )  # fmt: skip
    births = next(p for p in report.procedures if p.code == KS)
    assert (births.received, births.in_progress, births.overdue) == (5, 2, 1)
    assert (births.on_time, births.late) == (1, 2)
    assert births.average_days == pytest.approx((2 + 6 + 5) / 3)
    marriages = next(p for p in report.procedures if p.code == KH)
    assert (marriages.received, marriages.in_progress, marriages.settled) == (1, 1, 0)
    assert report.total.received == 6 and report.total.on_time_share == pytest.approx(1 / 3)
    earlier = Period(date(2026, 2, 1), date(2026, 2, 28))
    with rt.db.reading() as s:
        commune = s.get(Commune, town.commune.id)
        before = dashboard(s, commune, earlier, calendar=rt.calendar, now=local(2026, 3, 12))
    assert before.total.received == 0 and before.total.settled == 0
    assert before.total.in_progress == 3  # a snapshot of now, whatever the period
