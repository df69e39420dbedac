"""The commune's register of posters (sổ theo dõi áp phích): what the commune admin does with them.

A poster is one procedure at one place ("Khai sinh" at "Bảng tin UBND xã"). The commune admin
(quản trị xã) makes posters one at a time or for every enabled procedure at a place at once,
prints and reprints them, and revokes (thu hồi) one whose sheet was torn down, copied onto a fake,
or is no longer wanted: from that moment its printed QR code opens a warning page instead of the
form. The commune's leaders (lãnh đạo) see the same register, read-only. Nobody sees another
commune's posters: they are answered as if they did not exist (`OutOfScope`, a 404).

The register shows each poster's funnel over a recent period and over its whole life
(`core.poster_stats.Funnel`) and flags posters that fell silent while their neighbours did not
(`core.poster_stats.silent_posters`).

Every creation and revocation is written to the audit log (who, when, which poster, what and
where) in the same transaction. Like core.services these take a SQLAlchemy `session` and never
commit: the caller owns the transaction (`with db.writing() as s:`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import services
from core.accounts import Role
from core.audit_log import record as audit
from core.keys import KeyMaterial
from core.poster_print import PosterPrint
from core.poster_stats import (
    DayCount,
    Funnel,
    PlacedPoster,
    Silence,
    SilenceRule,
    daily,
    place_key,
    silent_posters,
    totals,
)
from core.posters import poster_url, short_code
from core.staff_auth import OutOfScope, StaffIdentity
from core.text import Message
from storage.models import Commune, Poster, PosterDay

PERIOD_DAYS = 30  # the recent period the register shows next to each poster's lifetime total
MAX_LOCATION = 200


class PosterFormError(Exception):
    """What staff typed cannot make a poster; `errors` maps each form field to what to fix."""

    def __init__(self, errors: dict[str, Message]) -> None:
        super().__init__(", ".join(f"{k}: {m.en}" for k, m in errors.items()))
        self.errors = errors


class PosterRefused(Exception):
    """The action cannot be done to this poster; `message` says why."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.en)
        self.message = message


# --- Who may do what ------------------------------------------------------------------------------


def may_view(staff: StaffIdentity) -> bool:
    """The commune's admin and leaders see its posters; officials and the province do not."""
    return staff.commune_id is not None and staff.role in (Role.ADMIN, Role.LEADER)


def may_manage(staff: StaffIdentity) -> bool:
    """Only the commune admin makes and revokes posters."""
    return staff.commune_id is not None and staff.role == Role.ADMIN


def staff_commune(session: Session, staff: StaffIdentity) -> Commune:
    """The commune whose posters `staff` may see (OutOfScope for everyone else)."""
    if not may_view(staff):
        raise OutOfScope("posters", "role")
    commune = session.get(Commune, staff.commune_id)
    if commune is None:
        raise OutOfScope("posters", "no_commune")
    return commune


def _managed_commune(session: Session, staff: StaffIdentity) -> Commune:
    if not may_manage(staff):
        raise OutOfScope("posters", "read_only")
    return staff_commune(session, staff)


def poster_in_scope(session: Session, staff: StaffIdentity, poster_id: int) -> Poster:
    """One poster of the staff member's commune; another commune's is OutOfScope, like none."""
    commune = staff_commune(session, staff)
    poster = session.get(Poster, poster_id)
    if poster is None or poster.commune_id != commune.id:
        raise OutOfScope(f"poster:{poster_id}")
    return poster


# --- State and figures of a poster ---------------------------------------------------------------


class PosterStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


STATUS_LABELS = {
    PosterStatus.ACTIVE: Message("Đang dùng", "In use"),
    PosterStatus.EXPIRED: Message("Hết hạn", "Expired"),
    PosterStatus.REVOKED: Message("Đã thu hồi", "Revoked"),
}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def poster_status(poster: Poster, now: datetime) -> PosterStatus:
    if poster.revoked_at is not None:
        return PosterStatus.REVOKED
    if poster.expires_at is not None and _aware(poster.expires_at) <= now:
        return PosterStatus.EXPIRED
    return PosterStatus.ACTIVE


def placed(poster: Poster, tz: tzinfo) -> PlacedPoster:
    """The poster as the silence rule sees it: local days from creation to revocation/expiry."""
    ends = [_aware(at) for at in (poster.revoked_at, poster.expires_at) if at is not None]
    last_day = None
    if ends:
        # Expiry at local midnight means the day before was the last one it worked.
        last_day = (min(ends) - timedelta(microseconds=1)).astimezone(tz).date()
    return PlacedPoster(
        id=poster.id,
        commune_id=poster.commune_id,
        code=poster.code,
        location=poster.location,
        first_day=_aware(poster.created_at).astimezone(tz).date(),
        last_day=last_day,
    )


def poster_link(poster: Poster, keys: KeyMaterial, public_base_url: str) -> tuple[str, str]:
    """(the URL its QR code opens, the short code printed under it)."""
    token = services.poster_token(poster, keys)
    return poster_url(public_base_url, token), short_code(token)


@dataclass(frozen=True)
class PosterLine:
    """One poster as the register lists it."""

    id: int
    code: str
    location: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    status: PosterStatus
    url: str
    short_code: str
    recent: Funnel  # over the register's period
    lifetime: Funnel
    silence: Silence | None

    @property
    def active(self) -> bool:
        return self.status == PosterStatus.ACTIVE

    @property
    def status_label(self) -> Message:
        return STATUS_LABELS[self.status]


@dataclass(frozen=True)
class Register:
    """The commune's posters with their figures, for the staff list page."""

    commune: Commune
    lines: list[PosterLine]
    first_day: date  # the recent period, inclusive
    last_day: date
    rule: SilenceRule

    @property
    def silent(self) -> list[PosterLine]:
        return [line for line in self.lines if line.silence is not None]

    def by_procedure(self, order: Sequence[str]) -> list[tuple[str, list[PosterLine]]]:
        """Groups by procedure code in the commune's order (then any other), places sorted."""
        groups: dict[str, list[PosterLine]] = {}
        for line in sorted(self.lines, key=lambda ln: (place_key(ln.location), ln.id)):
            groups.setdefault(line.code, []).append(line)
        rank = {code: i for i, code in enumerate(order)}
        return sorted(groups.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))

    def by_place(self, order: Sequence[str]) -> list[tuple[str, list[PosterLine]]]:
        """Groups by place (labels that differ only in case or spacing together)."""
        rank = {code: i for i, code in enumerate(order)}
        groups: dict[str, list[PosterLine]] = {}
        labels: dict[str, str] = {}
        for line in sorted(self.lines, key=lambda ln: (rank.get(ln.code, len(rank)), ln.id)):
            key = place_key(line.location)
            labels.setdefault(key, line.location)
            groups.setdefault(key, []).append(line)
        return [(labels[key], groups[key]) for key in sorted(groups)]


def day_counts(session: Session, commune_id: int, first: date, last: date) -> list[DayCount]:
    rows = session.scalars(
        select(PosterDay).where(
            PosterDay.commune_id == commune_id, PosterDay.day >= first, PosterDay.day <= last
        )
    )
    return [
        DayCount(r.poster_id, r.day, Funnel(r.scans, r.forms_started, r.submitted, r.approved))
        for r in rows
    ]


def lifetime_totals(session: Session, commune_id: int) -> dict[int, Funnel]:
    rows = session.execute(
        select(
            PosterDay.poster_id,
            func.sum(PosterDay.scans),
            func.sum(PosterDay.forms_started),
            func.sum(PosterDay.submitted),
            func.sum(PosterDay.approved),
        )
        .where(PosterDay.commune_id == commune_id)
        .group_by(PosterDay.poster_id)
    )
    return {pid: Funnel(int(a), int(b), int(c), int(d)) for pid, a, b, c, d in rows}


def register(
    session: Session,
    staff: StaffIdentity,
    *,
    keys: KeyMaterial,
    public_base_url: str,
    now: datetime,
    tz: tzinfo,
    include_ended: bool = False,
    period_days: int = PERIOD_DAYS,
    rule: SilenceRule = SilenceRule(),  # noqa: B008 - frozen dataclass, safe as a default
) -> Register:
    """The commune's posters (active ones, or all with `include_ended`) and their figures."""
    commune = staff_commune(session, staff)
    today = now.astimezone(tz).date()
    posters = list(
        session.scalars(select(Poster).where(Poster.commune_id == commune.id).order_by(Poster.id))
    )
    first_day = today - timedelta(days=period_days - 1)
    earliest = min(first_day, rule.windows(today)[1][0])
    counts = day_counts(session, commune.id, earliest, today)
    recent = totals(counts, first=first_day, last=today)
    lifetime = lifetime_totals(session, commune.id)
    flags = silent_posters([placed(p, tz) for p in posters], counts, today=today, rule=rule)
    lines = []
    for p in posters:
        status = poster_status(p, now)
        if status != PosterStatus.ACTIVE and not include_ended:
            continue
        url, code = poster_link(p, keys, public_base_url)
        lines.append(
            PosterLine(
                id=p.id,
                code=p.code,
                location=p.location,
                created_at=_aware(p.created_at),
                expires_at=_aware(p.expires_at) if p.expires_at else None,
                revoked_at=_aware(p.revoked_at) if p.revoked_at else None,
                status=status,
                url=url,
                short_code=code,
                recent=recent.get(p.id, Funnel()),
                lifetime=lifetime.get(p.id, Funnel()),
                silence=flags.get(p.id),
            )
        )
    return Register(commune, lines, first_day, today, rule)


@dataclass(frozen=True)
class PosterDetail:
    line: PosterLine
    days: list[tuple[date, Funnel]]  # newest first


def poster_detail(
    session: Session,
    staff: StaffIdentity,
    poster_id: int,
    *,
    keys: KeyMaterial,
    public_base_url: str,
    now: datetime,
    tz: tzinfo,
    period_days: int = PERIOD_DAYS,
    rule: SilenceRule = SilenceRule(),  # noqa: B008 - frozen dataclass, safe as a default
) -> PosterDetail:
    """One poster with its funnel day by day over the period."""
    poster = poster_in_scope(session, staff, poster_id)
    reg = register(
        session,
        staff,
        keys=keys,
        public_base_url=public_base_url,
        now=now,
        tz=tz,
        include_ended=True,
        period_days=period_days,
        rule=rule,
    )
    line = next(ln for ln in reg.lines if ln.id == poster.id)
    counts = day_counts(session, reg.commune.id, reg.first_day, reg.last_day)
    first = max(reg.first_day, line.created_at.astimezone(tz).date())
    return PosterDetail(line, daily(counts, poster.id, first=first, last=reg.last_day))


# --- Making and revoking ------------------------------------------------------------------------

LOCATION_HELP = Message(
    "Ghi nơi dán áp phích, 2–200 ký tự, ví dụ “Bảng tin UBND xã” hoặc “Công viên ấp 3”.",
    "Write where the poster hangs, 2–200 characters, e.g. “Bảng tin UBND xã” or “Công viên ấp 3”.",
)


def _clean_location(location: str, errors: dict[str, Message]) -> str:
    cleaned = " ".join(location.split())
    if not 2 <= len(cleaned) <= MAX_LOCATION:
        errors["location"] = LOCATION_HELP
    return cleaned


def expiry_moment(expires_on: date | None, tz: tzinfo) -> datetime | None:
    """A poster valid "through" a day stops at the next local midnight."""
    if expires_on is None:
        return None
    return datetime.combine(expires_on + timedelta(days=1), time(0), tz).astimezone(UTC)


def _check_expiry(
    expires_on: date | None, now: datetime, tz: tzinfo, errors: dict[str, Message]
) -> None:
    today = now.astimezone(tz).date()
    if expires_on is not None and expires_on < today:
        errors["expires_on"] = Message(
            f"Ngày hết hạn phải từ hôm nay ({today:%d/%m/%Y}) trở đi; "
            "để trống nếu áp phích dùng lâu dài.",
            f"The expiry date must be today ({today:%d/%m/%Y}) or later; "
            "leave it empty for a lasting poster.",
        )


def _audit_created(
    session: Session, staff: StaffIdentity, poster: Poster, now: datetime, *, bulk: bool
) -> None:
    detail: dict[str, str | bool] = {"procedure": poster.code, "location": poster.location}
    if bulk:
        detail["bulk"] = True
    if poster.expires_at is not None:
        detail["expires_at"] = _aware(poster.expires_at).isoformat(timespec="seconds")
    audit(
        session,
        actor=staff.actor,
        action="poster.create",
        target=f"poster:{poster.id}",
        commune_id=poster.commune_id,
        detail=detail,
        now=now,
    )


def create(
    session: Session,
    staff: StaffIdentity,
    *,
    code: str,
    location: str,
    expires_on: date | None,
    keys: KeyMaterial,
    now: datetime,
    tz: tzinfo,
) -> Poster:
    """A new poster of one of the commune's enabled procedures at a place (audited)."""
    commune = _managed_commune(session, staff)
    errors: dict[str, Message] = {}
    cleaned = _clean_location(location, errors)
    _check_expiry(expires_on, now, tz, errors)
    offered = {p.code for p in services.offered_procedures(session, commune)}
    if code not in offered:
        errors["code"] = Message(
            "Chọn một thủ tục xã đang nhận hồ sơ trực tuyến.",
            "Choose a procedure the commune currently takes online.",
        )
    if errors:
        raise PosterFormError(errors)
    poster = services.create_poster(
        session,
        commune=commune,
        code=code,
        location=cleaned,
        keys=keys,
        now=now,
        created_by=staff.user_id,
        expires_at=expiry_moment(expires_on, tz),
    )
    _audit_created(session, staff, poster, now, bulk=False)
    return poster


@dataclass(frozen=True)
class BulkCreated:
    location: str
    created: list[Poster]
    skipped: list[str]  # procedure codes that already had an active poster at this place


def create_bulk(
    session: Session,
    staff: StaffIdentity,
    *,
    location: str,
    expires_on: date | None,
    keys: KeyMaterial,
    now: datetime,
    tz: tzinfo,
) -> BulkCreated:
    """A poster for every enabled procedure at a place, except those already up there.

    Skipping the procedures that already have an active poster at the same place (same label
    up to case and spacing) makes a double click, or a second run after adding a procedure, add
    only what is missing instead of duplicates.
    """
    commune = _managed_commune(session, staff)
    errors: dict[str, Message] = {}
    cleaned = _clean_location(location, errors)
    _check_expiry(expires_on, now, tz, errors)
    if errors:
        raise PosterFormError(errors)
    here = place_key(cleaned)
    already = {
        p.code
        for p in services.active_posters(session, commune, now)
        if place_key(p.location) == here
    }
    created, skipped = [], []
    for offered in services.offered_procedures(session, commune):
        if offered.code in already:
            skipped.append(offered.code)
            continue
        poster = services.create_poster(
            session,
            commune=commune,
            code=offered.code,
            location=cleaned,
            keys=keys,
            now=now,
            created_by=staff.user_id,
            expires_at=expiry_moment(expires_on, tz),
        )
        created.append(poster)
    for poster in created:
        _audit_created(session, staff, poster, now, bulk=True)
    return BulkCreated(cleaned, created, skipped)


def revoke(session: Session, staff: StaffIdentity, poster_id: int, *, now: datetime) -> Poster:
    """Revoke a poster: its printed QR code opens a warning page from now on (audited)."""
    _managed_commune(session, staff)
    poster = poster_in_scope(session, staff, poster_id)
    if poster.revoked_at is not None:
        raise PosterRefused(
            Message(
                "Áp phích này đã được thu hồi trước đó; không cần làm gì thêm.",
                "This poster was already revoked; nothing more to do.",
            )
        )
    poster.revoked_at = now
    poster.revoked_by = staff.user_id
    session.flush()
    audit(
        session,
        actor=staff.actor,
        action="poster.revoke",
        target=f"poster:{poster.id}",
        commune_id=poster.commune_id,
        detail={"procedure": poster.code, "location": poster.location},
        now=now,
    )
    return poster


# --- Printing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Printable:
    prints: list[PosterPrint]
    left_out: list[int]  # selected posters not printed: revoked, expired or procedure disabled


def printable(
    session: Session,
    staff: StaffIdentity,
    poster_ids: Sequence[int],
    *,
    keys: KeyMaterial,
    public_base_url: str,
    now: datetime,
) -> Printable:
    """What to print for the selected posters, in the order given; only active ones print."""
    commune = staff_commune(session, staff)
    chosen = [poster_in_scope(session, staff, pid) for pid in dict.fromkeys(poster_ids)]
    active = [p for p in chosen if poster_status(p, now) == PosterStatus.ACTIVE]
    prints = services.poster_prints(
        session, commune, active, keys=keys, public_base_url=public_base_url
    )
    printed_urls = {pr.url for pr in prints}
    left_out = [
        p.id for p in chosen if poster_link(p, keys, public_base_url)[0] not in printed_urls
    ]
    return Printable(prints, left_out)
