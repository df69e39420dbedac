"""Acting as a citizen through the Flask test client: open a form, fill it, send it.

Every CCCD and phone number sent through here is remembered, and the suite checks at the end that
none of them appears in clear in the database, the logs or the uploads (tests/conftest.py).
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

from flask.testing import FlaskClient
from PIL import Image

from core.services import CONSENT_VERSION
from procedures.samples import sample_values
from procedures.schema import FieldKind, ProcedureDefinition

SUBMITTED_SECRETS: set[str] = set()  # CCCD and phone numbers typed in by tests


def remember(defn: ProcedureDefinition, values: dict[str, str]) -> None:
    for fd in defn.fields:
        digits = re.sub(r"\D", "", values.get(fd.name, ""))
        # Only what could be a real number (12-digit CCCD, 9-digit CMND, 10-digit phone):
        # fuzzed junk like "1" or "9999…" would match anywhere.
        if fd.kind in (FieldKind.CCCD, FieldKind.PHONE) and len(digits) in (9, 10, 12):
            if len(set(digits)) > 3:
                SUBMITTED_SECRETS.add(digits)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def photo(
    size: tuple[int, int] = (1200, 900), color: tuple[int, int, int] = (230, 225, 210)
) -> bytes:
    img = Image.new("RGB", size, color)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def open_form(client: FlaskClient, code: str, slug: str = "nhuan-duc") -> tuple[str, str, str]:
    page = client.get(f"/x/{slug}/{code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return html, hidden(html, "csrf_token"), hidden(html, "draft")


def valid_values(defn: ProcedureDefinition, seed: int = 1) -> dict[str, str]:
    return sample_values(defn, today=date.today(), seed=seed)


def post_form(
    client: FlaskClient,
    defn: ProcedureDefinition,
    values: dict[str, str],
    *,
    csrf: str,
    draft: str,
    files: dict[str, list[tuple[bytes, str]]] | None = None,
    consent: bool = True,
    slug: str = "nhuan-duc",
    extra: dict[str, Any] | None = None,
) -> Any:
    remember(defn, values)
    data: dict[str, Any] = {**values, "csrf_token": csrf, "draft": draft}
    if consent:
        data["consent"] = CONSENT_VERSION
    for name, items in (files or {}).items():
        data[name] = [(io.BytesIO(content), filename) for content, filename in items]
    data.update(extra or {})
    return client.post(f"/x/{slug}/{defn.code}", data=data, content_type="multipart/form-data")


def file_fields(defn: ProcedureDefinition) -> list[str]:
    return [f.name for f in defn.fields if f.kind == FieldKind.FILE and f.required]


def submit(
    client: FlaskClient, defn: ProcedureDefinition, seed: int = 1, slug: str = "nhuan-duc"
) -> tuple[str, str]:
    """File a valid dossier; return (dossier code, secret) as the receipt shows them."""
    _, csrf, draft = open_form(client, defn.code, slug)
    values = valid_values(defn, seed)
    files = {name: [(photo(), "giay-to.jpg")] for name in file_fields(defn)}
    response = post_form(client, defn, values, csrf=csrf, draft=draft, files=files, slug=slug)
    assert response.status_code == 303, response.get_data(as_text=True)[:3000]
    receipt = client.get(response.headers["Location"]).get_data(as_text=True)
    codes = re.findall(r'<dd class="code">([^<]+)</dd>', receipt)
    return codes[0].strip(), codes[1].replace(" ", "").strip()
