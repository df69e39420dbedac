"""The officials' workspace (bàn làm việc của cán bộ): the queue, the dossier, the decisions.

An official's day is the queue (hàng đợi hồ sơ): the dossiers of the procedures assigned to them,
the most urgent first, i.e. the earliest return date (ngày hẹn trả) first, overdue ones at the top.
A dossier is *claimed* (nhận xử lý) by one official, who then settles it: approve, refuse with a
reason, or ask the citizen, once, for everything missing (the deadline clock stops until the
citizen answers). A leader (lãnh đạo) sees the whole commune and can hand a dossier to another
official. When the office will be late it sends, once, an apology with a new date (phiếu xin lỗi
và hẹn lại ngày trả kết quả, NĐ 61/2018), which the citizen sees on the status page.

Rules that hold whoever calls:

- Scope: every function finds the dossier within the caller's commune and procedures, or raises
  `OutOfScope` (a 404, audited by the caller) — never a hint that it exists elsewhere.
- One transition table (`core.dossier.transition`); this module adds who may act (the assigned
  official) and what the action changes (clock paused or resumed, closing time, assignment).
- Concurrency: a form carries the dossier's `row_version` as the official saw it. A decision on a
  dossier that changed since is refused (`Conflict`), and the write itself is conditional on the
  version (SQLAlchemy's version counter: `UPDATE … WHERE row_version = :seen`), so of two
  officials, or twenty clicks, that act at once exactly one wins and the others are told why.
- Every decision is signed with the commune's key like the dossier itself (who, what, when, why)
  and stored as a `DossierEvent`; the dossier page checks every signature, and a dossier whose
  data, files or history no longer match their signatures is shown as tampered and cannot be
  approved.
- Every view of a dossier, every download and every decision goes into the audit log.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core.accounts import Role
from core.audit_log import record
from core.deadlines import DeadlineStatus, WorkCalendar
from core.dossier import (
    ACTIONS,
    Action,
    Actor,
    DossierState,
    TransitionError,
    action_label,
    allowed_actions,
    is_clock_paused,
    is_open,
    is_settled,
    state_label,
    transition,
)
from core.identity import format_date
from core.keys import KeyMaterial
from core.sealing import SealError, unseal, unseal_file_bytes, unseal_json
from core.services import (
    commune_signing_key,
    commune_verify_keys,
    count_poster,
    dossier_context,
    resume_clock,
    supplement_context,
)
from core.signing import Signature, canonical_bytes, sign, verify
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message
from procedures.schema import FieldKind, ProcedureDefinition
from storage.definitions import definition_by_version_id, definition_of
from storage.files import FileStore
from storage.models import (
    Attachment,
    Commune,
    CommuneProcedure,
    Dossier,
    DossierEvent,
    StaffProcedure,
    StaffUser,
)

S = DossierState

# The default queue: what an official can act on now.
ACTIONABLE: tuple[DossierState, ...] = (S.RECEIVED, S.PROCESSING, S.SUPPLEMENTED)
OPEN: tuple[DossierState, ...] = tuple(s for s in DossierState if is_open(s))
# Citizen actions arrive unsigned from the kiosk; every official action must carry a signature.
CITIZEN_ACTIONS = frozenset({"submit", Action.WITHDRAW.value})
APOLOGY = "apology"
MAX_REASON = 2000
PAGE_SIZE = 50


class Sessions(Protocol):
    def reading(self) -> AbstractContextManager[Session]: ...

    def writing(self) -> AbstractContextManager[Session]: ...


class Conflict(Exception):
    """Someone else changed the dossier first; the message says what to do."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.en)
        self.message = message


class ActionRefused(Exception):
    """The action is not allowed, or its input is wrong; `field` names the input at fault."""

    def __init__(
        self,
        message: Message,
        field: str | None = None,
        errors: Mapping[str, Message] | None = None,
    ) -> None:
        super().__init__(message.en)
        self.message = message
        self.field = field
        # Every input at fault, to show each message beside its field.
        self.errors: dict[str, Message] = dict(errors or ({field: message} if field else {}))


_CHANGED = Message(
    "Hồ sơ vừa được người khác thay đổi trong lúc bạn đang xem, nên thao tác của bạn chưa được "
    "thực hiện. Trang đã hiện tình trạng mới nhất: xin xem lại rồi làm lại nếu vẫn cần.",
    "Someone else changed the dossier while you were looking at it, so your action was not "
    "done. The page now shows its latest state: check it and act again if still needed.",
)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc(now: datetime) -> datetime:
    """Times are stored in UTC: SQLite keeps no offset, so a local time would read back wrong."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _clean_text(text: str | None, limit: int = MAX_REASON) -> str:
    cleaned = unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n")).strip()
    return cleaned[:limit]


# --- scope ----------------------------------------------------------------------------------------


def dossier_in_scope(session: Session, identity: StaffIdentity, code: str) -> Dossier:
    """The dossier with this code in the caller's commune and procedures, else OutOfScope."""
    code = code.strip().upper()[:32]
    if not identity.sees_dossiers or identity.commune_id is None:
        raise OutOfScope(f"dossier:{code}", "role")
    dossier = session.scalar(
        select(Dossier).where(Dossier.commune_id == identity.commune_id, Dossier.code == code)
    )
    if dossier is None:
        # Said the same way to the person; the audit log keeps which it was.
        prefix = code.split("-", 1)[0]
        elsewhere = session.scalar(
            select(Dossier.id)
            .join(Commune, Commune.id == Dossier.commune_id)
            .where(Commune.code == prefix, Dossier.code == code)
        )
        raise OutOfScope(f"dossier:{code}", "other_commune" if elsewhere else "not_found")
    if not identity.covers(dossier.commune_id, dossier.procedure_code):
        raise OutOfScope(f"dossier:{dossier.id}", "procedure")
    return dossier


def procedure_names(session: Session, commune_id: int) -> dict[str, Message]:
    """Names of the procedures a commune has (enabled or not), by code."""
    names: dict[str, Message] = {}
    for setting in session.scalars(
        select(CommuneProcedure)
        .where(CommuneProcedure.commune_id == commune_id)
        .order_by(CommuneProcedure.position, CommuneProcedure.code)
    ):
        defn = definition_of(setting.version)
        names[setting.code] = Message(defn.name.vi, defn.name.en)
    return names


def _user_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        row.id: row.display_name or row.username
        for row in session.execute(
            select(StaffUser.id, StaffUser.display_name, StaffUser.username).where(
                StaffUser.id.in_(ids)
            )
        )
    }


# --- the queue ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a queue page ends: the last row's (due date, id). Keyset pagination reads the next
    page from the index instead of counting past an OFFSET, so page 1 000 costs what page 1 does."""

    due: date
    id: int

    def encode(self) -> str:
        return f"{self.due.isoformat()}.{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        if not text or len(text) > 40 or "." not in text:
            return None
        day, _, ident = text.partition(".")
        try:
            return cls(date.fromisoformat(day), int(ident))
        except ValueError:
            return None


DUE_FILTERS = ("overdue", "today", "soon")


@dataclass(frozen=True)
class QueueFilter:
    """What the official asked to see. Empty values mean "any"; `state` empty means the default
    "to do" view (received, processing, supplemented), "open" every open state."""

    procedure: str = ""
    state: str = ""
    due: str = ""
    mine: bool = False
    after: Cursor | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilter:
        state = args.get("trang_thai", "")
        if state not in ("", "open") and state not in {s.value for s in DossierState}:
            state = ""
        due = args.get("han", "")
        return cls(
            procedure=args.get("thu_tuc", "")[:64],
            state=state,
            due=due if due in DUE_FILTERS else "",
            mine=args.get("cua_toi", "") == "1",
            after=Cursor.decode(args.get("sau")),
        )

    def states(self) -> tuple[DossierState, ...]:
        if self.state == "open":
            return OPEN
        if self.state:
            return (DossierState(self.state),)
        return ACTIONABLE

    def args(self, **changes: str) -> dict[str, str]:
        """The query string for this filter (for links), with some values changed."""
        out = {
            "thu_tuc": self.procedure,
            "trang_thai": self.state,
            "han": self.due,
            "cua_toi": "1" if self.mine else "",
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class QueueRow:
    code: str
    procedure_code: str
    procedure_name: Message
    state: DossierState
    state_label: Message
    received_at: datetime
    due_date: date
    deadline: DeadlineStatus | None  # None while the clock is paused or once settled
    paused: bool
    apology_due: bool  # the apology window is open and none was sent
    apology_sent: bool
    assignee: str | None
    mine: bool


@dataclass(frozen=True)
class QueueSummary:
    overdue: int
    due_today: int
    apology_due: int


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: Cursor | None
    procedures: dict[str, Message]  # what the procedure filter offers
    summary: QueueSummary


def _scope_conditions(identity: StaffIdentity, flt: QueueFilter) -> list[Any]:
    conditions: list[Any] = [Dossier.commune_id == identity.commune_id]
    if identity.procedures is not None:
        wanted = set(identity.procedures)
        if flt.procedure:
            wanted &= {flt.procedure}
        conditions.append(Dossier.procedure_code.in_(sorted(wanted)))
    elif flt.procedure:
        conditions.append(Dossier.procedure_code == flt.procedure)
    if flt.mine:
        conditions.append(Dossier.assigned_to == identity.user_id)
    return conditions


def inbox(
    session: Session,
    identity: StaffIdentity,
    flt: QueueFilter,
    *,
    calendar: WorkCalendar,
    now: datetime,
    page_size: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the caller's queue, most urgent first: (due date, id) ascending."""
    if not identity.sees_dossiers or identity.commune_id is None:
        raise OutOfScope("queue", "role")
    today = calendar.local_date(now)
    tomorrow = calendar.add_working_days(today, 1)
    states = flt.states()
    base = _scope_conditions(identity, flt)
    conditions = [*base, Dossier.state.in_(states)]
    if flt.due == "overdue":
        conditions.append(Dossier.due_date < today)
    elif flt.due == "today":
        conditions.append(Dossier.due_date == today)
    elif flt.due == "soon":
        conditions.append(Dossier.due_date <= tomorrow)
    if flt.due:
        # A paused clock has no running deadline, a settled dossier none left.
        conditions.append(
            Dossier.state.in_([s for s in states if not is_clock_paused(s) and not is_settled(s)])
        )
    if flt.after is not None:
        conditions.append(
            tuple_(Dossier.due_date, Dossier.id)
            > tuple_(literal(flt.after.due), literal(flt.after.id))
        )
    stmt = (
        select(
            Dossier.id,
            Dossier.code,
            Dossier.procedure_code,
            Dossier.state,
            Dossier.received_at,
            Dossier.due_date,
            Dossier.apology_sent_at,
            Dossier.assigned_to,
        )
        .where(*conditions)
        .order_by(Dossier.due_date, Dossier.id)
        .limit(page_size + 1)
    )
    found = session.execute(stmt).all()
    more = len(found) > page_size
    found = found[:page_size]
    names = procedure_names(session, identity.commune_id)
    assignees = _user_names(session, {r.assigned_to for r in found if r.assigned_to})
    rows = []
    for r in found:
        state = DossierState(r.state)
        paused, settled = is_clock_paused(state), is_settled(state)
        deadline = None
        if not paused and not settled:
            deadline = calendar.deadline_status(r.due_date, now, closed=False)
        rows.append(
            QueueRow(
                code=r.code,
                procedure_code=r.procedure_code,
                procedure_name=names.get(
                    r.procedure_code, Message(r.procedure_code, r.procedure_code)
                ),
                state=state,
                state_label=state_label(state),
                received_at=_aware(r.received_at),
                due_date=r.due_date,
                deadline=deadline,
                paused=paused,
                apology_due=deadline is not None
                and r.apology_sent_at is None
                and calendar.apology_needed(r.due_date, now),
                apology_sent=r.apology_sent_at is not None,
                assignee=assignees.get(r.assigned_to) if r.assigned_to else None,
                mine=r.assigned_to == identity.user_id,
            )
        )
    offered = (
        names
        if identity.procedures is None
        else {c: n for c, n in names.items() if c in identity.procedures}
    )
    last = found[-1] if found else None
    return QueuePage(
        rows=rows,
        next_cursor=Cursor(last.due_date, last.id) if more and last is not None else None,
        procedures=offered,
        summary=_summary(session, identity, calendar, today),
    )


def _summary(
    session: Session, identity: StaffIdentity, calendar: WorkCalendar, today: date
) -> QueueSummary:
    """How many of the caller's running dossiers are overdue, due today, or need an apology."""
    running = [s for s in OPEN if not is_clock_paused(s) and not is_settled(s)]
    conditions = [*_scope_conditions(identity, QueueFilter()), Dossier.state.in_(running)]
    apology_day = calendar.add_working_days(today, 1)
    overdue, due_today, apology = session.execute(
        select(
            func.count().filter(Dossier.due_date < today),
            func.count().filter(Dossier.due_date == today),
            func.count().filter(Dossier.due_date <= apology_day, Dossier.apology_sent_at.is_(None)),
        ).where(*conditions, Dossier.due_date <= apology_day)
    ).one()
    return QueueSummary(int(overdue), int(due_today), int(apology))


# --- signatures of decisions ----------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).isoformat(timespec="seconds")


def decision_payload(
    *,
    commune_code: str,
    dossier_code: str,
    action: str,
    from_state: str | None,
    to_state: str,
    reason: str,
    actor: str,
    at: datetime,
    new_due_date: date | None = None,
) -> dict[str, object]:
    """What an official's decision signs: who (`actor`, a username), what, when, and why."""
    return {
        "kind": "decision",
        "commune": commune_code,
        "dossier": dossier_code,
        "action": action,
        "from": from_state,
        "to": to_state,
        "reason": reason,
        "actor": actor,
        "at": _iso(at),
        "new_due_date": new_due_date.isoformat() if new_due_date else None,
    }


def _signed_event(
    session: Session,
    *,
    commune: Commune,
    dossier: Dossier,
    identity: StaffIdentity,
    action: str,
    from_state: DossierState,
    to_state: DossierState,
    reason: str,
    keys: KeyMaterial,
    now: datetime,
    new_due_date: date | None = None,
) -> DossierEvent:
    payload = decision_payload(
        commune_code=commune.code,
        dossier_code=dossier.code,
        action=action,
        from_state=from_state.value,
        to_state=to_state.value,
        reason=reason,
        actor=identity.username,
        at=now,
        new_due_date=new_due_date,
    )
    signature = sign(payload, commune_signing_key(session, commune.id, keys.sealing))
    event = DossierEvent(
        commune_id=commune.id,
        dossier_id=dossier.id,
        at=now,
        action=action,
        from_state=from_state.value,
        to_state=to_state.value,
        actor_user_id=identity.user_id,
        public_note=reason,
        new_due_date=new_due_date,
        signature_key_id=signature.key_id,
        signature=signature.value,
        content_hash=hashlib.sha256(canonical_bytes(payload)).hexdigest(),
    )
    session.add(event)
    return event


# --- integrity ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Integrity:
    """Whether the dossier, its files and its history still match their signatures."""

    ok: bool
    problems: tuple[Message, ...] = ()


def _payload_ok(
    payload: Mapping[str, Any],
    key_id: str | None,
    value: str | None,
    content_hash: str | None,
    keys: Mapping[str, Any],
) -> bool:
    if key_id is None or value is None:
        return False
    if not verify(payload, Signature(key_id, value), keys):
        return False
    return (
        content_hash is None or hashlib.sha256(canonical_bytes(payload)).hexdigest() == content_hash
    )


_TAMPERED_DATA = Message(
    "Dữ liệu hồ sơ không khớp với chữ ký số lúc tiếp nhận: nội dung đã bị sửa hoặc thay thế.",
    "The dossier's data does not match the digital signature made at receipt: it was edited or "
    "replaced.",
)
_TAMPERED_FILES = Message(
    "Danh sách tệp đính kèm không khớp với hồ sơ đã ký: có tệp bị thêm, bớt hoặc thay.",
    "The attachments do not match the signed dossier: a file was added, removed or replaced.",
)
_TAMPERED_HISTORY = Message(
    "Lịch sử xử lý có bước không có chữ ký hợp lệ: một quyết định đã bị sửa hoặc chèn thêm.",
    "A step of the history has no valid signature: a decision was edited or inserted.",
)
_TAMPERED_STATE = Message(
    "Tình trạng của hồ sơ không khớp với lịch sử xử lý đã ký: tình trạng đã bị sửa trực tiếp.",
    "The dossier's state does not match its signed history: the state was edited directly.",
)
_TAMPERED_SUPPLEMENT = Message(
    "Một lần bổ sung của người dân không khớp với chữ ký số: nội dung bổ sung đã bị sửa.",
    "A supplement from the citizen does not match its signature: it was edited.",
)


@dataclass
class _Loaded:
    """Everything a dossier page or a decision needs, read once."""

    dossier: Dossier
    commune: Commune
    payload: dict[str, Any] | None
    events: list[DossierEvent]
    supplements: dict[int, dict[str, Any] | None]  # event id → its unsealed payload
    attachments: list[Attachment]
    usernames: dict[int, str]
    integrity: Integrity


def _load(session: Session, dossier: Dossier, keys: KeyMaterial) -> _Loaded:
    commune = session.get(Commune, dossier.commune_id)
    assert commune is not None  # noqa: S101 - foreign key
    keyring = keys.sealing
    verify_keys = commune_verify_keys(session, commune.id)
    problems: list[Message] = []

    payload: dict[str, Any] | None
    try:
        payload = unseal_json(dossier.sealed_data, keyring, context=dossier_context(dossier))
    except SealError:
        payload = None
    if (
        payload is None
        or not _payload_ok(
            payload,
            dossier.signature_key_id,
            dossier.signature,
            dossier.content_hash,
            verify_keys,
        )
        or payload.get("code", dossier.code) != dossier.code  # signed in before 2026-12 only
        or payload.get("commune") != commune.code
        or payload.get("procedure") != dossier.procedure_code
        or payload.get("received_at") != _iso(dossier.received_at)
    ):
        problems.append(_TAMPERED_DATA)

    events = list(
        session.scalars(
            select(DossierEvent)
            .where(DossierEvent.dossier_id == dossier.id)
            .order_by(DossierEvent.at, DossierEvent.id)
        )
    )
    actor_ids = {e.actor_user_id for e in events if e.actor_user_id is not None}
    users = (
        {
            row.id: row.username
            for row in session.execute(
                select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(actor_ids))
            )
        }
        if actor_ids
        else {}
    )

    supplements: dict[int, dict[str, Any] | None] = {}
    expected_files: Counter[tuple[str, str]] = Counter()
    if payload is not None:
        for f in payload.get("files", []):
            expected_files[(str(f.get("field")), str(f.get("sha256")))] += 1
    history_ok, previous_state = True, None
    for event in events:
        if event.action == Action.SUBMIT_SUPPLEMENT.value:
            try:
                sup = unseal_json(
                    event.sealed_data or "", keyring, context=supplement_context(dossier, event)
                )
            except SealError:
                sup = None
            supplements[event.id] = sup
            if (
                sup is None
                or not _payload_ok(
                    sup, event.signature_key_id, event.signature, event.content_hash, verify_keys
                )
                or sup.get("dossier") != dossier.code
            ):
                problems.append(_TAMPERED_SUPPLEMENT)
            elif sup is not None:
                for f in sup.get("files", []):
                    expected_files[(str(f.get("field")), str(f.get("sha256")))] += 1
        elif event.action not in CITIZEN_ACTIONS:
            actor = users.get(event.actor_user_id) if event.actor_user_id is not None else None
            decision = decision_payload(
                commune_code=commune.code,
                dossier_code=dossier.code,
                action=event.action,
                from_state=event.from_state,
                to_state=event.to_state,
                reason=event.public_note,
                actor=actor or "",
                at=event.at,
                new_due_date=event.new_due_date,
            )
            if actor is None or not _payload_ok(
                decision,
                event.signature_key_id,
                event.signature,
                event.content_hash,
                verify_keys,
            ):
                history_ok = False
        if previous_state is not None and event.from_state not in (None, previous_state):
            history_ok = False
        previous_state = event.to_state
    if not history_ok:
        problems.append(_TAMPERED_HISTORY)
    if previous_state is not None and previous_state != dossier.state.value:
        problems.append(_TAMPERED_STATE)

    attachments = list(
        session.scalars(
            select(Attachment)
            .where(Attachment.dossier_id == dossier.id)
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
    stored_files = Counter((a.field_name, a.sha256) for a in attachments if a.purged_at is None)
    if (
        payload is not None
        and stored_files != expected_files
        and not any(a.purged_at for a in attachments)
    ):
        problems.append(_TAMPERED_FILES)
    return _Loaded(
        dossier=dossier,
        commune=commune,
        payload=payload,
        events=events,
        supplements=supplements,
        attachments=attachments,
        usernames=users,
        integrity=Integrity(not problems, tuple(dict.fromkeys(problems))),
    )


# --- the dossier page -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataItem:
    name: str
    label: Message
    value: str


@dataclass(frozen=True)
class AttachmentItem:
    public_id: str
    field_label: Message
    filename: str
    content_type: str
    size: int
    from_supplement: bool
    purged: bool


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    label: Message
    from_state: Message | None
    to_state: Message
    actor: str | None
    note: str
    new_due_date: date | None
    signed: bool


@dataclass(frozen=True)
class SupplementItem:
    at: datetime
    note: str
    data: list[DataItem]


@dataclass(frozen=True)
class ActionOption:
    action: Action
    label: Message
    needs_reason: bool
    reason_hint: Message | None


@dataclass(frozen=True)
class Candidate:
    user_id: int
    name: str


@dataclass(frozen=True)
class DossierPage:
    dossier: Dossier
    commune: Commune
    procedure_name: Message
    state_label: Message
    deadline: DeadlineStatus | None
    paused: bool
    assignee: str | None
    assigned_to_me: bool
    data: list[DataItem]
    supplements: list[SupplementItem]
    attachments: list[AttachmentItem]
    history: list[HistoryItem]
    integrity: Integrity
    actions: list[ActionOption]
    can_apologise: bool
    apology_due: bool
    can_reassign: bool
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def version(self) -> int:
        return self.dossier.row_version

    @property
    def received_at(self) -> datetime:
        return _aware(self.dossier.received_at)


def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "✔" if value else "—"
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value)
    return str(value)


def _local_date(stored: str) -> str:
    """A date as Vietnamese papers write it (dd/mm/yyyy); stored as ISO in the payload."""
    try:
        return format_date(date.fromisoformat(stored))
    except ValueError:
        return stored


def _local_phone(stored: str) -> str:
    """A Vietnamese mobile number as people say it (0912 345 678); stored in E.164."""
    if stored.startswith("+84") and len(stored) == 12 and stored[1:].isdigit():
        national = "0" + stored[3:]
        return f"{national[:4]} {national[4:7]} {national[7:]}"
    return stored


def _data_items(defn: ProcedureDefinition, data: Mapping[str, Any]) -> list[DataItem]:
    items = []
    seen = set()
    for fd in defn.fields:
        if fd.kind == FieldKind.FILE or fd.name not in data:
            continue
        value = data[fd.name]
        if value in (None, "", False, []):
            continue
        seen.add(fd.name)
        shown = _display(value)
        if fd.kind == FieldKind.DATE and isinstance(value, str):
            shown = _local_date(value)
        elif fd.kind == FieldKind.PHONE and isinstance(value, str):
            shown = _local_phone(value)
        if fd.options:
            labels = {o.value: o.label for o in fd.options}
            if isinstance(value, str) and value in labels:
                shown = labels[value].vi
        items.append(DataItem(fd.name, Message(fd.label.vi, fd.label.en), shown))
    for name, value in data.items():
        if name not in seen and value not in (None, "", False, []):
            if defn.get_field(name) is None:
                items.append(DataItem(name, Message(name, name), _display(value)))
    return items


def _field_label(defn: ProcedureDefinition, name: str) -> Message:
    fd = defn.get_field(name)
    return Message(fd.label.vi, fd.label.en) if fd else Message(name, name)


def _previous_requests(events: list[DossierEvent]) -> int:
    return sum(1 for e in events if e.action == Action.REQUEST_SUPPLEMENT.value)


def _can_act(identity: StaffIdentity, dossier: Dossier, action: Action) -> bool:
    """Who may take `action` on this dossier (its state aside): officials of the procedure, and
    for anything past taking it, only the one it is assigned to."""
    if not identity.decides:
        return False
    mine = dossier.assigned_to == identity.user_id
    free = dossier.assigned_to is None
    if action == Action.RETURN_RESULT:
        return True  # whoever is at the desk when the citizen comes
    if action == Action.CLAIM:
        return free or mine
    if dossier.state == S.RECEIVED:
        return free or mine  # refuse or ask for more straight from the inbox
    return mine


# The order of the buttons on the dossier page: the usual way forward first, refusal last.
_ACTION_ORDER = (
    Action.CLAIM,
    Action.APPROVE,
    Action.RETURN_RESULT,
    Action.REQUEST_SUPPLEMENT,
    Action.REFUSE,
)


def _actions(identity: StaffIdentity, dossier: Dossier) -> list[ActionOption]:
    out = []
    possible = allowed_actions(dossier.state, Actor.OFFICIAL)
    ordered = [a for a in _ACTION_ORDER if a in possible] + [
        a for a in possible if a not in _ACTION_ORDER
    ]
    for action in ordered:
        if not _can_act(identity, dossier, action):
            continue
        rule = ACTIONS[action]
        out.append(ActionOption(action, rule.label, rule.needs_reason, rule.missing_reason))
    return out


def _can_apologise(identity: StaffIdentity, dossier: Dossier) -> bool:
    if dossier.apology_sent_at is not None or not is_open(dossier.state):
        return False
    if is_settled(dossier.state):
        return False
    return identity.role == Role.LEADER or (
        identity.decides and dossier.assigned_to == identity.user_id
    )


def reassign_candidates(session: Session, commune_id: int, procedure_code: str) -> list[Candidate]:
    """Active officials of the commune who handle this procedure."""
    rows = session.execute(
        select(StaffUser.id, StaffUser.display_name, StaffUser.username)
        .join(StaffProcedure, StaffProcedure.user_id == StaffUser.id)
        .where(
            StaffUser.commune_id == commune_id,
            StaffUser.role == Role.OFFICIAL.value,
            StaffUser.active.is_(True),
            StaffProcedure.code == procedure_code,
        )
        .order_by(StaffUser.display_name, StaffUser.username)
    )
    return [Candidate(r.id, f"{r.display_name or r.username} ({r.username})") for r in rows]


def dossier_page(
    session: Session,
    identity: StaffIdentity,
    code: str,
    *,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
) -> DossierPage:
    """Everything the dossier page shows, decrypted, with its signatures checked."""
    dossier = dossier_in_scope(session, identity, code)
    loaded = _load(session, dossier, keys)
    defn = definition_by_version_id(session, dossier.procedure_version_id)
    data = _data_items(defn, (loaded.payload or {}).get("data", {}))
    supplements = []
    for event in loaded.events:
        if event.id in loaded.supplements:
            sup = loaded.supplements[event.id] or {}
            supplements.append(
                SupplementItem(
                    at=_aware(event.at),
                    note=str(sup.get("note", "")),
                    data=_data_items(defn, sup.get("data", {})),
                )
            )
    original = {
        (str(f.get("field")), str(f.get("sha256"))) for f in (loaded.payload or {}).get("files", [])
    }
    attachments = []
    for att in loaded.attachments:
        try:
            name = unseal(
                att.name_sealed, keys.sealing, context=f"filename:{att.storage_name}".encode()
            ).decode()
        except (SealError, UnicodeDecodeError):
            name = "?"
        attachments.append(
            AttachmentItem(
                public_id=att.public_id,
                field_label=_field_label(defn, att.field_name),
                filename=name,
                content_type=att.content_type,
                size=att.size,
                from_supplement=(att.field_name, att.sha256) not in original,
                purged=att.purged_at is not None,
            )
        )
    people = _user_names(
        session,
        {e.actor_user_id for e in loaded.events if e.actor_user_id}
        | ({dossier.assigned_to} if dossier.assigned_to else set()),
    )
    history = []
    for event in loaded.events:
        if event.action == "submit":
            label = Message("Nộp hồ sơ", "Dossier filed")
        elif event.action == APOLOGY:
            label = Message("Thư xin lỗi, hẹn lại ngày trả", "Apology and new return date")
        else:
            try:
                label = action_label(Action(event.action))
            except ValueError:
                label = Message(event.action, event.action)
        history.append(
            HistoryItem(
                at=_aware(event.at),
                label=label,
                from_state=state_label(DossierState(event.from_state))
                if event.from_state
                else None,
                to_state=state_label(DossierState(event.to_state)),
                actor=people.get(event.actor_user_id) if event.actor_user_id else None,
                note=event.public_note,
                new_due_date=event.new_due_date,
                signed=event.signature is not None,
            )
        )
    state = dossier.state
    paused, settled = is_clock_paused(state), is_settled(state)
    deadline = None if paused or settled else calendar.deadline_status(dossier.due_date, now, False)
    can_apologise = _can_apologise(identity, dossier)
    can_reassign = identity.role == Role.LEADER and is_open(state)
    names = procedure_names(session, dossier.commune_id)
    return DossierPage(
        dossier=dossier,
        commune=loaded.commune,
        procedure_name=names.get(dossier.procedure_code, Message(defn.name.vi, defn.name.en)),
        state_label=state_label(state),
        deadline=deadline,
        paused=paused,
        assignee=people.get(dossier.assigned_to) if dossier.assigned_to else None,
        assigned_to_me=dossier.assigned_to == identity.user_id,
        data=data,
        supplements=supplements,
        attachments=attachments,
        history=history,
        integrity=loaded.integrity,
        actions=_actions(identity, dossier),
        can_apologise=can_apologise,
        apology_due=can_apologise
        and deadline is not None
        and calendar.apology_needed(dossier.due_date, now),
        can_reassign=can_reassign,
        candidates=reassign_candidates(session, dossier.commune_id, dossier.procedure_code)
        if can_reassign
        else [],
    )


def open_dossier(
    db: Sessions,
    identity: StaffIdentity,
    code: str,
    *,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
) -> DossierPage:
    """The dossier page, read in a read transaction; the view is then audited in a short write
    transaction of its own (the page is built without holding the write lock)."""
    with db.reading() as s:
        page = dossier_page(s, identity, code, keys=keys, calendar=calendar, now=now)
    with db.writing() as s:
        record(
            s,
            actor=identity.actor,
            action="dossier.view",
            target=f"dossier:{page.dossier.id}",
            commune_id=page.dossier.commune_id,
            detail={"code": page.dossier.code, "intact": page.integrity.ok},
            now=now,
        )
    return page


# --- decisions ------------------------------------------------------------------------------------


def _check_version(dossier: Dossier, expected_version: int | None) -> None:
    if expected_version is not None and dossier.row_version != expected_version:
        raise Conflict(_CHANGED)


def _flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:
        # Another transaction changed the row between our read and our write (PostgreSQL; on
        # SQLite the write lock taken at BEGIN makes that impossible).
        raise Conflict(_CHANGED) from None


_NOT_YOURS = Message(
    "Hồ sơ này đã được giao cho cán bộ khác xử lý. Nếu cần đổi người, xin báo lãnh đạo xã.",
    "This dossier is assigned to another official. To change that, ask the commune leader.",
)
_ONLY_OFFICIALS = Message(
    "Chỉ công chức được giao thủ tục này mới xử lý được hồ sơ.",
    "Only an official assigned to this procedure can process the dossier.",
)
_NO_APPROVAL_TAMPERED = Message(
    "Không thể phê duyệt: hồ sơ có dấu hiệu bị sửa đổi sau khi tiếp nhận (xem cảnh báo ở đầu "
    "trang). Hãy báo ngay cho lãnh đạo và quản trị viên của xã.",
    "Cannot approve: the dossier shows signs of being altered after receipt (see the warning at "
    "the top). Tell the commune leader and administrator at once.",
)


def act(
    session: Session,
    identity: StaffIdentity,
    code: str,
    action: str,
    *,
    expected_version: int | None,
    reason: str | None,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
) -> DossierEvent:
    """Take `action` on a dossier: the one place an official changes a dossier's state.

    Raises OutOfScope (not theirs to see), ActionRefused (not allowed, or the reason is missing:
    `field == "reason"`) or Conflict (someone else acted first). The caller commits.
    """
    now = _utc(now)
    dossier = dossier_in_scope(session, identity, code)
    try:
        chosen = Action(action)
    except ValueError:
        raise ActionRefused(Message("Thao tác không hợp lệ.", "Unknown action.")) from None
    if ACTIONS[chosen].by != Actor.OFFICIAL or not identity.decides:
        raise ActionRefused(_ONLY_OFFICIALS)
    _check_version(dossier, expected_version)
    if not _can_act(identity, dossier, chosen):
        raise Conflict(_NOT_YOURS)
    note = _clean_text(reason)
    loaded = _load(session, dossier, keys)
    before = dossier.state
    try:
        after = transition(
            before,
            chosen,
            by=Actor.OFFICIAL,
            reason=note,
            previous_supplement_requests=_previous_requests(loaded.events),
        )
    except TransitionError as exc:
        missing = ACTIONS[chosen].missing_reason
        if missing is not None and exc.message == missing:
            raise ActionRefused(exc.message, field="reason") from None
        raise ActionRefused(exc.message) from None
    if chosen == Action.APPROVE and not loaded.integrity.ok:
        raise ActionRefused(_NO_APPROVAL_TAMPERED)

    if dossier.assigned_to is None and chosen != Action.RETURN_RESULT:
        dossier.assigned_to = identity.user_id
    if chosen == Action.REQUEST_SUPPLEMENT:
        dossier.paused_since = now  # the clock stops until the citizen answers
    elif dossier.paused_since is not None:
        resume_clock(dossier, calendar, now)  # refused while waiting: the wait still did not count
    if after in (S.APPROVED, S.REFUSED):
        dossier.closed_at = now
    dossier.state = after
    _flush_or_conflict(session)

    commune = loaded.commune
    event = _signed_event(
        session,
        commune=commune,
        dossier=dossier,
        identity=identity,
        action=chosen.value,
        from_state=before,
        to_state=after,
        reason=note,
        keys=keys,
        now=now,
    )
    if chosen == Action.APPROVE and dossier.poster_id is not None:
        count_poster(
            session, dossier.poster_id, dossier.commune_id, calendar.local_date(now), "approved"
        )
    session.flush()
    record(
        session,
        actor=identity.actor,
        action=f"dossier.{chosen.value}",
        target=f"dossier:{dossier.id}",
        commune_id=dossier.commune_id,
        detail={"code": dossier.code, "from": before.value, "to": after.value},
        now=now,
    )
    return event


def parse_day(text: str) -> date | None:
    """A date typed as 31/12/2026 (how Vietnamese write it) or 2026-12-31 (a date input)."""
    text = text.strip()
    try:
        if "/" in text:
            day, month, year = (int(p) for p in text.split("/"))
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        return None


def apologise(
    session: Session,
    identity: StaffIdentity,
    code: str,
    *,
    expected_version: int | None,
    new_due: str,
    reason: str,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    now: datetime,
) -> DossierEvent:
    """Send the apology with a new return date: once per dossier, signed, shown to the citizen."""
    now = _utc(now)
    dossier = dossier_in_scope(session, identity, code)
    _check_version(dossier, expected_version)
    if dossier.apology_sent_at is not None:
        raise ActionRefused(
            Message(
                "Hồ sơ này đã có thư xin lỗi và hẹn lại ngày trả; theo quy định chỉ gửi một lần.",
                "This dossier already had its apology and new date; it is sent only once.",
            )
        )
    if not _can_apologise(identity, dossier):
        raise ActionRefused(
            Message(
                "Chỉ cán bộ đang xử lý hồ sơ hoặc lãnh đạo xã mới gửi thư xin lỗi, và chỉ khi hồ "
                "sơ chưa giải quyết xong.",
                "Only the official handling the dossier or a leader can send the apology, and "
                "only while the dossier is not settled.",
            )
        )
    errors: dict[str, Message] = {}
    day = parse_day(new_due)
    today = calendar.local_date(now)
    if day is None:
        errors["new_due"] = Message(
            "Xin nhập ngày hẹn mới theo dạng ngày/tháng/năm, ví dụ 25/03/2026.",
            "Enter the new date as day/month/year, e.g. 25/03/2026.",
        )
    elif day <= max(dossier.due_date, today):
        errors["new_due"] = Message(
            f"Ngày hẹn mới phải sau ngày hẹn hiện tại ({dossier.due_date:%d/%m/%Y}) và sau "
            "hôm nay.",
            f"The new date must be after the current due date ({dossier.due_date:%d/%m/%Y}) and "
            "after today.",
        )
    elif not calendar.is_working_day(day):
        errors["new_due"] = Message(
            f"Ngày {day:%d/%m/%Y} không phải ngày làm việc. Xin chọn một ngày làm việc.",
            f"{day:%d/%m/%Y} is not a working day. Please choose a working day.",
        )
    note = _clean_text(reason)
    if not note:
        errors["reason"] = Message(
            "Xin ghi lý do chậm trả kết quả để người dân được biết.",
            "Write why the result will be late, so the citizen knows.",
        )
    if errors:
        field_name, message = next(iter(errors.items()))
        raise ActionRefused(message, field=field_name, errors=errors)
    assert day is not None  # noqa: S101 - checked above
    loaded_commune = session.get(Commune, dossier.commune_id)
    assert loaded_commune is not None  # noqa: S101 - foreign key
    dossier.due_date = day
    dossier.apology_sent_at = now
    _flush_or_conflict(session)
    event = _signed_event(
        session,
        commune=loaded_commune,
        dossier=dossier,
        identity=identity,
        action=APOLOGY,
        from_state=dossier.state,
        to_state=dossier.state,
        reason=note,
        keys=keys,
        now=now,
        new_due_date=day,
    )
    session.flush()
    record(
        session,
        actor=identity.actor,
        action="dossier.apology",
        target=f"dossier:{dossier.id}",
        commune_id=dossier.commune_id,
        detail={"code": dossier.code, "new_due_date": day.isoformat()},
        now=now,
    )
    return event


def reassign(
    session: Session,
    identity: StaffIdentity,
    code: str,
    *,
    expected_version: int | None,
    to_user_id: int,
    now: datetime,
) -> Dossier:
    """A leader hands an open dossier to another official of the procedure."""
    dossier = dossier_in_scope(session, identity, code)
    if identity.role != Role.LEADER:
        raise ActionRefused(
            Message("Chỉ lãnh đạo xã mới giao lại hồ sơ.", "Only a commune leader can reassign.")
        )
    _check_version(dossier, expected_version)
    if not is_open(dossier.state):
        raise ActionRefused(
            Message(
                "Hồ sơ đã kết thúc, không cần giao lại.",
                "The dossier is closed: nothing to reassign.",
            )
        )
    candidates = {
        c.user_id for c in reassign_candidates(session, dossier.commune_id, dossier.procedure_code)
    }
    if to_user_id not in candidates:
        raise ActionRefused(
            Message(
                "Xin chọn một công chức đang làm việc và được giao thủ tục này.",
                "Choose an active official assigned to this procedure.",
            ),
            field="to_user",
        )
    before = dossier.assigned_to
    dossier.assigned_to = to_user_id
    _flush_or_conflict(session)
    record(
        session,
        actor=identity.actor,
        action="dossier.reassign",
        target=f"dossier:{dossier.id}",
        commune_id=dossier.commune_id,
        detail={"code": dossier.code, "from_user": before, "to_user": to_user_id},
        now=now,
    )
    return dossier


# --- attachments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    data: bytes
    intact: bool  # the unsealed bytes still have the SHA-256 recorded (and signed) at upload


def open_attachment(
    db: Sessions,
    identity: StaffIdentity,
    code: str,
    public_id: str,
    *,
    keys: KeyMaterial,
    store: FileStore,
    now: datetime,
) -> AttachmentFile:
    """An attachment, unsealed, for download; the download is audited."""
    with db.reading() as s:
        dossier = dossier_in_scope(s, identity, code)
        att = s.scalar(
            select(Attachment).where(
                Attachment.dossier_id == dossier.id, Attachment.public_id == public_id[:32]
            )
        )
        if att is None or att.purged_at is not None:
            raise OutOfScope(f"attachment:{public_id[:32]}", "not_found")
        dossier_id, commune_id, dossier_code = dossier.id, dossier.commune_id, dossier.code
    try:
        data = unseal_file_bytes(
            store.read(att.storage_name),
            keys.sealing,
            context=f"file:{att.commune_id}:{att.storage_name}".encode(),
        )
        name = unseal(
            att.name_sealed, keys.sealing, context=f"filename:{att.storage_name}".encode()
        ).decode()
        intact = hashlib.sha256(data).hexdigest() == att.sha256
    except (SealError, OSError, UnicodeDecodeError):
        data, name, intact = b"", "", False
    with db.writing() as s:
        record(
            s,
            actor=identity.actor,
            action="attachment.download",
            target=f"attachment:{att.id}",
            commune_id=commune_id,
            detail={"dossier": dossier_id, "code": dossier_code, "intact": intact},
            now=now,
        )
    return AttachmentFile(name, att.content_type, data, intact)
