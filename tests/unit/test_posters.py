"""Poster tokens, short codes, QR matrices and their SVG, PNG and PDF renderings."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from core.poster_print import (
    FontsMissing,
    Layout,
    PosterPrint,
    anti_scam_text,
    find_fonts,
    posters_pdf,
)
from core.posters import (
    ALPHABET,
    MAX_POSTER_ID,
    QUIET_ZONE,
    make_token,
    official_host,
    parse_short_code,
    poster_key_id,
    poster_url,
    qr_matrix,
    qr_png,
    qr_svg,
    read_short_code,
    read_token,
    short_code,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BASES = (
    "https://nhuanduc.tphcm.gov.vn",
    "http://127.0.0.1:8000",
    "https://xanhuanduc.hochiminhcity.gov.vn",
    "http://localhost:8000/",
)
IDS = (0, 1, 1023, 1024, 32_767, 1_000_000, MAX_POSTER_ID)
LEVELS = "LMQH"


# --- tokens ---------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_POSTER_ID))
def test_token_round_trip(poster_id: int) -> None:
    token = make_token(poster_id, KEY)
    assert re.fullmatch(f"[{ALPHABET}]{{16,22}}", token)
    assert read_token(token, [KEY]) == poster_id
    assert read_token(token, {poster_key_id(KEY): KEY}) == poster_id


@pytest.mark.parametrize("poster_id", [0, 7, 1024, 1_000_000])
def test_altering_any_single_character_is_refused(poster_id: int) -> None:
    token = make_token(poster_id, KEY, key_id="A")
    keys = {"A": KEY, "B": OTHER_KEY}
    assert read_token(token, keys) == poster_id
    for position, original in enumerate(token):
        for replacement in ALPHABET + "0O1Ia-_ ":
            if replacement != original:
                altered = token[:position] + replacement + token[position + 1 :]
                assert read_token(altered, keys) is None, (position, replacement)
        assert read_token(token[:position] + token[position + 1 :], keys) is None
        assert read_token(token[:position] + "Z" + token[position:], keys) is None
    assert read_token(token.lower(), keys) is None
    assert read_token(token + "2", keys) is None


def test_wrong_key_is_refused() -> None:
    token = make_token(42, KEY, key_id="A")
    assert read_token(token, {"A": OTHER_KEY}) is None
    assert read_token(token, {"B": KEY}) is None
    assert read_token(make_token(42, KEY), [OTHER_KEY]) is None
    assert read_token(token, {}) is None


def test_posters_signed_with_a_retired_key_still_verify() -> None:
    old = make_token(5, OTHER_KEY, key_id="A")
    new = make_token(6, KEY, key_id="B")
    assert old[0] == "A" and new[0] == "B"
    keys = {"A": OTHER_KEY, "B": KEY}
    assert (read_token(old, keys), read_token(new, keys)) == (5, 6)
    # a plain list: ids derived from the keys themselves
    assert read_token(make_token(5, OTHER_KEY), [KEY, OTHER_KEY]) == 5
    # once the old key is dropped, its posters stop working
    assert read_token(old, {"B": KEY}) is None


def test_keys_sharing_a_derived_id_both_work() -> None:
    keys = [bytes([n]) * 32 for n in range(40)]  # 40 keys, 32 ids: some ids repeat
    by_id: dict[str, list[bytes]] = {}
    for key in keys:
        by_id.setdefault(poster_key_id(key), []).append(key)
    shared = next(group for group in by_id.values() if len(group) > 1)
    for n, key in enumerate(shared):
        assert read_token(make_token(n, key), keys) == n


@given(st.text(max_size=40))
def test_reading_arbitrary_text_never_raises(text: str) -> None:
    # a random string is a valid token once in 2^65 tries: never, in practice
    assert read_token(text, [KEY]) is None
    assert read_short_code(text, [KEY]) is None
    assert parse_short_code(text) is None or len(text) >= 10


@pytest.mark.parametrize(
    ("poster_id", "key", "key_id"),
    [(-1, KEY, None), (MAX_POSTER_ID + 1, KEY, None), (1, b"short", None), (1, KEY, "0"),
     (1, KEY, "AB"), (1, KEY, "a")],
)  # fmt: skip
def test_make_token_refuses_bad_input(poster_id: int, key: bytes, key_id: str | None) -> None:
    with pytest.raises(ValueError):
        make_token(poster_id, key, key_id=key_id)


def test_urls_and_hosts() -> None:
    assert poster_url("http://127.0.0.1:8000/", "ABC") == "http://127.0.0.1:8000/q/ABC"
    assert official_host("https://NhuanDuc.tphcm.gov.vn/") == "nhuanduc.tphcm.gov.vn"
    assert official_host("http://127.0.0.1:8000") == "127.0.0.1:8000"
    with pytest.raises(ValueError):
        official_host("nhuanduc.gov.vn")


# --- short codes ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_POSTER_ID))
def test_short_code_is_a_verifiable_prefix_of_the_token(poster_id: int) -> None:
    token = make_token(poster_id, KEY)
    code = short_code(token)
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{1,4})+", code)
    assert token.startswith(code.replace("-", ""))
    assert 10 <= len(code.replace("-", "")) <= 16
    assert parse_short_code(code) == code
    assert read_short_code(code, [KEY]) == poster_id
    assert read_short_code(code, [OTHER_KEY]) is None


def test_short_code_length_for_a_commune_sized_install() -> None:
    assert len(short_code(make_token(1023, KEY)).replace("-", "")) == 10
    assert len(short_code(make_token(32_767, KEY)).replace("-", "")) == 11


def test_parse_short_code_forgives_how_people_type() -> None:
    token = make_token(1234, KEY)
    code = short_code(token)
    compact = code.replace("-", "")
    typed = [
        compact,
        compact.lower(),
        " ".join(compact),
        f"  {code.lower()}  ",
        code.replace("-", " – "),
        code.replace("-", "."),
        "".join(chr(ord(c) + 0xFEE0) for c in compact),  # full-width, from some phone keyboards
    ]
    for text in typed:
        assert parse_short_code(text) == code, text
        assert read_short_code(text, [KEY]) == 1234, text


BAD_CODES = ["", "K7P3", "4ZZU-794K-V0", "4ZZU-794K-VO", "4ZZU-I94K-VG", "4ZZU-194K-VG",
             "4ZZU-794K-VĐ", "4ZZU/794K/VG!", "422W-FF65-WLH", "4" * 40]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_CODES)
def test_parse_short_code_refuses_what_cannot_be_a_code(bad: str) -> None:
    assert parse_short_code(bad) is None


def test_altering_any_character_of_a_short_code_is_refused() -> None:
    compact = short_code(make_token(777, KEY)).replace("-", "")
    assert read_short_code(compact, [KEY]) == 777
    for position, original in enumerate(compact):
        for replacement in ALPHABET:
            if replacement != original:
                altered = compact[:position] + replacement + compact[position + 1 :]
                assert read_short_code(altered, [KEY]) is None, (position, replacement)


def test_short_code_of_a_non_token_is_an_error() -> None:
    with pytest.raises(ValueError):
        short_code("not-a-token")


# --- QR matrices ----------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_every_poster_url_fits_version_5_at_m_or_better(base: str) -> None:
    for poster_id in IDS:
        url = poster_url(base, make_token(poster_id, KEY))
        matrix = qr_matrix(url)
        assert matrix.version <= 5, url
        assert matrix.error in "MQH", url
        assert matrix.size == 17 + 4 * matrix.version
        assert all(len(row) == matrix.size for row in matrix.modules)


def test_strongest_error_correction_that_fits_is_chosen() -> None:
    short = qr_matrix("http://127.0.0.1:8000/q/" + make_token(5, KEY))
    assert (short.version, short.error) == (5, "H")
    gov = qr_matrix("https://nhuanduc.tphcm.gov.vn/q/" + make_token(5, KEY))
    assert gov.error == "Q"
    assert qr_matrix("http://a.vn/q/x", min_error="L").error == "H"


def test_long_urls_fall_back_to_a_larger_version_at_the_minimum_level() -> None:
    url = "https://example.gov.vn/" + "x" * 90  # 113 bytes
    matrix = qr_matrix(url)
    assert (matrix.error, matrix.version) == ("M", 7)  # v6-M holds 106 bytes, v7-M 122
    assert qr_matrix(url, min_error="H").error == "H"
    with pytest.raises(ValueError):
        qr_matrix(url, min_error="X")  # type: ignore[arg-type]  # a typo is refused at run time
    with pytest.raises(ValueError):
        qr_matrix("x" * 3000)


def test_runs_cover_exactly_the_dark_modules() -> None:
    matrix = qr_matrix(poster_url(BASES[0], make_token(9, KEY)))
    painted = {(y, x) for y, x0, w in matrix.runs for x in range(x0, x0 + w)}
    dark = {(y, x) for y, row in enumerate(matrix.modules) for x, d in enumerate(row) if d}
    assert painted == dark
    assert all(not matrix.modules[y][x0 + w] for y, x0, w in matrix.runs if x0 + w < matrix.size)


def _modules_seen(image: Image.Image, scale: int, size: int) -> tuple[tuple[bool, ...], ...]:
    """Reads each module back from the centre of its square: True where it is dark."""
    grey = image.convert("L")
    centre = QUIET_ZONE * scale + scale // 2
    return tuple(
        tuple(grey.getpixel((centre + x * scale, centre + y * scale)) == 0 for x in range(size))
        for y in range(size)
    )


def _decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode))


@pytest.mark.parametrize("base", BASES[:2])
def test_png_decodes_to_exactly_the_url(base: str) -> None:
    url = poster_url(base, make_token(31_337, KEY))
    matrix = qr_matrix(url)
    image = Image.open(io.BytesIO(qr_png(matrix, scale=5)))
    side = (matrix.size + 2 * QUIET_ZONE) * 5
    assert image.format == "PNG" and image.mode == "1" and image.size == (side, side)
    grey = image.convert("L")
    margin = QUIET_ZONE * 5
    assert grey.crop((0, 0, side, margin)).getextrema() == (255, 255)  # quiet zone
    assert grey.crop((0, 0, margin, side)).getextrema() == (255, 255)
    assert _modules_seen(image, 5, matrix.size) == matrix.modules
    decoded = _decode(image)
    assert [(b.text, b.ec_level) for b in decoded] == [(url, matrix.error)]


def _rasterise_svg(svg: str, scale: int) -> Image.Image:
    """Paints our SVG's one path (M x y h w v1 h-w z …) onto white, as a browser would."""
    root = ET.fromstring(svg)  # noqa: S314 - the SVG this test just rendered, not outside input
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("shape-rendering") == "crispEdges"
    side = int(root.get("viewBox", "").split()[2])
    paths = root.findall(f"{ns}path")
    assert len(paths) == 1
    image = Image.new("L", (side * scale, side * scale), 255)
    draw = ImageDraw.Draw(image)
    commands = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", paths[0].get("d", ""))
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in commands) == paths[0].get("d")
    for x, y, w, w2 in commands:
        assert w == w2
        left, top = int(x) * scale, int(y) * scale
        draw.rectangle((left, top, left + int(w) * scale - 1, top + scale - 1), fill=0)
    return image


def test_svg_is_one_path_that_decodes_to_exactly_the_url() -> None:
    url = poster_url(BASES[0], make_token(2024, KEY))
    matrix = qr_matrix(url)
    svg = qr_svg(matrix, module_px=6)
    side = matrix.size + 2 * QUIET_ZONE
    assert f'width="{side * 6}"' in svg and f'viewBox="0 0 {side} {side}"' in svg
    image = _rasterise_svg(svg, scale=4)
    assert image.crop((0, 0, side * 4, QUIET_ZONE * 4)).getextrema() == (255, 255)
    assert _modules_seen(image, 4, matrix.size) == matrix.modules
    assert [b.text for b in _decode(image)] == [url]


# --- print ----------------------------------------------------------------------------------

PROCEDURES = (
    ("Đăng ký khai sinh", "Birth registration", "Bảng tin UBND xã"),
    ("Xác nhận tình trạng hôn nhân", "Certification of marital status", "Công viên ấp 3"),
    ("Đăng ký kết hôn", None, "Trạm y tế xã"),
    ("Chứng thực bản sao từ bản chính", "Certified copy", "Nhà văn hóa ấp Bàu Tròn"),
    ("Thay đổi, cải chính, bổ sung thông tin hộ tịch", None, "Chợ Nhuận Đức"),
    ("Cấp bản sao trích lục hộ tịch", "Copy of a civil status extract", "Bưu điện xã"),
    ("Đăng ký khai tử", "Death registration", "Bảng tin ấp 5"),
)


def _posters(base: str = "https://nhuanduc.tphcm.gov.vn") -> list[PosterPrint]:
    out = []
    for n, (name_vi, name_en, place) in enumerate(PROCEDURES, start=100):
        token = make_token(n, KEY)
        out.append(
            PosterPrint(
                # one name arrives decomposed (e + combining marks), as some keyboards send it
                procedure_name_vi=unicodedata.normalize("NFD", name_vi) if n == 101 else name_vi,
                procedure_name_en=name_en,
                commune_name="Xã Nhuận Đức",
                province_name="Thành phố Hồ Chí Minh",
                location=place,
                url=poster_url(base, token),
                short_code=short_code(token),
                official_host=official_host(base),
                fee_line="Lệ phí: miễn phí",
                processing_line="Thời hạn giải quyết: trong ngày",
            )
        )
    return out


@pytest.fixture(scope="module")
def poppler() -> None:
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: sudo apt-get install -y poppler-utils")


@pytest.mark.parametrize(("layout", "pages", "min_qr_cm"), [("poster", 7, 9.0), ("sheet", 2, 4.0)])
def test_pdf_scans_and_reads_back(
    layout: Layout, pages: int, min_qr_cm: float, tmp_path: Path, poppler: None
) -> None:
    posters = _posters()
    pdf = posters_pdf(posters, layout=layout, fonts=find_fonts())
    assert posters_pdf(posters, layout=layout, fonts=find_fonts()) == pdf  # reproducible bytes
    (tmp_path / "p.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-png", "p.pdf", "page"], cwd=tmp_path, check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages
    found = [b for path in images for b in _decode(Image.open(path))]
    urls = [b.text for b in found]
    assert len(urls) == 7 and set(urls) == {p.url for p in posters}
    for barcode in found:
        top_left, top_right = barcode.position.top_left, barcode.position.top_right
        assert (top_right.x - top_left.x) / 150 * 2.54 >= min_qr_cm - 0.1

    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "p.pdf", "-"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    flat = " ".join(text.split())
    for poster in posters:
        name = unicodedata.normalize("NFC", poster.procedure_name_vi)
        assert name in flat
        assert poster.short_code in flat
        assert poster.location in flat
    assert "Đăng ký khai sinh" in flat and "Xác nhận tình trạng hôn nhân" in flat
    if layout == "poster":
        for poster in posters:
            assert anti_scam_text(poster) in flat
        assert "1. Mở camera điện thoại, quét mã QR" in flat
        assert "ỦY BAN NHÂN DÂN XÃ NHUẬN ĐỨC" in flat


def test_anti_scam_text_names_the_unit_host_and_code() -> None:
    poster = _posters()[0]
    assert anti_scam_text(poster) == (
        "Cán bộ xã KHÔNG BAO GIỜ hỏi mã OTP, mật khẩu hay yêu cầu chuyển tiền vào tài khoản "
        "cá nhân. Kiểm tra địa chỉ trang web: nhuanduc.tphcm.gov.vn. Mã áp phích: "
        f"{poster.short_code} — kiểm tra tại nhuanduc.tphcm.gov.vn/kiem-tra"
    )
    ward = dataclasses.replace(poster, commune_name="Phường Bến Thành")
    assert anti_scam_text(ward).startswith("Cán bộ phường KHÔNG BAO GIỜ")


def test_pdf_refuses_an_unknown_layout_or_nothing_to_print() -> None:
    with pytest.raises(ValueError):
        posters_pdf(_posters(), layout="booklet", fonts=find_fonts())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        posters_pdf([], layout="poster", fonts=find_fonts())


def test_missing_fonts_name_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(FontsMissing, match="fonts-dejavu-core"):
        find_fonts([("Nowhere", str(tmp_path / "a.ttf"), str(tmp_path / "b.ttf"))])
    with pytest.raises(FontsMissing, match="apt-get install"):
        find_fonts([])


def test_fonts_are_found_once_and_cover_vietnamese() -> None:
    fonts = find_fonts()
    assert fonts is find_fonts()
    assert fonts.regular_path.is_file() and fonts.bold_path.is_file()
