"""The VietQR on a real receipt page scans to the right transfer: amount, account and dossier code.

The dossier is filed through the citizen's form like any other; the QR is taken from the HTML the
citizen's phone would get, painted as a browser paints SVG, and read with zxing-cpp.
"""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime

import zxingcpp
from flask.testing import FlaskClient
from PIL import Image

from core import services
from core.reconciliation import codes_in
from core.vietqr import parse_payload
from procedures.samples import sample_values
from procedures.schema import FieldKind
from storage.runtime import Runtime
from tests.qr_raster import rasterise_svg

SLUG = "nhuan-duc"
PROCEDURE = "trich-luc-ho-tich"  # 8,000 đ per copy (domain.md §2)


def _hidden(page: str, name: str) -> str:
    m = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert m, f"no hidden {name} on the form"
    return html.unescape(m[1])


def _png() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 200, 190)).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def file_dossier(client: FlaskClient, runtime: Runtime, copies: int = 2) -> str:
    """File the extract-copy procedure through the form; returns the receipt page's HTML."""
    form_page = client.get(f"/x/{SLUG}/{PROCEDURE}").get_data(as_text=True)
    defn = runtime.catalog.get(PROCEDURE)
    assert defn is not None and defn.fee.quantity_field
    today = datetime.now(UTC).astimezone(runtime.calendar.tz).date()
    data: dict[str, object] = dict(sample_values(defn, today=today, seed=6))
    data[defn.fee.quantity_field] = str(copies)
    for fd in defn.fields:
        if fd.kind == FieldKind.FILE and fd.required:
            data[fd.name] = (_png(), "giay-to.png")
    data["csrf_token"] = _hidden(form_page, "csrf_token")
    data["draft"] = _hidden(form_page, "draft")
    data["consent"] = services.CONSENT_VERSION
    response = client.post(f"/x/{SLUG}/{PROCEDURE}", data=data, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    receipt = client.get(response.headers["Location"])
    assert receipt.status_code == 200
    return receipt.get_data(as_text=True)


def payment_svg(page: str) -> str:
    """The SVG inside the payment card (not the status QR next to it)."""
    start = page.find('id="thanh-toan"')
    assert start >= 0, "the receipt has no payment card"
    end = page.find('<div class="card"', start)
    svg = re.search(r"<svg\b.*?</svg>", page[start : end if end >= 0 else None], re.S)
    assert svg, "the payment card has no QR"
    return svg[0]


def dossier_code(page: str) -> str:
    m = re.search(r'<dd class="code">([0-9]{5}-[0-9]{6}-[0-9]{4})</dd>', page)
    assert m, "no dossier code on the receipt"
    return m[1]


def test_receipt_qr_scans_to_the_fee_and_the_dossier_code(
    client: FlaskClient, runtime: Runtime
) -> None:
    page = file_dossier(client, runtime, copies=2)
    code = dossier_code(page)

    image = rasterise_svg(payment_svg(page), scale=4)
    barcodes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(barcodes) == 1
    payload = parse_payload(barcodes[0].text)  # raises unless the CRC and structure are right

    assert payload.amount == 16_000  # 2 copies × 8,000 đ
    assert payload.dynamic
    assert (payload.bin, payload.account) == ("970405", "1700201234567")  # the demo's account
    assert payload.purpose is not None and codes_in(payload.purpose) == [code]
    # What the citizen checks in the banking app is printed beside the code, in words too.
    assert "UBND XA NHUAN DUC" in page
    assert "16.000 đ" in page and "mười sáu nghìn đồng" in page


def test_one_copy_costs_one_copy(client: FlaskClient, runtime: Runtime) -> None:
    page = file_dossier(client, runtime, copies=1)
    image = rasterise_svg(payment_svg(page), scale=4)
    [barcode] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    payload = parse_payload(barcode.text)
    assert payload.amount == 8_000
    assert payload.purpose is not None and codes_in(payload.purpose) == [dossier_code(page)]


def test_the_status_page_shows_the_same_code_until_the_fee_is_paid(
    client: FlaskClient, runtime: Runtime
) -> None:
    receipt = file_dossier(client, runtime, copies=2)
    code = dossier_code(receipt)
    m = re.search(r'<dd class="code">([A-Z0-9]{5}) ([A-Z0-9]{5})</dd>', receipt)
    assert m, "no secret on the receipt"
    looked_up = client.get("/tra-cuu", query_string={"ma": code, "k": m[1] + m[2]})
    assert looked_up.status_code == 303
    status = client.get(looked_up.headers["Location"]).get_data(as_text=True)
    image = rasterise_svg(payment_svg(status), scale=4)
    [on_status] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    image = rasterise_svg(payment_svg(receipt), scale=4)
    [on_receipt] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert on_status.text == on_receipt.text
    assert parse_payload(on_status.text).amount == 16_000
