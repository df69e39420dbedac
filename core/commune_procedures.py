"""The procedures of a commune (thủ tục của xã), and new versions of their definitions.

Every commune has a setting row per procedure (`CommuneProcedure`): whether it is offered, in what
order, the commune's fee (the provincial People's Council sets it), its processing time (never
above the legal maximum of the definition), the place and hours to receive the result, its own
instructions in Vietnamese and English, and which officials handle it. The commune admin (quản
trị xã) changes all of these; each change is written to the audit log in the same transaction.

The definition behind a setting is an immutable `ProcedureVersion`: the province's shared catalog
(`commune_id` NULL) or the commune's own edited version. Editing goes through a draft
(`ProcedureDraft`, see core.procedure_editor) that is checked and then *published*: publishing
stores a new version and points the setting at it. Dossiers point at the version they were filed
under, so a publish changes what new dossiers ask for and nothing about old ones.

Who edits what (the *scope* of a draft): a commune admin edits the commune's own versions; a
province admin edits the shared catalog, and publishing a shared version moves every commune that
follows the shared catalog to it (communes with their own version keep it, and are told a newer
shared one exists). Anyone else, and anything of another commune, is `OutOfScope` (a 404).

Like core.services these take a SQLAlchemy `session` and never commit: the caller owns the
transaction (`with db.writing() as s:`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import procedure_editor as editor
from core.accounts import Role
from core.audit import DetailValue
from core.audit_log import record as audit
from core.services import OfferedProcedure, describe_fee
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message, typed_id
from procedures.catalog import definition_version, dump_definition
from procedures.schema import FeeKind, ProcedureDefinition
from storage.definitions import definition_of
from storage.models import (
    Commune,
    CommuneProcedure,
    Dossier,
    ProcedureDraft,
    ProcedureVersion,
    StaffProcedure,
    StaffUser,
)

MAX_RESULT_PLACE = 300
MAX_INSTRUCTIONS = 4000
MAX_FEE = 100_000_000  # đồng; far above any commune fee, far below an int column's limit
FormData = Mapping[str, Sequence[str]]


class SettingsFormError(Exception):
    """What the admin typed cannot be saved; `errors` maps each input to what to fix."""

    def __init__(self, errors: dict[str, Message]) -> None:
        super().__init__(", ".join(f"{k}: {m.en}" for k, m in errors.items()))
        self.errors = errors


class DraftConflict(Exception):
    """Someone else saved the draft since this page was opened (or published or discarded it)."""

    def __init__(self, revision: int) -> None:
        super().__init__(f"the draft is at revision {revision}")
        self.revision = revision


class PublishRefused(Exception):
    """The draft cannot be published: `problems` (each at its input) or `message` say why."""

    def __init__(self, message: Message, problems: Sequence[editor.EditorProblem] = ()) -> None:
        super().__init__(message.en)
        self.message = message
        self.problems = tuple(problems)


# --- Who edits what -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose definitions a draft edits: a commune's own (`commune_id`), or the shared catalog."""

    commune_id: int | None

    @property
    def key(self) -> str:
        return "shared" if self.commune_id is None else f"commune:{self.commune_id}"

    @property
    def shared(self) -> bool:
        return self.commune_id is None


def may_use(staff: StaffIdentity) -> bool:
    """The panel's procedure pages are for a commune admin and the province admin."""
    return (staff.role == Role.ADMIN and staff.commune_id is not None) or (
        staff.role == Role.PROVINCE_ADMIN
    )


def _audit_draft(
    session: Session,
    staff: StaffIdentity,
    scope: Scope,
    code: str,
    step: str,
    *,
    now: datetime,
    **detail: DetailValue,
) -> None:
    """Audit a step of a procedure's draft → publish path in `scope` (`procedure.<step>`)."""
    audit(
        session,
        actor=staff.actor,
        action=f"procedure.{step}",
        target=f"procedure:{code}"[:120],
        commune_id=scope.commune_id,
        detail={"code": code, "scope": scope.key, **detail},
        now=now,
    )


def scope_of(staff: StaffIdentity) -> Scope:
    if staff.role == Role.ADMIN and staff.commune_id is not None:
        return Scope(staff.commune_id)
    if staff.role == Role.PROVINCE_ADMIN:
        return Scope(None)
    raise OutOfScope("procedures", "role")


def _commune_of(session: Session, staff: StaffIdentity) -> Commune:
    """The commune admin's own commune (the province admin has none: OutOfScope)."""
    scope = scope_of(staff)
    if scope.commune_id is None:
        raise OutOfScope("procedures", "no_commune")
    commune = session.get(Commune, scope.commune_id)
    if commune is None:
        raise OutOfScope("procedures", "no_commune")
    return commune


def _setting(session: Session, commune_id: int, code: str) -> CommuneProcedure | None:
    return session.scalar(
        select(CommuneProcedure).where(
            CommuneProcedure.commune_id == commune_id, CommuneProcedure.code == code
        )
    )


def _setting_in_scope(session: Session, staff: StaffIdentity, code: str) -> CommuneProcedure:
    commune = _commune_of(session, staff)
    setting = _setting(session, commune.id, code)
    if setting is None:
        raise OutOfScope(f"procedure:{code[:60]}")
    return setting


def newest_shared(session: Session, code: str) -> ProcedureVersion | None:
    """The shared catalog's newest version of a procedure (the last one published)."""
    return session.scalar(
        select(ProcedureVersion)
        .where(ProcedureVersion.commune_id.is_(None), ProcedureVersion.code == code)
        .order_by(ProcedureVersion.id.desc())
        .limit(1)
    )


def _shared_newest_by_code(session: Session) -> dict[str, ProcedureVersion]:
    newest: dict[str, ProcedureVersion] = {}
    for row in session.scalars(
        select(ProcedureVersion)
        .where(ProcedureVersion.commune_id.is_(None))
        .order_by(ProcedureVersion.id)
    ):
        newest[row.code] = row
    return newest


def _days(days: int) -> Message:
    if days == 0:
        return Message("Trong ngày", "Same day")
    return Message(f"{days} ngày làm việc", f"{days} working days")


# --- The list -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcedureItem:
    """One procedure on the commune admin's list."""

    code: str
    name: Message
    enabled: bool
    version: str
    own: bool  # the commune's own version, not the shared catalog's
    shared_newer: bool  # the shared catalog has a newer version than the one in use
    fee: Message
    time: Message
    officials: int
    has_draft: bool
    published: bool = True  # False: a new procedure that exists only as a draft


def commune_procedures(session: Session, staff: StaffIdentity) -> list[ProcedureItem]:
    """Every procedure of the admin's commune, in the order citizens see them, then new drafts."""
    commune = _commune_of(session, staff)
    scope = scope_of(staff)
    shared = _shared_newest_by_code(session)
    drafts = {
        d.code: d
        for d in session.scalars(select(ProcedureDraft).where(ProcedureDraft.scope == scope.key))
    }
    handled: dict[str, int] = {
        code: n
        for code, n in session.execute(
            select(StaffProcedure.code, func.count())
            .join(StaffUser, StaffUser.id == StaffProcedure.user_id)
            .where(
                StaffUser.commune_id == commune.id,
                StaffUser.role == Role.OFFICIAL.value,
                StaffUser.active.is_(True),
            )
            .group_by(StaffProcedure.code)
        ).tuples()
    }
    items = []
    for s in session.scalars(
        select(CommuneProcedure)
        .where(CommuneProcedure.commune_id == commune.id)
        .order_by(CommuneProcedure.position, CommuneProcedure.code)
    ):
        defn = definition_of(s.version)
        newest = shared.get(s.code)
        days = s.processing_days if s.processing_days is not None else defn.processing_days
        items.append(
            ProcedureItem(
                code=s.code,
                name=Message(defn.name.vi, defn.name.en),
                enabled=s.enabled,
                version=s.version.version,
                own=s.version.commune_id is not None,
                shared_newer=newest is not None and newest.id > s.version_id,
                fee=describe_fee(defn, s.fee_amount),
                time=_days(days),
                officials=handled.get(s.code, 0),
                has_draft=s.code in drafts,
            )
        )
    known = {i.code for i in items}
    for code, d in sorted(drafts.items()):
        if code not in known:
            items.append(_draft_only_item(d))
    return items


def _draft_only_item(d: ProcedureDraft) -> ProcedureItem:
    data = json.loads(d.data)
    label = data.get("name") if isinstance(data.get("name"), dict) else {}
    return ProcedureItem(
        code=d.code,
        name=Message(str(label.get("vi") or d.code), str(label.get("en") or d.code)),
        enabled=False,
        version="",
        own=True,
        shared_newer=False,
        fee=Message("", ""),
        time=Message("", ""),
        officials=0,
        has_draft=True,
        published=False,
    )


@dataclass(frozen=True)
class SharedItem:
    """One procedure of the shared catalog, as the province admin sees it."""

    code: str
    name: Message
    version: str
    following: int  # communes on the newest shared version
    own: int  # communes with their own version
    offering: int  # communes that offer it
    has_draft: bool
    published: bool = True


def shared_procedures(session: Session, staff: StaffIdentity) -> list[SharedItem]:
    scope = scope_of(staff)
    if not scope.shared:
        raise OutOfScope("shared-catalog", "role")
    shared = _shared_newest_by_code(session)
    drafts = {
        d.code: d
        for d in session.scalars(select(ProcedureDraft).where(ProcedureDraft.scope == scope.key))
    }
    counts: dict[str, list[int]] = {}
    for code, version_id, own_commune, enabled in session.execute(
        select(
            CommuneProcedure.code,
            CommuneProcedure.version_id,
            ProcedureVersion.commune_id,
            CommuneProcedure.enabled,
        ).join(ProcedureVersion, ProcedureVersion.id == CommuneProcedure.version_id)
    ).tuples():
        c = counts.setdefault(code, [0, 0, 0])
        newest = shared.get(code)
        if own_commune is not None:
            c[1] += 1
        elif newest is not None and version_id == newest.id:
            c[0] += 1
        if enabled:
            c[2] += 1
    items = []
    for code, version in shared.items():
        defn = definition_of(version)
        following, own, offering = counts.get(code, [0, 0, 0])
        items.append(
            SharedItem(
                code=code,
                name=Message(defn.name.vi, defn.name.en),
                version=version.version,
                following=following,
                own=own,
                offering=offering,
                has_draft=code in drafts,
            )
        )
    for code, d in sorted(drafts.items()):
        if code not in shared:
            item = _draft_only_item(d)
            items.append(SharedItem(code, item.name, "", 0, 0, 0, True, published=False))
    return items


# --- The commune's settings of one procedure ------------------------------------------------------


@dataclass(frozen=True)
class OfficialChoice:
    user_id: int
    name: str
    username: str
    handles: bool


@dataclass(frozen=True)
class VersionItem:
    id: int
    version: str
    created_at: datetime
    created_by: str
    own: bool
    in_use: bool
    dossiers: int


@dataclass(frozen=True)
class SettingsPage:
    code: str
    definition: ProcedureDefinition
    enabled: bool
    own: bool
    shared_newer: bool
    has_draft: bool
    officials: list[OfficialChoice]
    versions: list[VersionItem]
    values: dict[str, list[str]]  # the settings form as stored

    @property
    def fee_applies(self) -> bool:
        return self.definition.fee.kind != FeeKind.FREE


def settings_page(session: Session, staff: StaffIdentity, code: str) -> SettingsPage:
    setting = _setting_in_scope(session, staff, code)
    defn = definition_of(setting.version)
    newest = newest_shared(session, code)
    draft = session.scalar(
        select(ProcedureDraft.id).where(
            ProcedureDraft.scope == scope_of(staff).key, ProcedureDraft.code == code
        )
    )
    officials = _officials(session, setting.commune_id, code)
    values: dict[str, list[str]] = {
        "fee_amount": ["" if setting.fee_amount is None else str(setting.fee_amount)],
        "processing_days": [
            "" if setting.processing_days is None else str(setting.processing_days)
        ],
        "result_place": [setting.result_place],
        "instructions_vi": [setting.instructions_vi],
        "instructions_en": [setting.instructions_en],
        "officials": [str(o.user_id) for o in officials if o.handles],
    }
    return SettingsPage(
        code=code,
        definition=defn,
        enabled=setting.enabled,
        own=setting.version.commune_id is not None,
        shared_newer=newest is not None and newest.id > setting.version_id,
        has_draft=draft is not None,
        officials=officials,
        versions=versions_of(session, staff, code),
        values=values,
    )


def _officials(session: Session, commune_id: int, code: str) -> list[OfficialChoice]:
    handling = set(
        session.scalars(select(StaffProcedure.user_id).where(StaffProcedure.code == code))
    )
    return [
        OfficialChoice(u.id, u.display_name or u.username, u.username, u.id in handling)
        for u in session.scalars(
            select(StaffUser)
            .where(
                StaffUser.commune_id == commune_id,
                StaffUser.role == Role.OFFICIAL.value,
                StaffUser.active.is_(True),
            )
            .order_by(StaffUser.display_name, StaffUser.username)
        )
    ]


def _whole(text: str, *, money: bool = False) -> int | None | str:
    """A typed whole number (None when empty); the text when it is not one."""
    raw = text.strip()
    if not raw:
        return None
    plain = re.sub(r"(?i)\s*(đồng|vnđ|vnd|đ)$", "", raw) if money else raw
    plain = re.sub(r"[\s.,]", "", plain) if money else plain
    return int(plain) if re.fullmatch(r"\d{1,12}", plain) else raw


def _first(form: FormData, key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""


def save_settings(
    session: Session, staff: StaffIdentity, code: str, form: FormData, *, now: datetime
) -> bool:
    """Save the commune's settings of one procedure; True when anything changed (then audited).

    Raises SettingsFormError with every input that cannot be saved; nothing is saved then.
    """
    setting = _setting_in_scope(session, staff, code)
    defn = definition_of(setting.version)
    errors: dict[str, Message] = {}
    fee: int | None = setting.fee_amount
    if defn.fee.kind != FeeKind.FREE:
        typed = _whole(_first(form, "fee_amount"), money=True)
        if isinstance(typed, str) or (typed is not None and typed > MAX_FEE):
            errors["fee_amount"] = Message(
                "Lệ phí ghi bằng số đồng, ví dụ 8000 hoặc 8.000; để trống để dùng mức của thủ tục.",
                "Write the fee in đồng, e.g. 8000 or 8.000; leave empty for the procedure's own.",
            )
        else:
            fee = typed
    days = _whole(_first(form, "processing_days"))
    if isinstance(days, str):
        errors["processing_days"] = Message(
            "Ghi số ngày làm việc bằng chữ số, ví dụ 3 (0 là giải quyết trong ngày).",
            "Write the working days as a number, e.g. 3 (0 is the same day).",
        )
    elif days is not None and days > defn.max_processing_days:
        errors["processing_days"] = Message(
            f"Không được quá {defn.max_processing_days} ngày làm việc, thời hạn tối đa theo luật "
            "của thủ tục này.",
            f"May not exceed {defn.max_processing_days} working days, this procedure's legal "
            "maximum.",
        )
    place = " ".join(_first(form, "result_place").split())
    if len(place) > MAX_RESULT_PLACE:
        errors["result_place"] = Message(
            f"Tối đa {MAX_RESULT_PLACE} ký tự (đang có {len(place)}).",
            f"At most {MAX_RESULT_PLACE} characters (it has {len(place)}).",
        )
    texts = {}
    for key in ("instructions_vi", "instructions_en"):
        text = _first(form, key).replace("\r\n", "\n").strip()
        if len(text) > MAX_INSTRUCTIONS:
            errors[key] = Message(
                f"Tối đa {MAX_INSTRUCTIONS} ký tự (đang có {len(text)}).",
                f"At most {MAX_INSTRUCTIONS} characters (it has {len(text)}).",
            )
        texts[key] = text
    officials = _officials(session, setting.commune_id, code)
    eligible = {o.user_id for o in officials}
    chosen: set[int] = set()
    for raw in form.get("officials", []):
        official = typed_id(raw)
        if official is None or official not in eligible:
            errors["officials"] = Message(
                "Chỉ chọn được công chức đang làm việc của xã.",
                "Only the commune's active officials can be chosen.",
            )
            break
        chosen.add(official)
    if errors:
        raise SettingsFormError(errors)

    detail: dict[str, str | int | bool | None] = {"code": code}
    if fee != setting.fee_amount:
        detail.update(fee_amount=fee, fee_amount_before=setting.fee_amount)
        setting.fee_amount = fee
    day_value = days if isinstance(days, int) else None
    if day_value != setting.processing_days:
        detail.update(processing_days=day_value, processing_days_before=setting.processing_days)
        setting.processing_days = day_value
    if place != setting.result_place:
        detail["result_place_changed"] = True
        setting.result_place = place
    if texts["instructions_vi"] != setting.instructions_vi:
        detail["instructions_vi_changed"] = True
        setting.instructions_vi = texts["instructions_vi"]
    if texts["instructions_en"] != setting.instructions_en:
        detail["instructions_en_changed"] = True
        setting.instructions_en = texts["instructions_en"]
    before = {o.user_id for o in officials if o.handles}
    added, removed = chosen - before, before - chosen
    for user_id in sorted(added):
        session.add(StaffProcedure(user_id=user_id, code=code))
    for row in session.scalars(
        select(StaffProcedure).where(
            StaffProcedure.code == code, StaffProcedure.user_id.in_(removed)
        )
    ):
        session.delete(row)
    if added:
        detail["officials_added"] = ",".join(str(u) for u in sorted(added))
    if removed:
        detail["officials_removed"] = ",".join(str(u) for u in sorted(removed))
    if len(detail) == 1:
        return False
    setting.updated_at = now
    session.flush()  # the row changes before the audit event (see core.audit_log)
    audit(
        session,
        actor=staff.actor,
        action="procedure.settings",
        target=f"procedure:{code}"[:120],
        commune_id=setting.commune_id,
        detail=detail,
        now=now,
    )
    return True


def set_enabled(
    session: Session, staff: StaffIdentity, code: str, *, enabled: bool, now: datetime
) -> bool:
    """Offer a procedure to citizens, or stop offering it (its posters then say so)."""
    setting = _setting_in_scope(session, staff, code)
    if setting.enabled == enabled:
        return False
    setting.enabled = enabled
    setting.updated_at = now
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="procedure.enabled" if enabled else "procedure.disabled",
        target=f"procedure:{code}"[:120],
        commune_id=setting.commune_id,
        detail={"code": code},
        now=now,
    )
    return True


def move(session: Session, staff: StaffIdentity, code: str, *, delta: int, now: datetime) -> bool:
    """Move a procedure up (-1) or down (+1) in the order citizens see."""
    setting = _setting_in_scope(session, staff, code)
    rows = list(
        session.scalars(
            select(CommuneProcedure)
            .where(CommuneProcedure.commune_id == setting.commune_id)
            .order_by(CommuneProcedure.position, CommuneProcedure.code)
        )
    )
    index = next(i for i, r in enumerate(rows) if r.id == setting.id)
    target = index + (1 if delta > 0 else -1)
    if not 0 <= target < len(rows):
        return False
    rows[index], rows[target] = rows[target], rows[index]
    for position, row in enumerate(rows):
        row.position = position
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="procedure.moved",
        target=f"procedure:{code}"[:120],
        commune_id=setting.commune_id,
        detail={"code": code, "position": target + 1},
        now=now,
    )
    return True


def follow_shared(session: Session, staff: StaffIdentity, code: str, *, now: datetime) -> bool:
    """Leave the commune's own version for the shared catalog's newest (for new dossiers)."""
    setting = _setting_in_scope(session, staff, code)
    newest = newest_shared(session, code)
    if newest is None or newest.id == setting.version_id:
        return False
    previous = setting.version
    _point(session, setting, newest, now=now)
    audit(
        session,
        actor=staff.actor,
        action="procedure.follow_shared",
        target=f"procedure:{code}"[:120],
        commune_id=setting.commune_id,
        detail={"code": code, "version": newest.version, "previous_version": previous.version},
        now=now,
    )
    return True


def _point(
    session: Session, setting: CommuneProcedure, version: ProcedureVersion, *, now: datetime
) -> bool:
    """Point a setting at a version; a processing time above the new legal maximum comes down to
    it. Returns whether the time had to come down."""
    setting.version_id = version.id
    setting.version = version
    setting.updated_at = now
    defn = definition_of(version)
    clamped = (
        setting.processing_days is not None and setting.processing_days > defn.max_processing_days
    )
    if clamped:
        setting.processing_days = defn.max_processing_days
    session.flush()
    return clamped


# --- Versions -------------------------------------------------------------------------------------


def versions_of(session: Session, staff: StaffIdentity, code: str) -> list[VersionItem]:
    """The versions a procedure had in the scope (the shared ones too, for a commune), newest
    first, with the number of dossiers filed under each."""
    scope = scope_of(staff)
    in_use: set[int] = set()
    query = select(ProcedureVersion).where(ProcedureVersion.code == code)
    if scope.shared:
        query = query.where(ProcedureVersion.commune_id.is_(None))
    else:
        setting = _setting(session, scope.commune_id or 0, code)
        if setting is not None:
            in_use.add(setting.version_id)
        query = query.where(
            (ProcedureVersion.commune_id == scope.commune_id)
            | ProcedureVersion.commune_id.is_(None)
        )
    rows = list(session.scalars(query.order_by(ProcedureVersion.id.desc())))
    if scope.shared and rows:
        in_use.add(rows[0].id)
    ids = [r.id for r in rows]
    dossier_query = (
        select(Dossier.procedure_version_id, func.count())
        .where(Dossier.procedure_version_id.in_(ids))
        .group_by(Dossier.procedure_version_id)
    )
    if not scope.shared:
        dossier_query = dossier_query.where(Dossier.commune_id == scope.commune_id)
    filed = {version_id: n for version_id, n in session.execute(dossier_query).tuples()}
    authors = {
        u.id: u.display_name or u.username
        for u in session.scalars(
            select(StaffUser).where(StaffUser.id.in_({r.created_by for r in rows if r.created_by}))
        )
    }
    return [
        VersionItem(
            id=r.id,
            version=r.version,
            created_at=r.created_at,
            created_by=authors.get(r.created_by or 0, ""),
            own=r.commune_id is not None,
            in_use=r.id in in_use,
            dossiers=filed.get(r.id, 0),
        )
        for r in rows
    ]


def version_in_scope(session: Session, staff: StaffIdentity, version_id: int) -> ProcedureVersion:
    """A stored version the staff member may read: the shared catalog's, or their commune's own.
    Another commune's own version is OutOfScope, like one that does not exist."""
    scope = scope_of(staff)
    version = session.get(ProcedureVersion, version_id)
    if version is None:
        raise OutOfScope(f"procedure_version:{version_id}", "not_found")
    if version.commune_id is not None and version.commune_id != scope.commune_id:
        raise OutOfScope(f"procedure_version:{version_id}", "other_commune")
    return version


# --- Drafts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftState:
    """A draft as the editor opens it (stored, or made from the version in use on first save)."""

    code: str
    scope: Scope
    data: editor.Draft
    revision: int  # 0: not stored yet (the version in use, unchanged)
    base_version_id: int | None
    base_version: str
    updated_at: datetime | None
    updated_by: str
    checked: editor.Checked

    @property
    def stored(self) -> bool:
        return self.revision > 0


def _draft_row(session: Session, scope: Scope, code: str) -> ProcedureDraft | None:
    return session.scalar(
        select(ProcedureDraft).where(ProcedureDraft.scope == scope.key, ProcedureDraft.code == code)
    )


def current_version(session: Session, scope: Scope, code: str) -> ProcedureVersion | None:
    """The version new dossiers use now: the commune's setting, or the newest shared one."""
    if scope.commune_id is None:
        return newest_shared(session, code)
    setting = _setting(session, scope.commune_id, code)
    return setting.version if setting is not None else None


def open_draft(session: Session, staff: StaffIdentity, code: str) -> DraftState:
    """The draft of a procedure; without one, the version in use as a draft not yet stored."""
    scope = scope_of(staff)
    row = _draft_row(session, scope, code)
    if row is not None:
        data = json.loads(row.data)
        base = session.get(ProcedureVersion, row.base_version_id) if row.base_version_id else None
        author = session.get(StaffUser, row.updated_by) if row.updated_by else None
        return DraftState(
            code=code,
            scope=scope,
            data=data,
            revision=row.revision,
            base_version_id=row.base_version_id,
            base_version=base.version if base else "",
            updated_at=row.updated_at,
            updated_by=(author.display_name or author.username) if author else "",
            checked=editor.check(data),
        )
    version = current_version(session, scope, code)
    if version is None:
        raise OutOfScope(f"procedure:{code[:60]}")
    data = editor.draft_of(definition_of(version))
    return DraftState(
        code=code,
        scope=scope,
        data=data,
        revision=0,
        base_version_id=version.id,
        base_version=version.version,
        updated_at=None,
        updated_by="",
        checked=editor.check(data),
    )


def save_draft(
    session: Session,
    staff: StaffIdentity,
    code: str,
    data: editor.Draft,
    *,
    revision: int,
    now: datetime,
) -> int:
    """Store the draft; returns its new revision. `revision` is the one the page was opened on:
    a different stored one raises DraftConflict (someone else saved, published or discarded)."""
    scope = scope_of(staff)
    row = _draft_row(session, scope, code)
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    if row is None:
        if revision != 0:
            raise DraftConflict(0)  # published or discarded meanwhile
        version = current_version(session, scope, code)
        if version is None:
            raise OutOfScope(f"procedure:{code[:60]}")
        row = ProcedureDraft(
            scope=scope.key,
            commune_id=scope.commune_id,
            code=code,
            base_version_id=version.id,
            data=text,
            revision=1,
            updated_at=now,
            updated_by=staff.user_id,
        )
        session.add(row)
        session.flush()
        _audit_draft(
            session, staff, scope, code, "draft_started", from_version=version.version, now=now
        )
        return row.revision
    if row.revision != revision:
        raise DraftConflict(row.revision)
    row.data = text
    row.revision += 1
    row.updated_at = now
    row.updated_by = staff.user_id
    session.flush()
    return row.revision


def discard_draft(session: Session, staff: StaffIdentity, code: str, *, now: datetime) -> bool:
    scope = scope_of(staff)
    row = _draft_row(session, scope, code)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    _audit_draft(session, staff, scope, code, "draft_discarded", now=now)
    return True


def import_into_draft(
    session: Session,
    staff: StaffIdentity,
    code: str,
    defn: ProcedureDefinition,
    *,
    revision: int,
    file_sha256: str,
    now: datetime,
) -> int:
    """Replace the draft with a definition read from a file (core.procedure_editor.import_toml
    checked it); audited with the file's SHA-256. Returns the draft's new revision."""
    new_revision = save_draft(
        session, staff, code, editor.draft_of(defn), revision=revision, now=now
    )
    scope = scope_of(staff)
    _audit_draft(session, staff, scope, code, "draft_imported", file_sha256=file_sha256, now=now)
    return new_revision


def start_new_procedure(
    session: Session, staff: StaffIdentity, data: editor.Draft, *, now: datetime
) -> str:
    """A draft for a procedure the scope does not have yet (typed in, or imported from a file).
    Raises SettingsFormError when the code is taken."""
    scope = scope_of(staff)
    code = str(data.get("code", ""))
    taken = _draft_row(session, scope, code) is not None or newest_shared(session, code) is not None
    if scope.commune_id is not None:
        taken = taken or _setting(session, scope.commune_id, code) is not None
    if taken:
        raise SettingsFormError(
            {
                "code": Message(
                    f"Đã có thủ tục (hoặc bản nháp) mã «{code}»: xin chọn mã khác, hoặc sửa thủ "
                    "tục đó.",
                    f"A procedure (or draft) with the code '{code}' exists: choose another code, "
                    "or edit that one.",
                )
            }
        )
    session.add(
        ProcedureDraft(
            scope=scope.key,
            commune_id=scope.commune_id,
            code=code,
            base_version_id=None,
            data=json.dumps(data, ensure_ascii=False, sort_keys=True),
            revision=1,
            updated_at=now,
            updated_by=staff.user_id,
        )
    )
    session.flush()
    _audit_draft(session, staff, scope, code, "draft_started", new=True, now=now)
    return code


def new_draft_state(session: Session, staff: StaffIdentity, code: str) -> DraftState:
    """Like open_draft, for a draft that must exist (a new procedure's): OutOfScope otherwise."""
    scope = scope_of(staff)
    if _draft_row(session, scope, code) is None:
        raise OutOfScope(f"procedure:{code[:60]}")
    return open_draft(session, staff, code)


@dataclass(frozen=True)
class Published:
    version: str
    version_id: int
    changed: bool  # False: the draft said what the version in use already says
    communes_moved: int  # communes now using it (1 for a commune's own)
    clamped: int  # communes whose processing time came down to the new legal maximum


def publish(
    session: Session,
    staff: StaffIdentity,
    code: str,
    *,
    revision: int,
    replace_newer: bool,
    now: datetime,
) -> Published:
    """Turn the draft into the version new dossiers use; the draft is gone afterwards.

    Refused (PublishRefused) when the draft has problems, or when a newer version was published
    after the draft was started and `replace_newer` is not set. DraftConflict when the draft
    changed since `revision`.
    """
    scope = scope_of(staff)
    row = _draft_row(session, scope, code)
    if row is None or row.revision != revision:
        raise DraftConflict(row.revision if row is not None else 0)
    checked = editor.check(json.loads(row.data))
    if not checked.ok or checked.definition is None:
        raise PublishRefused(
            Message(
                f"Chưa xuất bản được: còn {len(checked.problems)} chỗ cần sửa.",
                f"Not published: {len(checked.problems)} thing(s) to fix.",
            ),
            checked.problems,
        )
    defn = checked.definition
    current = current_version(session, scope, code)
    if current is not None and current.id != row.base_version_id and not replace_newer:
        raise PublishRefused(
            Message(
                f"Đã có phiên bản mới hơn ({current.version}) được xuất bản sau khi bản nháp này "
                "bắt đầu. Xem lại phiên bản đó; nếu vẫn muốn thay nó bằng bản nháp này, đánh dấu "
                "ô xác nhận rồi xuất bản.",
                f"A newer version ({current.version}) was published after this draft began. "
                "Look at it; to replace it with this draft anyway, tick the box and publish.",
            )
        )
    version_text = definition_version(defn)
    if scope.commune_id is None:
        result = _publish_shared(session, staff, defn, version_text, now=now)
    else:
        result = _publish_own(session, staff, scope.commune_id, defn, version_text, now=now)
    session.delete(row)
    session.flush()
    _audit_draft(
        session,
        staff,
        scope,
        code,
        "published",
        version=result.version,
        previous_version=current.version if current is not None else None,
        changed=result.changed,
        communes_moved=result.communes_moved,
        processing_days_lowered=result.clamped,
        now=now,
    )
    return result


def _stored_version(
    session: Session,
    commune_id: int | None,
    defn: ProcedureDefinition,
    version_text: str,
    *,
    user_id: int,
    now: datetime,
) -> ProcedureVersion:
    owner = (
        ProcedureVersion.commune_id.is_(None)
        if commune_id is None
        else ProcedureVersion.commune_id == commune_id
    )
    row = session.scalar(
        select(ProcedureVersion).where(
            owner, ProcedureVersion.code == defn.code, ProcedureVersion.version == version_text
        )
    )
    if row is None:
        row = ProcedureVersion(
            commune_id=commune_id,
            code=defn.code,
            version=version_text,
            definition=dump_definition(defn),
            created_at=now,
            created_by=user_id,
        )
        session.add(row)
        session.flush()
    return row


def _publish_own(
    session: Session,
    staff: StaffIdentity,
    commune_id: int,
    defn: ProcedureDefinition,
    version_text: str,
    *,
    now: datetime,
) -> Published:
    setting = _setting(session, commune_id, defn.code)
    if setting is not None and setting.version.version == version_text:
        return Published(version_text, setting.version_id, False, 0, 0)
    # The same text as a shared version is that version: the commune follows the catalog again.
    shared = session.scalar(
        select(ProcedureVersion)
        .where(
            ProcedureVersion.commune_id.is_(None),
            ProcedureVersion.code == defn.code,
            ProcedureVersion.version == version_text,
        )
        .order_by(ProcedureVersion.id.desc())
        .limit(1)
    )
    version = shared or _stored_version(
        session, commune_id, defn, version_text, user_id=staff.user_id, now=now
    )
    if setting is None:
        position = session.scalar(
            select(func.max(CommuneProcedure.position)).where(
                CommuneProcedure.commune_id == commune_id
            )
        )
        session.add(
            CommuneProcedure(
                commune_id=commune_id,
                code=defn.code,
                enabled=False,  # the admin sets fee and officials, then offers it
                position=(position or 0) + 1,
                version_id=version.id,
                updated_at=now,
            )
        )
        session.flush()
        return Published(version_text, version.id, True, 1, 0)
    clamped = _point(session, setting, version, now=now)
    return Published(version_text, version.id, True, 1, int(clamped))


def _publish_shared(
    session: Session,
    staff: StaffIdentity,
    defn: ProcedureDefinition,
    version_text: str,
    *,
    now: datetime,
) -> Published:
    before = newest_shared(session, defn.code)
    if before is not None and before.version == version_text:
        return Published(version_text, before.id, False, 0, 0)
    version = _stored_version(session, None, defn, version_text, user_id=staff.user_id, now=now)
    if before is not None and version.id < before.id:
        # An older text published again: store it anew so it is the newest shared version.
        version = ProcedureVersion(
            commune_id=None,
            code=defn.code,
            version=version_text,
            definition=version.definition,
            created_at=now,
            created_by=staff.user_id,
        )
        session.add(version)
        session.flush()
    moved = clamped = 0
    settings = {
        s.commune_id: s
        for s in session.scalars(select(CommuneProcedure).where(CommuneProcedure.code == defn.code))
    }
    for setting in settings.values():
        if setting.version.commune_id is None and setting.version_id != version.id:
            clamped += int(_point(session, setting, version, now=now))
            moved += 1
    # A procedure new to the catalog: every commune gets it, not offered until its admin says so.
    for commune_id in session.scalars(select(Commune.id).where(Commune.active.is_(True))):
        if commune_id not in settings:
            position = session.scalar(
                select(func.max(CommuneProcedure.position)).where(
                    CommuneProcedure.commune_id == commune_id
                )
            )
            session.add(
                CommuneProcedure(
                    commune_id=commune_id,
                    code=defn.code,
                    enabled=False,
                    position=(position or 0) + 1,
                    version_id=version.id,
                    updated_at=now,
                )
            )
            moved += 1
    session.flush()
    return Published(version_text, version.id, True, moved, clamped)


# --- Preview --------------------------------------------------------------------------------------


def preview_offer(
    session: Session, staff: StaffIdentity, code: str, defn: ProcedureDefinition
) -> OfferedProcedure:
    """The draft as the citizen's form would offer it, with the commune's fee and time."""
    scope = scope_of(staff)
    setting = _setting(session, scope.commune_id, code) if scope.commune_id else None
    days = defn.processing_days
    if setting is not None and setting.processing_days is not None:
        days = min(setting.processing_days, defn.max_processing_days)
    return OfferedProcedure(
        code=code,
        definition=defn,
        version_id=0,
        fee_amount=setting.fee_amount if setting is not None else None,
        processing_days=days,
        instructions_vi=setting.instructions_vi if setting is not None else "",
        instructions_en=setting.instructions_en if setting is not None else "",
        result_place=setting.result_place if setting is not None else "",
    )


def preview_commune(session: Session, staff: StaffIdentity) -> Commune | None:
    scope = scope_of(staff)
    return session.get(Commune, scope.commune_id) if scope.commune_id else None
