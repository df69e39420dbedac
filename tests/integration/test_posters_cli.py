"""`flask --app wsgi posters create` and `posters pdf` against a real install.

The PDF is rasterised at 150 dpi with poppler's pdftoppm, every QR symbol on every page is decoded
with zxing-cpp, and the decoded URLs must be exactly the commune's active posters' URLs, each once.
pdftotext must read the procedure names back with their Vietnamese diacritics.
"""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zxingcpp
from flask import Flask
from PIL import Image

from core import services
from core.posters import poster_url, read_token, short_code
from storage.models import Poster
from storage.runtime import Runtime

SLUG = "nhuan-duc"


@pytest.fixture(scope="module")
def poppler() -> None:
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: sudo apt-get install -y poppler-utils")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _active(runtime: Runtime) -> dict[str, tuple[str, str, str]]:
    """{URL: (procedure name, place, short code)} of the commune's active posters."""
    out = {}
    with runtime.db.reading() as s:
        commune = services.commune_by_slug(s, SLUG)
        names = {p.code: p.name_vi for p in services.offered_procedures(s, commune)}
        for poster in services.active_posters(s, commune, datetime.now(UTC)):
            if poster.code in names:
                token = services.poster_token(poster, runtime.keys)
                url = poster_url(runtime.public_base_url, token)
                out[url] = (names[poster.code], poster.location, short_code(token))
    return out


def test_create_prints_the_url_of_a_new_genuine_poster(app: Flask, runtime: Runtime) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "posters",
            "create",
            "--commune",
            SLUG,
            "--procedure",
            "khai-sinh",
            "--location",
            "Cổng chợ Nhuận Đức",
        ]
    )
    assert result.exit_code == 0, result.output + result.stderr
    url = result.stdout.strip()
    assert url.startswith("http://kiosk.test/q/")
    poster_id = read_token(url.rsplit("/", 1)[1], runtime.keys.poster_keys)
    assert poster_id is not None
    with runtime.db.reading() as s:
        poster = s.get(Poster, poster_id)
        assert poster is not None
        assert (poster.code, poster.location) == ("khai-sinh", "Cổng chợ Nhuận Đức")
    assert "Short code:" in result.stderr
    assert url in _active(runtime)


def test_create_refuses_a_procedure_the_commune_does_not_offer(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["posters", "create", "--commune", SLUG, "--procedure", "no-such", "--location", "X Y"]
    )
    assert result.exit_code == 1
    assert "not a procedure offered" in result.stderr


@pytest.mark.parametrize("layout", ["poster", "sheet"])
def test_pdf_decodes_to_exactly_the_active_posters(
    app: Flask, runtime: Runtime, tmp_path: Path, poppler: None, layout: str
) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=[
            "posters",
            "create",
            "--commune",
            SLUG,
            "--procedure",
            "ket-hon",
            "--location",
            f"Nhà văn hóa ấp Bàu Tròn ({layout})",
        ]
    )
    assert created.exit_code == 0, created.stderr
    expected = _active(runtime)
    assert created.stdout.strip() in expected and len(expected) >= 6  # 5 demo posters + this

    out = tmp_path / "posters.pdf"
    result = runner.invoke(
        args=["posters", "pdf", "--commune", SLUG, "--out", str(out), "--layout", layout]
    )
    assert result.exit_code == 0, result.stderr
    assert f"Wrote {len(expected)} poster(s), layout {layout}" in result.stdout

    subprocess.run(["pdftoppm", "-r", "150", "-png", str(out), "page"], cwd=tmp_path, check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    per_page = 1 if layout == "poster" else 6
    assert len(pages) == -(-len(expected) // per_page)
    decoded = [
        barcode.text
        for page in pages
        for barcode in zxingcpp.read_barcodes(
            Image.open(page), formats=zxingcpp.BarcodeFormat.QRCode
        )
    ]
    assert Counter(decoded) == Counter(expected.keys())  # every active poster, once, nothing else

    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(out), "-"], check=True, capture_output=True, text=True
    ).stdout
    flat = " ".join(_nfc(text).split())
    assert "Nhuận Đức" in flat
    for name, location, code in expected.values():
        assert _nfc(name) in flat, name
        assert _nfc(location) in flat, location
        assert code in flat
    assert "Đăng ký khai sinh" in flat  # a name with its marks, not "Dang ky khai sinh"
