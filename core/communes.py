"""Administrative units (đơn vị hành chính cấp xã): the communes an install serves.

Since 1 July 2025 Vietnam has two levels of local government: 34 provinces and 3,321 commune-level
units (xã, phường, đặc khu), with 2-digit province and 5-digit commune codes (QĐ 19/2025/QĐ-TTg).
The reform merged communes, renamed them and changed their codes, and it will not be the last. The
province admin (quản trị tỉnh) keeps the install's list in step: by hand (name, code, province,
slug, public host, collecting account), or by importing the official list as CSV.

History is never lost. A commune is never deleted and its dossiers never move: they keep their
`commune_id`, and with it their code, signatures and history. A unit that continues under a new
name or code is the same row, renamed or renumbered. A unit merged into another becomes inactive
with `successor_id` pointing at the one that took over; its posters then show a notice sending
citizens there (kiosk poster landing, reason "moved"), and communes that had been merged into it
earlier are pointed at the new successor too, so a notice never sends anyone to a closed office.

The CSV import is planned first (`plan_import`, plain values in and out) and shown to the province
admin, then applied (`apply_plan`) only if the install has not changed since: the plan carries a
fingerprint of what it was computed from. Every change is written to the audit log.

Like core.services these take a SQLAlchemy `session` and never commit: the caller owns the
transaction (`with db.writing() as s:`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import Role
from core.audit_log import record as audit
from core.install import ensure_signing_key
from core.keys import KeyMaterial
from core.payments import collecting_account, set_collecting_account
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message
from core.vietqr import BANKS, check_collecting_account
from storage.models import Commune, CommuneProcedure, Dossier, ProcedureVersion

COMMUNE_CODE = re.compile(r"\d{5}")
PROVINCE_CODE = re.compile(r"\d{2}")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
HOST = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
MAX_CSV_BYTES = 1024 * 1024  # the whole country's list is about 300 KB
MAX_ROWS = 5000  # 3,321 units today
FormData = Mapping[str, Sequence[str]]


class CommuneFormError(Exception):
    """What was typed cannot be saved; `errors` maps each input to what to fix."""

    def __init__(self, errors: dict[str, Message]) -> None:
        super().__init__(", ".join(f"{k}: {m.en}" for k, m in errors.items()))
        self.errors = errors


def may_manage(staff: StaffIdentity) -> bool:
    """Only the province admin manages the communes of the install."""
    return staff.role == Role.PROVINCE_ADMIN


def _guard(staff: StaffIdentity) -> None:
    if not may_manage(staff):
        raise OutOfScope("communes", "role")


def commune_in_scope(session: Session, staff: StaffIdentity, commune_id: int) -> Commune:
    _guard(staff)
    commune = session.get(Commune, commune_id)
    if commune is None:
        raise OutOfScope(f"commune:{commune_id}", "not_found")
    return commune


# --- The list -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommuneItem:
    id: int
    code: str
    name: str
    province: str
    slug: str
    public_host: str
    active: bool
    successor: str  # the name of the commune that took over, for an inactive one
    dossiers: int
    account: bool  # a collecting account is set


def list_communes(session: Session, staff: StaffIdentity) -> list[CommuneItem]:
    _guard(staff)
    counts = {
        commune_id: n
        for commune_id, n in session.execute(
            select(Dossier.commune_id, func.count()).group_by(Dossier.commune_id)
        ).tuples()
    }
    rows = list(session.scalars(select(Commune).order_by(Commune.province_code, Commune.code)))
    names = {c.id: c.name for c in rows}
    return [
        CommuneItem(
            id=c.id,
            code=c.code,
            name=c.name,
            province=f"{c.province_code} {c.province_name}",
            slug=c.slug,
            public_host=c.public_host or "",
            active=c.active,
            successor=names.get(c.successor_id or 0, ""),
            dossiers=counts.get(c.id, 0),
            account=collecting_account(c) is not None,
        )
        for c in rows
    ]


def successor_choices(session: Session, commune: Commune) -> list[tuple[int, str]]:
    """The active communes that could take over from `commune`."""
    return [
        (c.id, f"{c.name} ({c.code})")
        for c in session.scalars(
            select(Commune)
            .where(Commune.active.is_(True), Commune.id != commune.id)
            .order_by(Commune.name)
        )
    ]


# --- One commune, by hand -------------------------------------------------------------------------


_TEXT_LIMITS = {
    "name": 120,
    "province_name": 120,
    "address": 300,
    "phone": 32,
    "office_hours": 300,
}


def commune_form(commune: Commune | None) -> dict[str, list[str]]:
    """The commune's page as it is stored (empty for a new commune)."""
    if commune is None:
        return {}
    account = collecting_account(commune)
    return {
        "code": [commune.code],
        "name": [commune.name],
        "province_code": [commune.province_code],
        "province_name": [commune.province_name],
        "slug": [commune.slug],
        "public_host": [commune.public_host or ""],
        "address": [commune.address],
        "phone": [commune.phone],
        "office_hours": [commune.office_hours],
        "bank_bin": [account.bin if account else ""],
        "bank_account": [account.account if account else ""],
        "bank_account_name": [account.name if account else ""],
    }


def _first(form: FormData, key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""


@dataclass(frozen=True)
class CommuneValues:
    code: str
    name: str
    province_code: str
    province_name: str
    slug: str
    public_host: str | None
    address: str
    phone: str
    office_hours: str
    account_typed: bool
    bank_bin: str
    bank_account: str
    bank_account_name: str


def read_commune_form(
    session: Session, form: FormData, *, editing: Commune | None
) -> CommuneValues:
    """What was typed on a commune's page, checked; CommuneFormError lists every problem."""
    errors: dict[str, Message] = {}
    text = {k: " ".join(_first(form, k).split()) for k in _TEXT_LIMITS}
    code = _first(form, "code").strip()
    province_code = _first(form, "province_code").strip()
    slug = _first(form, "slug").strip().lower()
    host = _first(form, "public_host").strip().lower().rstrip(".") or None
    if not COMMUNE_CODE.fullmatch(code):
        errors["code"] = Message(
            "Mã xã gồm đúng 5 chữ số theo Quyết định 19/2025/QĐ-TTg, ví dụ 27517.",
            "A commune code is exactly 5 digits (Decision 19/2025/QD-TTg), e.g. 27517.",
        )
    if not text["name"]:
        errors["name"] = Message(
            "Xin nhập tên đơn vị, ví dụ Xã Nhuận Đức.", "Enter the unit's name, e.g. Xã Nhuận Đức."
        )
    if not PROVINCE_CODE.fullmatch(province_code):
        errors["province_code"] = Message(
            "Mã tỉnh gồm đúng 2 chữ số, ví dụ 79.", "A province code is exactly 2 digits, e.g. 79."
        )
    if not text["province_name"]:
        errors["province_name"] = Message(
            "Xin nhập tên tỉnh, thành phố.", "Enter the province's name."
        )
    if not SLUG.fullmatch(slug) or len(slug) > 64:
        errors["slug"] = Message(
            "Đường dẫn chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang, ví dụ nhuan-duc.",
            "The address part holds lower-case letters, digits and dashes, e.g. nhuan-duc.",
        )
    if host is not None and not HOST.fullmatch(host):
        errors["public_host"] = Message(
            "Tên miền không hợp lệ, ví dụ dichvucong.nhuanduc.hochiminhcity.gov.vn (để trống "
            "nếu dùng địa chỉ chung).",
            "Not a valid host name, e.g. dichvucong.nhuanduc.hochiminhcity.gov.vn (leave empty "
            "to use the shared address).",
        )
    for key, limit in _TEXT_LIMITS.items():
        if len(text[key]) > limit:
            errors[key] = Message(
                f"Tối đa {limit} ký tự (đang có {len(text[key])}).",
                f"At most {limit} characters (it has {len(text[key])}).",
            )
    mine = editing.id if editing is not None else 0
    for key, column, value in (
        ("code", Commune.code, code),
        ("slug", Commune.slug, slug),
    ):
        if key in errors:
            continue
        other = session.scalar(select(Commune).where(column == value, Commune.id != mine))
        if other is not None:
            errors[key] = Message(
                f"Đã dùng cho {other.name} ({other.code}).",
                f"Already used by {other.name} ({other.code}).",
            )
    if host is not None and "public_host" not in errors:
        other = session.scalar(
            select(Commune).where(Commune.public_host == host, Commune.id != mine)
        )
        if other is not None:
            errors["public_host"] = Message(
                f"Tên miền này đã dùng cho {other.name}.", f"This host is used by {other.name}."
            )
    bank = {k: _first(form, k) for k in ("bank_bin", "bank_account", "bank_account_name")}
    typed = any(v.strip() for v in bank.values())
    if typed:
        _, bank_errors = check_collecting_account(
            bank["bank_bin"], bank["bank_account"], bank["bank_account_name"]
        )
        for short, message in bank_errors.items():
            errors[f"bank_{short}" if short != "name" else "bank_account_name"] = message
        if not _first(form, "account_confirmed"):
            errors["account_confirmed"] = Message(
                "Xác nhận đây là tài khoản chuyên thu của UBND xã, không phải tài khoản cá nhân.",
                "Confirm this is the commune's collecting account, not a personal one.",
            )
    if errors:
        raise CommuneFormError(errors)
    return CommuneValues(
        code=code,
        name=text["name"],
        province_code=province_code,
        province_name=text["province_name"],
        slug=slug,
        public_host=host,
        address=text["address"],
        phone=text["phone"],
        office_hours=text["office_hours"],
        account_typed=typed,
        **bank,
    )


def _apply_account(
    session: Session, staff: StaffIdentity, commune: Commune, values: CommuneValues, now: datetime
) -> None:
    if values.account_typed:
        account, _ = check_collecting_account(
            values.bank_bin, values.bank_account, values.bank_account_name
        )
    else:
        account = None
    set_collecting_account(session, commune=commune, account=account, actor=staff.actor, now=now)


def create_commune(
    session: Session,
    staff: StaffIdentity,
    values: CommuneValues,
    *,
    keys: KeyMaterial,
    now: datetime,
) -> Commune:
    """A new commune with its signing key and every shared procedure, none offered yet: its admin
    sets fees and officials, then offers them."""
    _guard(staff)
    commune = Commune(
        code=values.code,
        slug=values.slug,
        name=values.name,
        province_code=values.province_code,
        province_name=values.province_name,
        public_host=values.public_host,
        address=values.address,
        phone=values.phone,
        office_hours=values.office_hours,
        active=True,
        created_at=now,
    )
    session.add(commune)
    session.flush()
    _set_up(session, commune, keys=keys, now=now)
    audit(
        session,
        actor=staff.actor,
        action="commune.added",
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={"code": commune.code, "name": commune.name, "province": commune.province_code},
        now=now,
    )
    _apply_account(session, staff, commune, values, now)
    return commune


def _set_up(session: Session, commune: Commune, *, keys: KeyMaterial, now: datetime) -> None:
    ensure_signing_key(session, commune, keys, now=now)
    newest: dict[str, ProcedureVersion] = {}
    for version in session.scalars(
        select(ProcedureVersion)
        .where(ProcedureVersion.commune_id.is_(None))
        .order_by(ProcedureVersion.id)
    ):
        newest[version.code] = version
    for position, (code, version) in enumerate(sorted(newest.items())):
        session.add(
            CommuneProcedure(
                commune_id=commune.id,
                code=code,
                enabled=False,
                position=position,
                version_id=version.id,
                updated_at=now,
            )
        )
    session.flush()


def update_commune(
    session: Session,
    staff: StaffIdentity,
    commune_id: int,
    values: CommuneValues,
    *,
    now: datetime,
) -> bool:
    """Save a commune's page, each change audited; True when anything changed."""
    commune = commune_in_scope(session, staff, commune_id)
    detail: dict[str, str | int | bool | None] = {}
    for key in (
        "code",
        "name",
        "province_code",
        "province_name",
        "slug",
        "public_host",
        "address",
        "phone",
        "office_hours",
    ):
        new = getattr(values, key)
        old = getattr(commune, key)
        if new != old:
            if key in ("code", "name", "province_code", "slug", "public_host"):
                detail[f"{key}_before"] = old
                detail[key] = new
            else:
                detail[f"{key}_changed"] = True
            setattr(commune, key, new)
    if detail:
        session.flush()
        audit(
            session,
            actor=staff.actor,
            action="commune.updated",
            target=f"commune:{commune.code}",
            commune_id=commune.id,
            detail=detail,
            now=now,
        )
    before = collecting_account(commune)
    _apply_account(session, staff, commune, values, now)
    return bool(detail) or before != collecting_account(commune)


def deactivate(
    session: Session,
    staff: StaffIdentity,
    commune_id: int,
    *,
    successor_id: int,
    now: datetime,
) -> Commune:
    """The commune stops (merged into `successor_id`): its dossiers stay with it, its posters send
    citizens to the successor. CommuneFormError when the successor cannot take over."""
    commune = commune_in_scope(session, staff, commune_id)
    successor = session.get(Commune, successor_id)
    if successor is None or successor.id == commune.id or not successor.active:
        raise CommuneFormError(
            {
                "successor_id": Message(
                    "Xin chọn xã đang hoạt động nhận lại các thủ tục của xã này.",
                    "Choose the active commune that takes over this one's procedures.",
                )
            }
        )
    _merge(session, staff, commune, successor, now=now, line=None)
    return commune


def reactivate(session: Session, staff: StaffIdentity, commune_id: int, *, now: datetime) -> bool:
    commune = commune_in_scope(session, staff, commune_id)
    if commune.active:
        return False
    previous = session.get(Commune, commune.successor_id) if commune.successor_id else None
    commune.active = True
    commune.successor_id = None
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="commune.reactivated",
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={"code": commune.code, "successor_before": previous.code if previous else None},
        now=now,
    )
    return True


def _merge(
    session: Session,
    staff: StaffIdentity,
    commune: Commune,
    successor: Commune,
    *,
    now: datetime,
    line: int | None,
) -> None:
    commune.active = False
    commune.successor_id = successor.id
    # Communes merged into this one earlier now point at the unit that took over, so a poster's
    # notice never sends a citizen to a closed office.
    repointed = 0
    for earlier in session.scalars(select(Commune).where(Commune.successor_id == commune.id)):
        earlier.successor_id = successor.id
        repointed += 1
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="commune.merged",
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={
            "code": commune.code,
            "name": commune.name,
            "successor": successor.code,
            "successor_name": successor.name,
            "earlier_repointed": repointed,
            "csv_line": line,
        },
        now=now,
    )


# --- The official list, as CSV --------------------------------------------------------------------


@dataclass(frozen=True)
class UnitRow:
    """One line of the official list: a unit as it is now, and the units it continues."""

    line: int
    code: str
    name: str
    province_code: str
    province_name: str
    previous: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineProblem:
    line: int  # 0: the file as a whole
    message: Message


# Header names as they appear in official exports and hand-made sheets, compared without accents,
# case or punctuation ("Mã xã" → "ma_xa").
_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("ma_xa", "ma_dvhc", "ma_phuong_xa", "ma_px", "ma", "code", "commune_code"),
    "name": ("ten_xa", "ten_dvhc", "ten_phuong_xa", "phuong_xa", "ten", "name", "commune_name"),
    "province_code": ("ma_tinh", "ma_tp", "ma_tinh_thanh_pho", "province_code"),
    "province_name": (
        "ten_tinh",
        "ten_tp",
        "tinh_thanh_pho",
        "tinh",
        "province_name",
        "province",
    ),
    "previous": (
        "ma_cu",
        "ma_xa_cu",
        "ma_truoc_sap_nhap",
        "sap_nhap_tu",
        "previous_codes",
        "previous",
    ),
}


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", bare).strip("_")


def _digits(text: str, width: int) -> str:
    """A code as typed; a spreadsheet drops leading zeros ("4" for Hà Nội's "00004")."""
    text = text.strip()
    if text.isdigit() and len(text) < width:
        return text.zfill(width)
    return text


def read_units_csv(data: bytes) -> tuple[list[UnitRow], list[LineProblem]]:
    """The rows of an official list (UTF-8, comma, semicolon or tab separated, with a header);
    every unreadable line is reported with its number."""
    if len(data) > MAX_CSV_BYTES:
        return [], [
            LineProblem(
                0,
                Message(
                    "Tệp quá lớn (tối đa 1 MB, cả nước khoảng 300 KB).",
                    "The file is too large (1 MB at most; the whole country is about 300 KB).",
                ),
            )
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [
            LineProblem(
                0,
                Message(
                    "Tệp không phải chữ UTF-8: trong Excel chọn Lưu thành «CSV UTF-8».",
                    "The file is not UTF-8 text: in Excel, save as 'CSV UTF-8'.",
                ),
            )
        ]
    text = unicodedata.normalize("NFC", text)
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error:
        header = []
    columns: dict[str, int] = {}
    plain = [_plain(h) for h in header]
    for key, names in _COLUMNS.items():
        for name in names:
            if name in plain:
                columns[key] = plain.index(name)
                break
    missing = [k for k in ("code", "name", "province_code", "province_name") if k not in columns]
    if missing:
        return [], [
            LineProblem(
                1,
                Message(
                    "Dòng đầu phải là tên cột: ma_xa, ten_xa, ma_tinh, ten_tinh (và ma_cu nếu có "
                    "sáp nhập, đổi mã). Thiếu: " + ", ".join(missing) + ".",
                    "The first line must name the columns: ma_xa, ten_xa, ma_tinh, ten_tinh (and "
                    "ma_cu for merges and code changes). Missing: " + ", ".join(missing) + ".",
                ),
            )
        ]
    rows: list[UnitRow] = []
    problems: list[LineProblem] = []
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= MAX_ROWS:
                problems.append(
                    LineProblem(
                        line,
                        Message(
                            f"Quá {MAX_ROWS} dòng: xin chia tệp.",
                            f"More than {MAX_ROWS} lines: split the file.",
                        ),
                    )
                )
                break

            def cell(key: str, record: list[str] = record) -> str:
                index = columns.get(key)
                return record[index].strip() if index is not None and index < len(record) else ""

            row = UnitRow(
                line=line,
                code=_digits(cell("code"), 5),
                name=" ".join(cell("name").split()),
                province_code=_digits(cell("province_code"), 2),
                province_name=" ".join(cell("province_name").split()),
                previous=tuple(
                    _digits(c, 5) for c in re.split(r"[\s,;+/|]+", cell("previous")) if c
                ),
            )
            problem = _row_problem(row)
            if problem is not None:
                problems.append(LineProblem(line, problem))
                continue
            rows.append(row)
    except csv.Error as exc:
        problems.append(
            LineProblem(
                reader.line_num,
                Message(f"Dòng không đọc được ({exc}).", f"Unreadable line ({exc})."),
            )
        )
    return rows, problems


def _row_problem(row: UnitRow) -> Message | None:
    wrong = []
    if not COMMUNE_CODE.fullmatch(row.code):
        wrong.append(
            Message(f"mã xã «{row.code}» không đủ 5 chữ số", f"code '{row.code}' is not 5 digits")
        )
    if not row.name or len(row.name) > 120:
        wrong.append(
            Message("thiếu tên xã (hoặc dài quá 120 ký tự)", "no name (or over 120 characters)")
        )
    if not PROVINCE_CODE.fullmatch(row.province_code):
        wrong.append(
            Message(
                f"mã tỉnh «{row.province_code}» không đủ 2 chữ số",
                f"province code '{row.province_code}' is not 2 digits",
            )
        )
    if not row.province_name or len(row.province_name) > 120:
        wrong.append(Message("thiếu tên tỉnh", "no province name"))
    bad = [p for p in row.previous if not COMMUNE_CODE.fullmatch(p)]
    if bad:
        wrong.append(
            Message(
                f"mã cũ «{', '.join(bad)}» không đủ 5 chữ số",
                f"previous code(s) '{', '.join(bad)}' not 5 digits",
            )
        )
    if not wrong:
        return None
    return Message(
        "Dòng bị bỏ qua: " + "; ".join(w.vi for w in wrong) + ".",
        "Line skipped: " + "; ".join(w.en for w in wrong) + ".",
    )


class ChangeKind(StrEnum):
    ADD = "add"
    RENAME = "rename"
    RECODE = "recode"
    PROVINCE = "province"
    MERGE = "merge"


CHANGE_LABELS = {
    ChangeKind.ADD: Message("Thêm đơn vị mới", "New unit"),
    ChangeKind.RENAME: Message("Đổi tên", "Renamed"),
    ChangeKind.RECODE: Message("Đổi mã", "New code"),
    ChangeKind.PROVINCE: Message("Đổi tỉnh", "New province"),
    ChangeKind.MERGE: Message("Sáp nhập", "Merged"),
}


@dataclass(frozen=True)
class UnitState:
    """A commune of the install, as the plan sees it."""

    id: int
    code: str
    name: str
    province_code: str
    province_name: str
    active: bool
    successor_id: int | None
    slug: str


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    line: int
    commune_id: int | None  # None: a unit to add
    code: str  # the code now (before the change)
    name: str  # the name now
    new_code: str = ""
    new_name: str = ""
    province_code: str = ""
    province_name: str = ""
    successor_code: str = ""  # merge: the code (after this import) of the unit that takes over
    successor_name: str = ""

    def describe(self) -> Message:
        if self.kind == ChangeKind.ADD:
            return Message(
                f"Thêm {self.new_name} ({self.new_code}), {self.province_name}",
                f"Add {self.new_name} ({self.new_code}), {self.province_name}",
            )
        if self.kind == ChangeKind.RENAME:
            return Message(
                f"{self.name} ({self.code}) đổi tên thành {self.new_name}",
                f"{self.name} ({self.code}) renamed {self.new_name}",
            )
        if self.kind == ChangeKind.RECODE:
            return Message(
                f"{self.name}: mã {self.code} đổi thành {self.new_code}",
                f"{self.name}: code {self.code} becomes {self.new_code}",
            )
        if self.kind == ChangeKind.PROVINCE:
            return Message(
                f"{self.name} ({self.code}) chuyển về {self.province_code} {self.province_name}",
                f"{self.name} ({self.code}) moves to {self.province_code} {self.province_name}",
            )
        return Message(
            f"{self.name} ({self.code}) sáp nhập vào {self.successor_name} "
            f"({self.successor_code}); hồ sơ cũ vẫn thuộc {self.name}",
            f"{self.name} ({self.code}) merges into {self.successor_name} "
            f"({self.successor_code}); its dossiers stay with {self.name}",
        )


@dataclass(frozen=True)
class ImportPlan:
    changes: tuple[Change, ...]
    problems: tuple[LineProblem, ...]
    unchanged: int  # units of the list already as the list says
    not_listed: tuple[str, ...]  # active communes of the install the list does not mention
    skipped_new: int  # new units left out (only existing communes were to be updated)
    fingerprint: str = field(default="")

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        out = {k.value: 0 for k in ChangeKind}
        for c in self.changes:
            out[c.kind.value] += 1
        return out


def unit_states(session: Session) -> list[UnitState]:
    return [
        UnitState(
            c.id,
            c.code,
            c.name,
            c.province_code,
            c.province_name,
            c.active,
            c.successor_id,
            c.slug,
        )
        for c in session.scalars(select(Commune).order_by(Commune.id))
    ]


def plan_import(
    rows: Sequence[UnitRow],
    existing: Sequence[UnitState],
    *,
    read_problems: Iterable[LineProblem] = (),
    add_new: bool = True,
) -> ImportPlan:
    """What importing `rows` would change, in plain values.

    Rules: a row whose code the install has is that commune (renamed, or moved to another
    province, if the row says so). Otherwise the first of its `previous` codes the install has
    (and that is active) continues under the new code; with none, the row is a new unit. Every
    other `previous` code the install has is merged into the row's unit. A code of the install may
    appear on one row only.
    """
    problems = list(read_problems)
    by_code = {u.code: u for u in existing}
    claimed: dict[str, int] = {}
    seen_codes: dict[str, int] = {}

    def claim(code: str, line: int) -> bool:
        if code in claimed and claimed[code] != line:
            problems.append(
                LineProblem(
                    line,
                    Message(
                        f"Mã {code} đã xuất hiện ở dòng {claimed[code]}: mỗi xã của hệ thống chỉ "
                        "được nhắc đến ở một dòng.",
                        f"Code {code} already appears on line {claimed[code]}: each commune of "
                        "the install may appear on one line only.",
                    ),
                )
            )
            return False
        claimed[code] = line
        return True

    changes: list[Change] = []
    unchanged = skipped = 0
    for row in rows:
        if row.code in seen_codes:
            problems.append(
                LineProblem(
                    row.line,
                    Message(
                        f"Mã {row.code} trùng với dòng {seen_codes[row.code]}.",
                        f"Code {row.code} repeats line {seen_codes[row.code]}.",
                    ),
                )
            )
            continue
        seen_codes[row.code] = row.line
        unit = by_code.get(row.code)
        if unit is None:
            unit = next(
                (by_code[p] for p in row.previous if p in by_code and by_code[p].active), None
            )
        if unit is not None and not claim(unit.code, row.line):
            continue
        if unit is not None and not unit.active:
            problems.append(
                LineProblem(
                    row.line,
                    Message(
                        f"{unit.name} ({unit.code}) đã ngừng hoạt động (đã sáp nhập). Muốn mở lại, "
                        "xin làm trên trang của xã đó trước khi nhập.",
                        f"{unit.name} ({unit.code}) is inactive (merged). To reopen it, do so on "
                        "its page before importing.",
                    ),
                )
            )
            continue
        before = len(changes)
        if unit is None:
            if add_new:
                changes.append(
                    Change(
                        ChangeKind.ADD,
                        row.line,
                        None,
                        "",
                        "",
                        new_code=row.code,
                        new_name=row.name,
                        province_code=row.province_code,
                        province_name=row.province_name,
                    )
                )
            else:
                skipped += 1
        else:
            if unit.code != row.code:
                changes.append(
                    Change(
                        ChangeKind.RECODE,
                        row.line,
                        unit.id,
                        unit.code,
                        unit.name,
                        new_code=row.code,
                    )
                )
            if unit.name != row.name:
                changes.append(
                    Change(
                        ChangeKind.RENAME,
                        row.line,
                        unit.id,
                        unit.code,
                        unit.name,
                        new_name=row.name,
                    )
                )
            if (unit.province_code, unit.province_name) != (row.province_code, row.province_name):
                changes.append(
                    Change(
                        ChangeKind.PROVINCE,
                        row.line,
                        unit.id,
                        unit.code,
                        unit.name,
                        province_code=row.province_code,
                        province_name=row.province_name,
                    )
                )
        for code in row.previous:
            merged = by_code.get(code)
            if merged is None or (unit is not None and merged.id == unit.id):
                continue
            if not claim(code, row.line):
                continue
            if unit is None and not add_new:
                continue
            already = unit is not None and not merged.active and merged.successor_id == unit.id
            if already:
                continue
            changes.append(
                Change(
                    ChangeKind.MERGE,
                    row.line,
                    merged.id,
                    merged.code,
                    merged.name,
                    successor_code=row.code,
                    successor_name=row.name,
                )
            )
        if len(changes) == before and unit is not None:
            unchanged += 1
    not_listed = tuple(
        f"{u.name} ({u.code})" for u in existing if u.active and u.code not in claimed
    )
    plan = ImportPlan(tuple(changes), tuple(problems), unchanged, not_listed, skipped)
    return ImportPlan(
        plan.changes,
        plan.problems,
        plan.unchanged,
        plan.not_listed,
        plan.skipped_new,
        fingerprint=_fingerprint(plan, existing),
    )


def _fingerprint(plan: ImportPlan, existing: Sequence[UnitState]) -> str:
    digest = hashlib.sha256()
    for u in existing:
        digest.update(repr(u).encode())
    for c in plan.changes:
        digest.update(repr(c).encode())
    return digest.hexdigest()[:24]


def slug_for(name: str, code: str, taken: set[str]) -> str:
    """'Xã Nhuận Đức' → 'nhuan-duc' (the unit's kind dropped), unique with the code if needed."""
    words = _plain(name).split("_")
    if words and words[0] in ("xa", "phuong", "thi_tran", "dac", "thi"):
        words = words[2:] if words[:2] == ["dac", "khu"] else words[1:]
    base = "-".join(w for w in words if w)[:56] or code
    return base if base not in taken else f"{base}-{code}"


@dataclass(frozen=True)
class Applied:
    counts: dict[str, int]
    added: tuple[str, ...]  # codes of new units


class PlanStale(Exception):
    """The install changed since the plan was shown: plan again."""


def apply_plan(
    session: Session,
    staff: StaffIdentity,
    rows: Sequence[UnitRow],
    *,
    fingerprint: str,
    add_new: bool,
    csv_sha256: str,
    keys: KeyMaterial,
    now: datetime,
) -> Applied:
    """Apply the import shown to the admin. PlanStale when the install changed since (then
    nothing is changed); every change is audited, then the import as a whole."""
    _guard(staff)
    existing = unit_states(session)
    plan = plan_import(rows, existing, add_new=add_new)
    if plan.fingerprint != fingerprint or not plan.ok:
        raise PlanStale(fingerprint)
    communes = {c.id: c for c in session.scalars(select(Commune))}
    # Codes, names and provinces first, then new units, then merges into units that now have
    # their final code. A new code is never one the install has (that row would be the unit
    # holding it), so no two rows ever hold the same code on the way.
    for change in plan.changes:
        if change.commune_id is None:
            continue
        commune = communes[change.commune_id]
        if change.kind == ChangeKind.RECODE:
            commune.code = change.new_code
            _audit_change(session, staff, commune, change, now, {"code_before": change.code})
        elif change.kind == ChangeKind.RENAME:
            commune.name = change.new_name
            _audit_change(session, staff, commune, change, now, {"name_before": change.name})
        elif change.kind == ChangeKind.PROVINCE:
            before = {
                "province_code_before": commune.province_code,
                "province_name_before": commune.province_name,
            }
            commune.province_code = change.province_code
            commune.province_name = change.province_name
            _audit_change(session, staff, commune, change, now, before)
    session.flush()
    slugs = set(session.scalars(select(Commune.slug)))
    added = []
    for change in plan.changes:
        if change.kind != ChangeKind.ADD:
            continue
        slug = slug_for(change.new_name, change.new_code, slugs)
        slugs.add(slug)
        commune = Commune(
            code=change.new_code,
            slug=slug,
            name=change.new_name,
            province_code=change.province_code,
            province_name=change.province_name,
            active=True,
            created_at=now,
        )
        session.add(commune)
        session.flush()
        _set_up(session, commune, keys=keys, now=now)
        communes[commune.id] = commune
        added.append(commune.code)
        _audit_change(session, staff, commune, change, now, {})
    by_code = {c.code: c for c in communes.values()}
    for change in plan.changes:
        if change.kind == ChangeKind.MERGE and change.commune_id is not None:
            _merge(
                session,
                staff,
                communes[change.commune_id],
                by_code[change.successor_code],
                now=now,
                line=change.line,
            )
    counts = plan.counts()
    audit(
        session,
        actor=staff.actor,
        action="commune.import",
        target="communes",
        commune_id=None,
        detail={
            "sha256": csv_sha256,
            "rows": len(rows),
            "unchanged": plan.unchanged,
            **{k: v for k, v in counts.items()},
        },
        now=now,
    )
    return Applied(counts, tuple(added))


def _audit_change(
    session: Session,
    staff: StaffIdentity,
    commune: Commune,
    change: Change,
    now: datetime,
    before: Mapping[str, str | int | bool | None],
) -> None:
    actions = {
        ChangeKind.ADD: "commune.added",
        ChangeKind.RENAME: "commune.renamed",
        ChangeKind.RECODE: "commune.recoded",
        ChangeKind.PROVINCE: "commune.province_changed",
    }
    audit(
        session,
        actor=staff.actor,
        action=actions[change.kind],
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={
            "code": commune.code,
            "name": commune.name,
            "province": commune.province_code,
            "csv_line": change.line,
            **before,
        },
        now=now,
    )


CONTACT_FIELDS = {"address": 300, "phone": 32, "office_hours": 300}


def update_contact(
    session: Session, staff: StaffIdentity, form: FormData, *, now: datetime
) -> bool:
    """The commune admin's own commune: address, phone and office hours (giờ làm việc), shown to
    citizens on the commune's pages. True when anything changed (then audited)."""
    if staff.role != Role.ADMIN or staff.commune_id is None:
        raise OutOfScope("my-commune", "role")
    commune = session.get(Commune, staff.commune_id)
    if commune is None:
        raise OutOfScope("my-commune", "no_commune")
    typed = {k: " ".join(_first(form, k).split()) for k in CONTACT_FIELDS}
    errors = {
        k: Message(
            f"Tối đa {limit} ký tự (đang có {len(typed[k])}).",
            f"At most {limit} characters (it has {len(typed[k])}).",
        )
        for k, limit in CONTACT_FIELDS.items()
        if len(typed[k]) > limit
    }
    if errors:
        raise CommuneFormError(errors)
    changed = [k for k in CONTACT_FIELDS if typed[k] != getattr(commune, k)]
    if not changed:
        return False
    for k in changed:
        setattr(commune, k, typed[k])
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="commune.contact_updated",
        target=f"commune:{commune.code}",
        commune_id=commune.id,
        detail={f"{k}_changed": True for k in changed},
        now=now,
    )
    return True


def bank_choices() -> list[tuple[str, str]]:
    return sorted(BANKS.items(), key=lambda kv: kv[1])
