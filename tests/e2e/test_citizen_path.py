"""The citizen's whole path in a real browser on a phone-sized screen.

Open a poster's URL, fill in the birth registration with the keyboard, make a mistake, see the
Vietnamese error with everything typed kept, fix it, attach a photo, get the receipt, and find the
dossier on the status page. axe-core checks the form, its error state and the receipt.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from core import services
from procedures.samples import sample_values
from procedures.schema import FieldKind
from storage.runtime import Runtime

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "out" / "screenshots"


def _poster_url(runtime: Runtime, base: str, code: str = "khai-sinh") -> str:
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, "nhuan-duc")
        poster = next(
            p for p in services.active_posters(s, commune, datetime.now(UTC)) if p.code == code
        )
        token = services.poster_token(poster, runtime.keys)
    return f"{base}/q/{token}"


def _photo(tmp_path: Path) -> Path:
    img = Image.new("RGB", (1600, 1200), (235, 230, 220))
    for y in range(100, 1100, 60):  # lines of "text" on a paper
        img.paste((40, 40, 40), (120, y, 1480, y + 14))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    path = tmp_path / "giay-chung-sinh.jpg"
    path.write_bytes(buf.getvalue())
    return path


def _axe(page: object) -> list[dict]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)  # type: ignore[arg-type]
    violations = results.response["violations"]
    return [v for v in violations if v.get("impact") in ("serious", "critical")]


def _fill(page: object, defn: object, values: dict[str, str]) -> None:
    """Type every value with the keyboard, field by field, as a person would."""
    for fd in defn.fields:  # type: ignore[attr-defined]
        if fd.name not in values:
            continue
        locator = page.locator(f"#f-{fd.name}")  # type: ignore[attr-defined]
        if not locator.is_visible():
            continue
        if fd.kind == FieldKind.SELECT:
            locator.focus()
            locator.select_option(values[fd.name])
        elif fd.kind == FieldKind.CHECKBOX:
            locator.focus()
            page.keyboard.press("Space")  # type: ignore[attr-defined]
        else:
            locator.click()
            page.keyboard.press("Control+A")  # type: ignore[attr-defined]
            page.keyboard.type(values[fd.name])  # type: ignore[attr-defined]


def test_birth_registration_from_a_poster_to_the_status_page(
    phone: object, live_server: str, runtime: Runtime, tmp_path: Path
) -> None:
    page = phone
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    defn = runtime.catalog.get("khai-sinh")
    assert defn is not None
    values = sample_values(defn, today=datetime.now(UTC).date(), seed=11)
    phone_field = next(f.name for f in defn.fields if f.kind == FieldKind.PHONE)
    right_phone = values[phone_field]
    values[phone_field] = "028 3812 3456"  # a landline: the mistake

    page.goto(_poster_url(runtime, live_server))  # type: ignore[attr-defined]
    body = page.inner_text("body")  # type: ignore[attr-defined]
    assert "Xã Nhuận Đức" in body and "Đăng ký khai sinh" in body
    assert "OTP" in body
    assert not _axe(page), "accessibility: the form"
    _fill(page, defn, values)
    page.locator("#f-consent").check()  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOTS / "form-filled.png"), full_page=True)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Gửi hồ sơ").click()  # type: ignore[attr-defined]

    # The mistake comes back in Vietnamese, beside the field and in the summary, values kept.
    summary = page.locator("#error-summary")  # type: ignore[attr-defined]
    assert summary.is_visible()
    error = page.locator(f"#f-{phone_field}-error").inner_text()  # type: ignore[attr-defined]
    assert "số" in error.lower() and "di động" in error.lower()
    for fd in defn.fields:
        if fd.name in values and fd.kind not in (
            FieldKind.SELECT,
            FieldKind.CHECKBOX,
            FieldKind.FILE,
        ):
            kept = page.locator(f"#f-{fd.name}").input_value()  # type: ignore[attr-defined]
            assert kept == values[fd.name], fd.name
    assert not _axe(page), "accessibility: the error state"
    page.screenshot(path=str(SCREENSHOTS / "form-error.png"), full_page=True)  # type: ignore[attr-defined]

    # Fix it with the keyboard, attach the photo, send.
    page.locator(f"#f-{phone_field}").click()  # type: ignore[attr-defined]
    page.keyboard.press("Control+A")  # type: ignore[attr-defined]
    page.keyboard.type(right_phone)  # type: ignore[attr-defined]
    file_field = next(f.name for f in defn.fields if f.kind == FieldKind.FILE)
    page.locator(f"#f-{file_field}").set_input_files(str(_photo(tmp_path)))  # type: ignore[attr-defined]
    if not page.locator("#f-consent").is_checked():  # type: ignore[attr-defined]
        page.locator("#f-consent").check()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Gửi hồ sơ").click()  # type: ignore[attr-defined]

    page.wait_for_url(re.compile(r"/bien-nhan$"))  # type: ignore[attr-defined]
    receipt = page.inner_text("main")  # type: ignore[attr-defined]
    assert "Đã nhận hồ sơ" in receipt
    code = page.locator("dd.code").first.inner_text().strip()  # type: ignore[attr-defined]
    secret = page.locator("dd.code").nth(1).inner_text().replace(" ", "")  # type: ignore[attr-defined]
    assert re.fullmatch(r"\d{5}-\d{6}-\d{4}", code)
    for typed in (
        right_phone,
        values[next(f.name for f in defn.fields if f.kind == FieldKind.CCCD)],
    ):
        assert typed not in receipt  # nothing personal on the receipt
    assert not _axe(page), "accessibility: the receipt"
    page.screenshot(path=str(SCREENSHOTS / "receipt.png"), full_page=True)  # type: ignore[attr-defined]

    # The signed receipt downloads and verifies.
    with page.expect_download() as dl:  # type: ignore[attr-defined]
        page.get_by_text("Tải biên nhận có chữ ký số").click()  # type: ignore[attr-defined]
    data = json.loads(Path(dl.value.path()).read_text())
    assert data["payload"]["code"] == code

    # The status page, as a stranger with only the paper would reach it.
    page.goto(f"{live_server}/tra-cuu")  # type: ignore[attr-defined]
    page.locator("#f-ma").fill(code)  # type: ignore[attr-defined]
    page.locator("#f-k").fill(secret)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Tra cứu").click()  # type: ignore[attr-defined]
    status = page.inner_text("main")  # type: ignore[attr-defined]
    assert code in status and "Đã tiếp nhận" in status
    assert right_phone not in status
    page.screenshot(path=str(SCREENSHOTS / "status.png"), full_page=True)  # type: ignore[attr-defined]
