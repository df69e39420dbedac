"""Importing the official list of administrative units (CSV) on a real database: a rename, a merge
of two communes and a new one. Every dossier still belongs to its commune afterwards, the merged
commune's posters send citizens to the one that took over, and the audit log (whose chain still
verifies) records each change. A plan shown before the install changed is refused as stale.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import func, select

from core import communes, services
from core.accounts import Role
from core.audit_log import verify
from core.staff_auth import StaffIdentity
from storage.models import (
    AuditEvent,
    Commune,
    CommuneProcedure,
    Dossier,
    SigningKey,
)
from storage.runtime import Runtime
from tests.staff_support import identity, make_commune, make_dossier, make_user

HEADER = "ma_xa,ten_xa,ma_tinh,ten_tinh,ma_cu\n"
HCMC = "79,Thành phố Hồ Chí Minh"


def _now() -> datetime:
    return datetime.now(UTC)


def _free_code(runtime: Runtime) -> str:
    with runtime.db.reading() as s:
        taken = set(s.scalars(select(Commune.code)))
    while True:
        code = f"{secrets.randbelow(90000) + 10000}"
        if code not in taken:
            return code


@pytest.fixture(scope="module")
def province(app: Flask) -> StaffIdentity:
    runtime: Runtime = app.extensions["kiosk"]
    user_id, _, _ = make_user(runtime, None, Role.PROVINCE_ADMIN)
    return identity(runtime, user_id)


def _import(
    runtime: Runtime, staff: StaffIdentity, csv_text: str, *, add_new: bool = True
) -> tuple[communes.ImportPlan, communes.Applied]:
    rows, problems = communes.read_units_csv(csv_text.encode("utf-8"))
    assert problems == []
    with runtime.db.reading() as s:
        plan = communes.plan_import(rows, communes.unit_states(s), add_new=add_new)
    assert plan.ok, plan.problems
    with runtime.db.writing() as s:
        applied = communes.apply_plan(
            s,
            staff,
            rows,
            fingerprint=plan.fingerprint,
            add_new=add_new,
            csv_sha256="test",
            keys=runtime.keys,
            now=_now(),
        )
    return plan, applied


def _commune(runtime: Runtime, commune_id: int) -> Commune:
    with runtime.db.reading() as s:
        row = s.get(Commune, commune_id)
        assert row is not None
        s.expunge(row)
        return row


def test_rename_merge_and_add_keep_every_dossier_with_its_commune(
    app: Flask, runtime: Runtime, province: StaffIdentity
) -> None:
    renamed = make_commune(runtime, "Xã An Nhơn Tây")
    keeps = make_commune(runtime, "Xã Phú Mỹ Hưng")
    merged = make_commune(runtime, "Xã An Phú")
    earlier = make_commune(runtime, "Xã Trung An")  # merged into `merged` years ago
    with runtime.db.writing() as s:
        row = s.get(Commune, earlier.id)
        assert row is not None
        row.active, row.successor_id = False, merged.id
    dossiers = {
        c.id: [make_dossier(runtime, c), make_dossier(runtime, c)] for c in (renamed, keeps, merged)
    }
    with runtime.db.writing() as s:
        poster = services.create_poster(
            s,
            commune=s.get(Commune, merged.id),
            code="khai-sinh",
            location="Nhà văn hóa ấp An Phú",
            keys=runtime.keys,
            now=_now(),
        )
        token = services.poster_token(poster, runtime.keys)
    new_code = _free_code(runtime)
    before_seq = _last_seq(runtime)
    csv_text = (
        HEADER
        + f"{renamed.code},Xã An Nhơn,{HCMC},\n"
        + f'{keeps.code},{keeps.name},{HCMC},"{merged.code} {keeps.code}"\n'
        + f"{new_code},Xã Tân Thông Hội,{HCMC},\n"
    )
    plan, applied = _import(runtime, province, csv_text)

    kinds = sorted((c.kind.value, c.code or c.new_code) for c in plan.changes)
    assert kinds == sorted([("rename", renamed.code), ("merge", merged.code), ("add", new_code)])
    assert applied.counts == {"add": 1, "rename": 1, "recode": 0, "province": 0, "merge": 1}

    # Every dossier still belongs to the commune it was filed with, which still exists.
    with runtime.db.reading() as s:
        for commune_id, codes in dossiers.items():
            for code in codes:
                row = s.scalar(select(Dossier).where(Dossier.code == code))
                assert row is not None and row.commune_id == commune_id
        orphans = s.scalar(
            select(func.count())
            .select_from(Dossier)
            .outerjoin(Commune, Commune.id == Dossier.commune_id)
            .where(Commune.id.is_(None))
        )
        assert orphans == 0
        added = s.scalar(select(Commune).where(Commune.code == new_code))
        assert added is not None and added.active and added.slug == "tan-thong-hoi"
        assert s.scalar(select(SigningKey).where(SigningKey.commune_id == added.id)) is not None
        settings = list(
            s.scalars(select(CommuneProcedure).where(CommuneProcedure.commune_id == added.id))
        )
        assert len(settings) >= 14 and not any(p.enabled for p in settings)

    assert _commune(runtime, renamed.id).name == "Xã An Nhơn"
    assert _commune(runtime, renamed.id).slug == renamed.slug  # its address stays
    gone = _commune(runtime, merged.id)
    assert not gone.active and gone.successor_id == keeps.id
    assert _commune(runtime, earlier.id).successor_id == keeps.id  # one hop to an open office
    assert _commune(runtime, keeps.id).active

    # The merged commune's poster now sends citizens to the commune that took over.
    landing = app.test_client().get(f"/q/{token}")
    assert landing.status_code == 410
    page = landing.get_data(as_text=True)
    assert "Xã này đã sáp nhập" in page and keeps.name in page
    assert f"/x/{keeps.slug}" in page

    # A dossier of the merged commune is still found by its citizen.
    with runtime.db.reading() as s:
        row = s.scalar(select(Dossier).where(Dossier.code == dossiers[merged.id][0]))
        assert row is not None
        secret = services.citizen_secret(
            runtime.keys.secret_key, row.commune_id, row.idempotency_key
        )
        found = services.lookup_status(s, row.code, secret)
        assert found is not None and found.commune.id == merged.id

    # The audit log records each change, and its chain still verifies.
    with runtime.db.reading() as s:
        events = list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.seq > before_seq).order_by(AuditEvent.seq)
            )
        )
        assert verify(s).ok
    actions = [(e.action, e.target) for e in events]
    assert ("commune.renamed", f"commune:{renamed.code}") in actions
    assert ("commune.merged", f"commune:{merged.code}") in actions
    assert ("commune.added", f"commune:{new_code}") in actions
    assert actions[-1][0] == "commune.import"
    merge_event = next(e for e in events if e.action == "commune.merged")
    assert f'"successor":"{keeps.code}"' in merge_event.detail
    assert '"earlier_repointed":1' in merge_event.detail
    rename_event = next(e for e in events if e.action == "commune.renamed")
    assert '"name_before":"Xã An Nhơn Tây' in rename_event.detail
    assert all(e.actor == province.actor for e in events)


def _last_seq(runtime: Runtime) -> int:
    with runtime.db.reading() as s:
        return int(s.scalar(select(func.max(AuditEvent.seq))) or 0)


def test_a_unit_continuing_under_a_new_code_keeps_its_dossiers(
    runtime: Runtime, province: StaffIdentity
) -> None:
    unit = make_commune(runtime, "Xã Tân An Hội")
    dossier = make_dossier(runtime, unit)
    new_code = _free_code(runtime)
    plan, applied = _import(
        runtime, province, HEADER + f"{new_code},Xã Tân An Hội,{HCMC},{unit.code}\n"
    )
    assert [c.kind.value for c in plan.changes] == ["recode", "rename"]
    after = _commune(runtime, unit.id)
    assert after.code == new_code and after.name == "Xã Tân An Hội" and after.active
    with runtime.db.reading() as s:
        row = s.scalar(select(Dossier).where(Dossier.code == dossier))
        assert row is not None and row.commune_id == unit.id
        event = s.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "commune.recoded")
            .order_by(AuditEvent.seq.desc())
        )
        assert event is not None and f'"code_before":"{unit.code}"' in event.detail
    # New dossiers take the new code; the old one keeps the code printed on its receipt.
    fresh = make_dossier(runtime, after)
    assert fresh.startswith(new_code) and dossier.startswith(unit.code)


def test_a_plan_shown_before_the_install_changed_is_refused(
    runtime: Runtime, province: StaffIdentity
) -> None:
    unit = make_commune(runtime, "Xã Phước Thạnh")
    rows, _ = communes.read_units_csv(
        (HEADER + f"{unit.code},Xã Phước Thạnh Mới,{HCMC},\n").encode()
    )
    with runtime.db.reading() as s:
        plan = communes.plan_import(rows, communes.unit_states(s))
    with runtime.db.writing() as s:
        row = s.get(Commune, unit.id)
        assert row is not None
        row.name = "Xã Phước Thạnh (sửa tay)"
    with pytest.raises(communes.PlanStale), runtime.db.writing() as s:
        communes.apply_plan(
            s,
            province,
            rows,
            fingerprint=plan.fingerprint,
            add_new=True,
            csv_sha256="x",
            keys=runtime.keys,
            now=_now(),
        )
    assert _commune(runtime, unit.id).name == "Xã Phước Thạnh (sửa tay)"


def test_only_the_province_admin_imports(runtime: Runtime) -> None:
    commune = make_commune(runtime, "Xã Không Được Nhập")
    admin_id, _, _ = make_user(runtime, commune, Role.ADMIN)
    from core.staff_auth import OutOfScope

    with pytest.raises(OutOfScope), runtime.db.writing() as s:
        communes.apply_plan(
            s,
            identity(runtime, admin_id),
            [],
            fingerprint="",
            add_new=False,
            csv_sha256="x",
            keys=runtime.keys,
            now=_now(),
        )
