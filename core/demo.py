"""Demo dossiers (hồ sơ mẫu): a first run with a queue, a dashboard and a report worth looking at.

`init --demo` files a dozen dossiers in the demo commune through the same services a citizen and
an official use (`core.services.submit`, `core.workspace.act`, …), so each one is sealed, signed,
audited and shown exactly like a real one. Their answers are `procedures.samples.sample_values`:
fictional people with random CCCD serials, and their papers are images that say "GIẤY TỜ MẪU".

They were received over the last ten working days, at different hours, and then taken through
the life of a dossier: some still new (one due today, one overdue), some being processed (one
late with an apology and a new date), one waiting for the citizen's papers and one answered, one
approved and waiting to be handed back, some handed back (one late), one refused with its reason.
Their times are in the past, relative to `now`, so deadlines, working-day averages and the
report read as they would in an office that has been running for two weeks.

Each dossier hangs on a fixed draft token, the citizen form's own idempotency key: a dossier that
exists already is left as it is, so running `init --demo` again adds nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Final

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import services, workspace
from core.audit_log import record
from core.deadlines import WorkCalendar
from core.keys import KeyMaterial
from core.poster_print import FontsMissing, find_fonts
from core.staff_auth import StaffIdentity, identity_of
from core.uploads import UploadLimits, inspect_upload
from core.validation import validate
from procedures.samples import sample_values
from procedures.schema import FieldKind, ProcedureDefinition
from storage.files import FileStore
from storage.models import Commune, Dossier, Poster, StaffUser

CITIZEN_SUPPLEMENT: Final = "supplement"  # a step the citizen takes, not the official
APOLOGY: Final = workspace.APOLOGY


@dataclass(frozen=True)
class Step:
    """One thing done to a demo dossier, `day` working days after the day it was received."""

    action: str  # a workspace action, APOLOGY or CITIZEN_SUPPLEMENT
    day: int
    at: time  # local time
    note: str = ""  # the reason, the request, the apology or the citizen's answer
    new_due_in: int = 0  # APOLOGY: the new return date, in working days after today


@dataclass(frozen=True)
class DemoDossier:
    procedure: str
    received: int  # working days before today (at least 1: every moment is in the past)
    at: time  # local time of receipt
    steps: tuple[Step, ...] = ()
    poster: str | None = None  # the place of the demo poster it was scanned from

    def draft(self, number: int) -> str:
        """The fixed draft token that makes this dossier exist once."""
        return f"demo-dossier-{number:02d}-{self.procedure}"


CLAIM, APPROVE, REFUSE = "claim", "approve", "refuse"
REQUEST, RETURN = "request_supplement", "return_result"

DEMO_DOSSIERS: Final[tuple[DemoDossier, ...]] = (
    # New, nobody has taken them yet.
    DemoDossier("dang-ky-thuong-tru", 2, time(9, 10)),  # 7 working days: on time
    DemoDossier("dang-ky-tam-tru", 3, time(10, 25)),  # 3 working days: due today
    DemoDossier("giam-ho", 4, time(14, 20)),  # overdue since yesterday
    DemoDossier("chung-thuc-chu-ky", 1, time(10, 40)),  # same-day, not done: overdue
    # Being processed.
    DemoDossier(
        "xac-nhan-tinh-trang-hon-nhan",
        2,
        time(8, 40),
        (Step(CLAIM, 0, time(14, 0)),),
        poster="Nhà văn hóa ấp Bàu Tròn",
    ),
    DemoDossier(
        "thay-doi-cai-chinh-ho-tich",
        5,
        time(9, 30),
        (
            Step(CLAIM, 1, time(8, 15)),
            Step(
                APOLOGY,
                2,
                time(15, 30),
                "Cần đối chiếu với Sổ đăng ký khai sinh gốc đang lưu ở nơi đăng ký trước đây; xã "
                "đã gửi văn bản đề nghị xác minh và đang chờ trả lời. Xin lỗi ông/bà vì sự chậm "
                "trễ này.",
                new_due_in=2,
            ),
        ),
    ),
    # Waiting for the citizen, and answered by the citizen.
    DemoDossier(
        "nhan-cha-me-con",
        6,
        time(10, 5),
        (
            Step(CLAIM, 0, time(13, 45)),
            Step(
                REQUEST,
                1,
                time(9, 20),
                "Xin bổ sung: (1) văn bản của cơ sở y tế hoặc cơ quan giám định xác nhận quan hệ "
                "cha, con (kết quả giám định ADN); (2) bản sao Giấy khai sinh của người con. Có "
                "thể gửi ảnh chụp qua trang tra cứu hồ sơ hoặc mang đến Bộ phận Một cửa.",
            ),
        ),
    ),
    DemoDossier(
        "dang-ky-tam-tru",
        5,
        time(8, 50),
        (
            Step(CLAIM, 0, time(9, 30)),
            Step(
                REQUEST,
                0,
                time(10, 10),
                "Xin bổ sung giấy tờ chứng minh chỗ ở hợp pháp: hợp đồng thuê nhà ghi rõ địa chỉ "
                "và thời hạn thuê, có chữ ký của chủ nhà (ảnh đã gửi chưa đọc được trang có chữ "
                "ký).",
            ),
            Step(
                CITIZEN_SUPPLEMENT,
                2,
                time(8, 45),
                "Tôi gửi lại hợp đồng thuê nhà, đã chụp rõ trang có chữ ký của chủ nhà.",
            ),
        ),
    ),
    # Approved, the result waits at the desk.
    DemoDossier(
        "khai-sinh",
        1,
        time(8, 5),
        (Step(CLAIM, 0, time(8, 30)), Step(APPROVE, 0, time(10, 45))),
        poster="Bảng tin UBND xã",
    ),
    # Handed back: on time, and one a day late.
    DemoDossier(
        "khai-sinh",
        7,
        time(9, 0),
        (Step(CLAIM, 0, time(9, 20)), Step(APPROVE, 0, time(11, 0)), Step(RETURN, 1, time(8, 30))),
        poster="Công viên ấp 3",
    ),
    DemoDossier(
        "ket-hon",
        8,
        time(10, 30),
        (Step(CLAIM, 0, time(14, 0)), Step(APPROVE, 1, time(9, 0)), Step(RETURN, 2, time(9, 30))),
        poster="Bảng tin UBND xã",
    ),
    DemoDossier(
        "chung-thuc-ban-sao",
        9,
        time(8, 20),
        (Step(CLAIM, 0, time(8, 25)), Step(APPROVE, 0, time(8, 40)), Step(RETURN, 0, time(8, 55))),
        poster="Bộ phận Một cửa",
    ),
    # Refused, with the reason the citizen reads on the status page.
    DemoDossier(
        "cham-dut-giam-ho",
        10,
        time(9, 45),
        (
            Step(CLAIM, 0, time(10, 0)),
            Step(
                REFUSE,
                1,
                time(16, 0),
                "Giấy tờ nộp kèm chưa chứng minh được căn cứ chấm dứt giám hộ đã khai: ảnh gửi "
                "lên không phải giấy tờ về căn cứ đó (ví dụ giấy khai sinh hoặc thẻ căn cước của "
                "người được giám hộ khi người này đã đủ 18 tuổi). Xin nộp lại hồ sơ kèm ảnh chụp "
                "rõ giấy tờ chứng minh.",
            ),
        ),
    ),
)
# The one printed by `init --demo` for trying the status page: it asks the citizen for papers.
SAMPLE_INDEX: Final = next(
    n for n, d in enumerate(DEMO_DOSSIERS, start=1) if d.steps and d.steps[-1].action == REQUEST
)
# A poster's demo dossier also counts a few scans and started forms on its day, as a real one
# would have (people scan and look without filing).
SCANS_PER_DOSSIER, STARTS_PER_DOSSIER = 3, 2


@dataclass(frozen=True)
class DemoResult:
    created: int  # dossiers added by this run (0 on every run after the first)
    total: int  # demo dossiers the commune has
    sample_code: str
    sample_secret: str


class DemoError(RuntimeError):
    """The demo data could not be made (a sample that no longer passes the form, …)."""


def ensure_demo_dossiers(
    session: Session,
    *,
    commune: Commune,
    official: StaffUser,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    store: FileStore,
    now: datetime,
) -> DemoResult:
    """File the demo dossiers that are missing and take them through their steps as `official`.

    Procedures the commune does not offer are skipped. The caller commits.
    """
    offered = {p.code: p for p in services.offered_procedures(session, commune)}
    posters = {
        (p.code, p.location): p.id
        for p in session.scalars(select(Poster).where(Poster.commune_id == commune.id))
    }
    run = _Run(session, commune, identity_of(session, official), keys, calendar, store, now)
    created, total = 0, 0
    sample = ("", "")
    for number, spec in enumerate(DEMO_DOSSIERS, start=1):
        procedure = offered.get(spec.procedure)
        if procedure is None:
            continue
        draft = spec.draft(number)
        dossier = services.find_by_draft(session, commune, draft)
        if dossier is None:
            poster_id = posters.get((spec.procedure, spec.poster or ""))
            dossier = run.create(spec, procedure, draft, seed=number, poster_id=poster_id)
            created += 1
        total += 1
        if number == SAMPLE_INDEX:
            secret = services.citizen_secret(
                keys.secret_key, commune.id, services.draft_hash(draft)
            )
            sample = (dossier.code, secret)
    if created:
        record(
            session,
            actor="cli",
            action="demo.dossiers",
            target=f"commune:{commune.id}",
            commune_id=commune.id,
            detail={"created": created},
            now=now,
        )
    session.flush()
    return DemoResult(created, total, *sample)


@dataclass(frozen=True)
class _Run:
    """What every demo dossier of one `init --demo` is filed and handled with."""

    session: Session
    commune: Commune
    identity: StaffIdentity
    keys: KeyMaterial
    calendar: WorkCalendar
    store: FileStore
    now: datetime

    def create(
        self,
        spec: DemoDossier,
        procedure: services.OfferedProcedure,
        draft: str,
        *,
        seed: int,
        poster_id: int | None,
    ) -> Dossier:
        calendar = self.calendar
        received_day = calendar.add_working_days(calendar.local_date(self.now), -spec.received)

        def moment(step_day: int, at: time) -> datetime:
            day = calendar.add_working_days(received_day, step_day)
            return datetime.combine(day, at, tzinfo=calendar.tz).astimezone(UTC)  # stored as UTC

        dossier = _file(
            self.session,
            commune=self.commune,
            procedure=procedure,
            draft=draft,
            seed=seed,
            poster_id=poster_id,
            keys=self.keys,
            calendar=calendar,
            store=self.store,
            now=moment(0, spec.at),
        )
        if poster_id is not None:
            for what, times in (
                ("scans", SCANS_PER_DOSSIER),
                ("forms_started", STARTS_PER_DOSSIER),
            ):
                for _ in range(times):
                    services.count_poster(
                        self.session, poster_id, self.commune.id, received_day, what
                    )
        for step in spec.steps:
            self.take(step, dossier, procedure.definition, draft, moment(step.day, step.at))
        return dossier

    def take(
        self, step: Step, dossier: Dossier, defn: ProcedureDefinition, draft: str, at: datetime
    ) -> None:
        if step.action == CITIZEN_SUPPLEMENT:
            _supplement(
                self.session,
                commune=self.commune,
                dossier=dossier,
                defn=defn,
                note=step.note,
                draft=f"{draft}-bo-sung",
                keys=self.keys,
                calendar=self.calendar,
                store=self.store,
                now=at,
            )
        elif step.action == APOLOGY:
            today = self.calendar.local_date(self.now)
            workspace.apologise(
                self.session,
                self.identity,
                dossier.code,
                expected_version=None,
                new_due=self.calendar.add_working_days(today, step.new_due_in).isoformat(),
                reason=step.note,
                keys=self.keys,
                calendar=self.calendar,
                now=at,
            )
        else:
            workspace.act(
                self.session,
                self.identity,
                dossier.code,
                step.action,
                expected_version=None,
                reason=step.note,
                keys=self.keys,
                calendar=self.calendar,
                now=at,
            )


def _file(
    session: Session,
    *,
    commune: Commune,
    procedure: services.OfferedProcedure,
    draft: str,
    seed: int,
    poster_id: int | None,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    store: FileStore,
    now: datetime,
) -> Dossier:
    """What the citizen's form does: papers first, then the answers checked and the dossier
    stored (kiosk.views.submit)."""
    defn = procedure.definition
    day = calendar.local_date(now)
    for fd in defn.fields:
        if fd.kind == FieldKind.FILE and fd.required:
            _attach(session, commune, draft, fd.name, fd.label.vi, keys, store, now)
    refs = services.file_refs(services.draft_papers(session, commune.id, draft), keys.sealing)
    result = validate(defn, sample_values(defn, today=day, seed=seed), refs, today=day)
    if result.errors:
        problems = "; ".join(f"{name}: {message.en}" for name, message in result.errors.items())
        raise DemoError(f"The sample answers of '{defn.code}' do not pass its form: {problems}")
    return services.submit(
        session,
        commune=commune,
        offered=procedure,
        cleaned=result.cleaned,
        draft=draft,
        poster_id=poster_id,
        lang="vi",
        keys=keys,
        calendar=calendar,
        now=now,
    ).dossier


def _supplement(
    session: Session,
    *,
    commune: Commune,
    dossier: Dossier,
    defn: ProcedureDefinition,
    note: str,
    draft: str,
    keys: KeyMaterial,
    calendar: WorkCalendar,
    store: FileStore,
    now: datetime,
) -> None:
    """The citizen's answer from the status page: a note and a new photo of the first paper."""
    first_file = next((fd for fd in defn.fields if fd.kind == FieldKind.FILE), None)
    if first_file is not None:
        _attach(session, commune, draft, first_file.name, first_file.label.vi, keys, store, now)
    refs = services.file_refs(services.draft_papers(session, commune.id, draft), keys.sealing)
    form = services.supplement_definition(defn)
    result = validate(form, {}, refs, today=calendar.local_date(now))
    services.submit_supplement(
        session,
        dossier=dossier,
        cleaned=result.cleaned,
        note=note,
        draft=draft,
        keys=keys,
        calendar=calendar,
        now=now,
    )


def _attach(
    session: Session,
    commune: Commune,
    draft: str,
    field_name: str,
    title: str,
    keys: KeyMaterial,
    store: FileStore,
    now: datetime,
) -> None:
    """A demo paper, through the same checks as a citizen's photo (core.uploads)."""
    accepted = inspect_upload(
        demo_paper(title), filename=f"{field_name}-mau.png", limits=UploadLimits()
    )
    services.accept_upload(
        session,
        commune=commune,
        draft=draft,
        field_name=field_name,
        accepted=accepted,
        store=store,
        keyring=keys.sealing,
        now=now,
    )


def demo_paper(title: str) -> bytes:
    """A PNG of a sheet that says plainly it is a demo paper (GIẤY TỜ MẪU, no legal value) and
    which paper it stands for, with grey lines for text: never mistaken for a real document."""
    width, height = 700, 990
    image = Image.new("RGB", (width, height), (250, 249, 244))
    draw = ImageDraw.Draw(image)
    big: ImageFont.FreeTypeFont | ImageFont.ImageFont
    small: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        fonts = find_fonts()
        big = ImageFont.truetype(str(fonts.bold_path), 34)
        small = ImageFont.truetype(str(fonts.regular_path), 24)
        heading, notice = "GIẤY TỜ MẪU", "Dữ liệu minh họa, không có giá trị pháp lý"
    except FontsMissing:
        big = small = ImageFont.load_default()
        heading, notice = "GIAY TO MAU", "Du lieu minh hoa, khong co gia tri phap ly"
    draw.rectangle((20, 20, width - 20, height - 20), outline=(120, 120, 120), width=3)
    draw.text((width // 2, 90), heading, font=big, fill=(165, 14, 14), anchor="mm")
    draw.text((width // 2, 140), title[:48], font=small, fill=(30, 30, 30), anchor="mm")
    draw.text((width // 2, 180), notice, font=small, fill=(90, 90, 90), anchor="mm")
    for y in range(250, height - 120, 42):
        draw.rectangle((70, y, width - (70 if y % 84 else 190), y + 10), fill=(205, 205, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
