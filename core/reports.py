"""The commune's dashboard (báo cáo tình hình giải quyết hồ sơ): numbers a leader reports upward.

One-stop offices report, per procedure and period, how many dossiers they received, how many are
still being processed, how many were settled on time and how many late (the quarterly report of
TT 01/2018/TT-VPCP asks for exactly these columns). Here:

- *received*: dossiers received in the period;
- *in progress*: open dossiers now, whatever their age (received, processing, waiting for the
  citizen's supplement, supplemented);
- *overdue now*: of those, the ones whose clock runs and whose return date has passed;
- *settled on time* / *late*: dossiers the office decided (approved or refused) in the period, on
  time when decided no later than the return date (moved only by the citizen's supplement time)
  and without an apology; a dossier that needed an apology counts as late, even if its new date
  was kept;
- *average time*: working days from the day the dossier counts as received to the day it was
  decided, so a weekend or Tết does not make an office look slow.

The per-poster funnel (scans → forms started → submitted → approved) comes from the anonymous
daily counts of `PosterDay` (`core.poster_stats.Funnel`).

Exports: a CSV that Excel opens with Vietnamese intact (UTF-8 with a byte-order mark, comma
separated, CRLF), where no cell can run as a formula: a text cell starting with =, +, -, @, a tab
or a carriage return is prefixed with an apostrophe (OWASP "CSV injection"); poster places are
typed by staff and procedure names come from editable definitions, so this matters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import Role
from core.audit_log import head
from core.deadlines import WorkCalendar
from core.dossier import DossierState, is_clock_paused, is_open, is_settled
from core.poster_stats import Funnel
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Lang, Message
from storage.definitions import definition_of
from storage.models import AuditEvent, Commune, CommuneProcedure, Dossier, Poster, PosterDay

IN_PROGRESS = tuple(s for s in DossierState if is_open(s) and not is_settled(s))
RUNNING = tuple(s for s in IN_PROGRESS if not is_clock_paused(s))
DECIDED = (DossierState.APPROVED, DossierState.REFUSED, DossierState.RETURNED)
MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """Local calendar days `first`..`last`, both included."""

    first: date
    last: date

    @classmethod
    def month_to_date(cls, today: date) -> Period:
        return cls(today.replace(day=1), today)

    @classmethod
    def parse(cls, first: str | None, last: str | None, *, today: date) -> Period:
        """From two ISO dates of a form; anything missing or wrong gives this month so far."""
        default = cls.month_to_date(today)
        try:
            a = date.fromisoformat(first) if first else default.first
            b = date.fromisoformat(last) if last else default.last
        except ValueError:
            return default
        if b < a or (b - a).days > MAX_PERIOD_DAYS:
            return default
        return cls(a, b)

    def bounds(self, calendar: WorkCalendar) -> tuple[datetime, datetime]:
        """[start, end) in UTC: from 00:00 local on `first` to 00:00 local after `last`."""
        start = datetime.combine(self.first, time(0), tzinfo=calendar.tz).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=calendar.tz)
        return start, end.astimezone(UTC)


@dataclass
class ProcedureLine:
    code: str
    name: Message
    received: int = 0
    in_progress: int = 0
    overdue: int = 0
    on_time: int = 0
    late: int = 0
    working_days: list[int] = field(default_factory=list, repr=False)

    @property
    def settled(self) -> int:
        return self.on_time + self.late

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.settled if self.settled else None

    @property
    def average_days(self) -> float | None:
        return sum(self.working_days) / len(self.working_days) if self.working_days else None


@dataclass(frozen=True)
class PosterLine:
    poster_id: int
    procedure_code: str
    procedure_name: Message
    location: str
    in_use: bool
    funnel: Funnel


@dataclass(frozen=True)
class Dashboard:
    commune: Commune
    period: Period
    generated_at: datetime
    procedures: list[ProcedureLine]
    total: ProcedureLine
    posters: list[PosterLine]


def report_commune(session: Session, identity: StaffIdentity, slug: str | None) -> Commune:
    """The commune whose report the caller may read: their own (leader, admin), or any (province
    admin, choosing by slug)."""
    if identity.role == Role.PROVINCE_ADMIN:
        query = select(Commune).order_by(Commune.name)
        if slug:
            query = query.where(Commune.slug == slug)
        commune = session.scalar(query.limit(1))
        if commune is None:
            raise OutOfScope(f"commune:{slug}", "not_found")
        return commune
    if identity.role not in (Role.LEADER, Role.ADMIN) or identity.commune_id is None:
        raise OutOfScope("reports", "role")
    commune = session.get(Commune, identity.commune_id)
    if commune is None or (slug and slug != commune.slug):
        raise OutOfScope(f"commune:{slug}", "other_commune")
    return commune


def report_communes(session: Session, identity: StaffIdentity) -> list[Commune]:
    """The communes a province admin chooses among (others read only their own)."""
    if identity.role != Role.PROVINCE_ADMIN:
        return []
    return list(session.scalars(select(Commune).order_by(Commune.name)))


def dashboard(
    session: Session,
    commune: Commune,
    period: Period,
    *,
    calendar: WorkCalendar,
    now: datetime,
) -> Dashboard:
    start, end = period.bounds(calendar)
    today = calendar.local_date(now)
    lines: dict[str, ProcedureLine] = {}
    names: dict[str, Message] = {}
    for setting in session.scalars(
        select(CommuneProcedure)
        .where(CommuneProcedure.commune_id == commune.id)
        .order_by(CommuneProcedure.position, CommuneProcedure.code)
    ):
        defn = definition_of(setting.version)
        names[setting.code] = Message(defn.name.vi, defn.name.en)

    def line(code: str) -> ProcedureLine:
        if code not in lines:
            lines[code] = ProcedureLine(code, names.get(code, Message(code, code)))
        return lines[code]

    in_commune = Dossier.commune_id == commune.id
    for code, count in session.execute(
        select(Dossier.procedure_code, func.count())
        .where(in_commune, Dossier.received_at >= start, Dossier.received_at < end)
        .group_by(Dossier.procedure_code)
    ):
        line(code).received = int(count)
    for code, count, overdue in session.execute(
        select(
            Dossier.procedure_code,
            func.count(),
            func.count().filter(Dossier.state.in_(RUNNING), Dossier.due_date < today),
        )
        .where(in_commune, Dossier.state.in_(IN_PROGRESS))
        .group_by(Dossier.procedure_code)
    ):
        line(code).in_progress = int(count)
        line(code).overdue = int(overdue)
    for row in session.execute(
        select(
            Dossier.procedure_code,
            Dossier.received_at,
            Dossier.closed_at,
            Dossier.due_date,
            Dossier.apology_sent_at,
        ).where(
            in_commune,
            Dossier.state.in_(DECIDED),
            Dossier.closed_at >= start,
            Dossier.closed_at < end,
        )
    ):
        target = line(row.procedure_code)
        closed_at = _aware(row.closed_at)
        decided = calendar.local_date(closed_at)
        if decided <= row.due_date and row.apology_sent_at is None:
            target.on_time += 1
        else:
            target.late += 1
        target.working_days.append(working_days_taken(calendar, _aware(row.received_at), decided))

    procedures = sorted(
        lines.values(),
        key=lambda p: (list(names).index(p.code) if p.code in names else 1e9, p.code),
    )
    total = ProcedureLine("", Message("Tổng cộng", "Total"))
    for p in procedures:
        total.received += p.received
        total.in_progress += p.in_progress
        total.overdue += p.overdue
        total.on_time += p.on_time
        total.late += p.late
        total.working_days.extend(p.working_days)
    return Dashboard(
        commune=commune,
        period=period,
        generated_at=now,
        procedures=procedures,
        total=total,
        posters=poster_funnels(session, commune.id, period, names=names, now=now),
    )


def working_days_taken(calendar: WorkCalendar, received_at: datetime, decided: date) -> int:
    """Working days from the day a dossier counts as received to the day it was decided; decided
    the day it counts as received is 0."""
    start = calendar.received_day(received_at)
    if decided <= start:
        return 0
    return calendar.count_working_days(start + timedelta(days=1), decided)


def poster_funnels(
    session: Session,
    commune_id: int,
    period: Period,
    *,
    names: dict[str, Message],
    now: datetime,
) -> list[PosterLine]:
    """Each poster's funnel over the period: every poster in use, and any other with counts."""
    sums = {
        row.poster_id: Funnel(
            int(row.scans), int(row.forms_started), int(row.submitted), int(row.approved)
        )
        for row in session.execute(
            select(
                PosterDay.poster_id,
                func.sum(PosterDay.scans).label("scans"),
                func.sum(PosterDay.forms_started).label("forms_started"),
                func.sum(PosterDay.submitted).label("submitted"),
                func.sum(PosterDay.approved).label("approved"),
            )
            .where(
                PosterDay.commune_id == commune_id,
                PosterDay.day >= period.first,
                PosterDay.day <= period.last,
            )
            .group_by(PosterDay.poster_id)
        )
    }
    out = []
    for poster in session.scalars(
        select(Poster).where(Poster.commune_id == commune_id).order_by(Poster.code, Poster.id)
    ):
        in_use = poster.revoked_at is None and (
            poster.expires_at is None or _aware(poster.expires_at) > now
        )
        if not in_use and poster.id not in sums:
            continue
        out.append(
            PosterLine(
                poster_id=poster.id,
                procedure_code=poster.code,
                procedure_name=names.get(poster.code, Message(poster.code, poster.code)),
                location=poster.location,
                in_use=in_use,
                funnel=sums.get(poster.id, Funnel()),
            )
        )
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- CSV ------------------------------------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One cell as text that a spreadsheet shows and never runs: text that would start a formula
    gets a leading apostrophe. Numbers are written plainly (they cannot carry a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """UTF-8 with a byte-order mark (so Excel reads Vietnamese right), comma separated, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def _share(value: float | None) -> str:
    return "" if value is None else f"{round(value * 100)}%"


PROCEDURE_HEADERS = Message(
    "Mã thủ tục|Tên thủ tục|Tiếp nhận trong kỳ|Đang giải quyết|Quá hạn hiện tại|"
    "Giải quyết đúng hạn|Giải quyết trễ hạn|Tỷ lệ đúng hạn|Thời gian trung bình (ngày làm việc)",
    "Procedure code|Procedure|Received in period|In progress|Overdue now|Settled on time|"
    "Settled late|On-time share|Average time (working days)",
)
POSTER_HEADERS = Message(
    "Mã áp phích|Thủ tục|Nơi đặt|Đang dùng|Lượt quét|Bắt đầu điền|Đã nộp|Đã phê duyệt",
    "Poster|Procedure|Place|In use|Scans|Forms started|Submitted|Approved",
)


def procedures_csv(report: Dashboard, lang: Lang) -> bytes:
    rows: list[list[object]] = [list(PROCEDURE_HEADERS.in_(lang).split("|"))]
    for p in [*report.procedures, report.total]:
        rows.append(
            [
                p.code,
                p.name.in_(lang),
                p.received,
                p.in_progress,
                p.overdue,
                p.on_time,
                p.late,
                _share(p.on_time_share),
                p.average_days,
            ]
        )
    return csv_bytes(rows)


def posters_csv(report: Dashboard, lang: Lang) -> bytes:
    rows: list[list[object]] = [list(POSTER_HEADERS.in_(lang).split("|"))]
    yes, no = ("Có", "Không") if lang == "vi" else ("Yes", "No")
    for p in report.posters:
        f = p.funnel
        rows.append(
            [
                p.poster_id,
                p.procedure_name.in_(lang),
                p.location,
                yes if p.in_use else no,
                f.scans,
                f.forms_started,
                f.submitted,
                f.approved,
            ]
        )
    return csv_bytes(rows)


def csv_filename(report: Dashboard, kind: str) -> str:
    return f"bao-cao-{kind}-{report.commune.slug}-{report.period.first}-{report.period.last}.csv"


# --- the audit trail, for those who oversee -------------------------------------------------------

AUDIT_PAGE = 100


@dataclass(frozen=True)
class AuditTrail:
    rows: list[AuditEvent]
    next_before: int | None  # the seq to continue from (older rows), if any
    head: tuple[int, str] | None  # the chain's head, for a province admin to write down


def audit_trail(
    session: Session, identity: StaffIdentity, *, before: int | None, limit: int = AUDIT_PAGE
) -> AuditTrail:
    """The newest audit events a leader or admin may read (their commune's), or a province admin
    (the whole install's, with the chain's head to record as an anchor)."""
    if identity.role not in (Role.LEADER, Role.ADMIN, Role.PROVINCE_ADMIN):
        raise OutOfScope("audit", "role")
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit + 1)
    if identity.role != Role.PROVINCE_ADMIN:
        query = query.where(AuditEvent.commune_id == identity.commune_id)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditTrail(
        rows=rows,
        next_before=rows[-1].seq if more and rows else None,
        head=head(session) if identity.role == Role.PROVINCE_ADMIN else None,
    )
