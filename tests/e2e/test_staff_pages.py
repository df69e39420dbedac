"""The staff side in a real browser on a desk screen (1280×900), on the demo install.

The demo official signs in with the keyboard, finds the demo dossiers in the queue, opens one
(the citizen's answers decrypted, the history, the signatures checked), approves it, and refuses
another (first without a reason, which is refused, then with one). A leader opens the report and
its printable version, printed to PDF by chromium. axe-core checks every page type; screenshots
go to out/screenshots/ for a person to look at.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from core import services
from core.demo import DEMO_DOSSIERS
from core.install import DEMO_COMMUNE
from procedures.samples import sample_values
from procedures.schema import FieldKind
from storage.runtime import Runtime

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "out" / "screenshots"
DESK = {"width": 1280, "height": 900}


@pytest.fixture()
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESK, locale="vi-VN")
    page = context.new_page()
    yield page
    context.close()


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}× e.g. {v['nodes'][0]['target']})"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def password_of(runtime: Runtime, username: str) -> str:
    saved = json.loads((runtime.instance_path / "demo-accounts.json").read_text())
    return str(saved[username]["password"])


def sign_in(page: Any, base: str, runtime: Runtime, username: str) -> None:
    """With the keyboard only: type, Tab, type, Enter."""
    page.goto(f"{base}/can-bo/dang-nhap")
    page.locator("#f-username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password_of(runtime, username))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/can-bo/(ho-so|bao-cao)$"))


def aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives UTC without a zone


def demo_dossier(runtime: Runtime, procedure: str, state: str) -> tuple[str, str]:
    """The code of the demo dossier of `procedure` in `state`, and the applicant's name exactly
    as the demo typed it (recomputed from the sample, not read back from the database)."""
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, DEMO_COMMUNE.slug)
        for number, spec in enumerate(DEMO_DOSSIERS, start=1):
            if spec.procedure != procedure:
                continue
            dossier = services.find_by_draft(s, commune, spec.draft(number))
            if dossier is None or dossier.state != state:
                continue
            defn = runtime.catalog.get(procedure)
            assert defn is not None
            received = runtime.calendar.local_date(aware(dossier.received_at))
            typed = sample_values(defn, today=received, seed=number)
            name_field = next(f.name for f in defn.fields if f.kind == FieldKind.PERSON_NAME)
            return dossier.code, typed[name_field]
    raise AssertionError(f"no demo dossier of {procedure} in state {state}")


def test_an_official_works_the_queue(desk: Any, live_server: str, runtime: Runtime) -> None:
    page = desk
    to_approve, applicant = demo_dossier(runtime, "xac-nhan-tinh-trang-hon-nhan", "processing")
    to_refuse, _ = demo_dossier(runtime, "giam-ho", "received")

    page.goto(f"{live_server}/can-bo/dang-nhap")
    assert not serious(page), "accessibility: sign-in"
    shot(page, "staff-login.png")
    sign_in(page, live_server, runtime, "nhuanduc.hotich")

    # The queue: the demo dossiers, the most urgent first, the overdue one marked in words.
    assert page.url.endswith("/can-bo/ho-so")
    header = page.locator("header ul.areas").inner_text()
    assert "Hồ sơ" in header and "Lệ phí" in header and "Người dùng" not in header
    queue = page.locator("table.queue").inner_text()
    assert to_approve in queue and to_refuse in queue
    overdue_row = page.locator("table.queue tr.overdue").first.inner_text()
    assert "Quá hạn" in overdue_row
    assert not serious(page), "accessibility: the queue"
    shot(page, "staff-queue.png")

    # Open a dossier with the keyboard: decrypted answers, papers, history, signatures.
    page.get_by_role("link", name=to_approve).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/ho-so/{to_approve}$"))
    main = page.locator("main").inner_text()
    assert "Chữ ký số hợp lệ" in main
    assert applicant in main
    assert re.search(r"\b\d{2}/\d{2}/\d{4}\b", page.locator("table.data").inner_text())
    assert "Nhận xử lý" in page.locator("ol.history").inner_text()
    assert page.locator("ul.files a").count() >= 1
    assert page.locator("[aria-current=page]", has_text="Hồ sơ").count() == 1
    assert not serious(page), "accessibility: a dossier"
    shot(page, "staff-dossier.png")

    page.get_by_role("button", name="Phê duyệt").click()
    page.wait_for_url(re.compile(rf"/ho-so/{to_approve}$"))
    assert "Đã phê duyệt hồ sơ." in page.locator("p.notice").inner_text()
    assert "Đã có kết quả" in page.locator("dl.facts").inner_text()
    assert "Phê duyệt" in page.locator("ol.history").inner_text()
    assert page.get_by_role("button", name="Trả kết quả").is_visible()

    # Refuse another: without a reason it is refused, and says so beside the box.
    page.goto(f"{live_server}/can-bo/ho-so/{to_refuse}")
    page.get_by_role("button", name="Từ chối").click()
    error = page.locator("#f-refuse-reason-error")
    assert error.is_visible() and "lý do" in error.inner_text()
    assert page.locator("#f-refuse-reason").get_attribute("aria-invalid") == "true"
    assert page.locator("header [aria-current=page]").inner_text() == "Hồ sơ"
    assert not serious(page), "accessibility: a decision with an error"
    shot(page, "staff-refuse-error.png")
    reason = "Giấy tờ nộp kèm không phải văn bản cử người giám hộ. Xin nộp lại kèm văn bản cử."
    page.locator("#f-refuse-reason").fill(reason)
    page.get_by_role("button", name="Từ chối").click()
    page.wait_for_url(re.compile(rf"/ho-so/{to_refuse}$"))
    assert "Đã từ chối hồ sơ" in page.locator("p.notice").inner_text()
    assert reason in page.locator("ol.history").inner_text()
    assert page.get_by_role("button", name="Từ chối").count() == 0

    # Sign out from the header, with the keyboard.
    page.get_by_role("button", name="Đăng xuất").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/can-bo/dang-nhap$"))
    page.goto(f"{live_server}/can-bo/ho-so")
    assert "/can-bo/dang-nhap" in page.url


def test_a_leader_reads_the_report_and_prints_it(
    desk: Any, live_server: str, runtime: Runtime
) -> None:
    page = desk
    sign_in(page, live_server, runtime, "nhuanduc.lanhdao")
    page.get_by_role("link", name="Báo cáo").click()
    page.wait_for_url(re.compile(r"/can-bo/bao-cao$"))
    total = page.locator("table.report tr", has_text="Tổng cộng").first.inner_text()
    figures = [int(n) for n in re.findall(r"(?<![\d,])\d+(?![\d,%])", total)]
    assert len(figures) == 5 and figures[1] > 0, total  # in progress now: the demo is there
    assert not serious(page), "accessibility: the report"
    shot(page, "staff-report.png")

    page.get_by_role("link", name="Bản in").click()
    page.wait_for_url(re.compile(r"/can-bo/bao-cao/in"))
    assert not serious(page), "accessibility: the printable report"
    pdf = page.pdf(format="A4", print_background=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "staff-report.pdf").write_bytes(pdf)
    reader = PdfReader(io.BytesIO(pdf))
    # pypdf splits some Vietnamese letters from their neighbours: compare without spaces.
    text = "".join("".join(p.extract_text() for p in reader.pages).split())
    assert 1 <= len(reader.pages) <= 2
    assert "BÁOCÁOTÌNHHÌNHGIẢIQUYẾT" in text and "Tổngcộng" in text and "XÃNHUẬNĐỨC" in text
    assert "Inbáocáo" not in text  # the print button is not printed
    assert "Đăngxuất" not in text  # nor any navigation
    if shutil.which("pdftoppm"):
        subprocess.run(  # noqa: S603 - fixed arguments, a file this test wrote
            [
                "pdftoppm",
                "-png",
                "-r",
                "70",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(SCREENSHOTS / "staff-report.pdf"),
                str(SCREENSHOTS / "staff-report-pdf"),
            ],
            check=True,
        )
        assert (SCREENSHOTS / "staff-report-pdf.png").stat().st_size > 10_000
