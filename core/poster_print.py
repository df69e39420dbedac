"""Printing posters (in áp phích): the A4 pages a commune pins up, as one PDF.

Two layouts, both from the same `PosterPrint` values:

- `poster`: one A4 portrait page per poster, meant for a notice board or a park sign: the
  commune, the procedure's name in large type, the place, a QR code at least 9 cm wide, the
  short code and official host under it, how to file in three or four steps, and a box warning
  against the scams of domain.md §8 (officials never ask for an OTP, a password or a transfer to a
  personal account; check the address; check the poster's code at `<host>/kiem-tra`).
- `sheet`: six cards per A4 page (2 × 3) with dashed cut lines, for counters and small signs.

Text is real text in a TrueType font with every Vietnamese letter (DejaVu Sans, Noto Sans …), so
it prints crisply and `pdftotext` reads it back. Each QR symbol is drawn as one filled vector path
of rectangles, one per horizontal run of dark modules: sharp at any print size and far faster than
reportlab's QR widget.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from core.posters import QUIET_ZONE, QrMatrix, qr_matrix

Layout = Literal["poster", "sheet"]

STANDARD_INSTRUCTIONS: tuple[str, ...] = (
    "Mở camera điện thoại, quét mã QR",
    "Kiểm tra trang web ghi đúng tên xã (phường), thủ tục và địa điểm này",
    "Điền tờ khai, chụp ảnh giấy tờ rồi bấm “Nộp hồ sơ”",
    "Lưu biên nhận có mã hồ sơ để tra cứu kết quả",
)


@dataclass(frozen=True, kw_only=True)
class PosterPrint:
    """Everything printed on one poster; the caller has checked the poster is active."""

    procedure_name_vi: str
    procedure_name_en: str | None = None
    commune_name: str  # "Xã Nhuận Đức", "Phường Bến Thành"
    province_name: str  # "Thành phố Hồ Chí Minh"
    location: str  # "Bảng tin UBND xã", "Công viên ấp 3"
    url: str  # what the QR opens: <KIOSK_PUBLIC_BASE_URL>/q/<token>
    short_code: str  # "4YJL-2B3X-H5QA"
    official_host: str  # "nhuanduc.tphcm.gov.vn"
    instructions: Sequence[str] = STANDARD_INSTRUCTIONS
    fee_line: str = ""  # "Lệ phí: miễn phí"
    processing_line: str = ""  # "Thời hạn giải quyết: trong ngày"


# --- fonts ----------------------------------------------------------------------------------


class FontsMissing(RuntimeError):
    """No TrueType font with Vietnamese letters is installed; the message says what to install."""


@dataclass(frozen=True)
class FontSet:
    """A regular and a bold TrueType font, registered with reportlab under `regular`/`bold`."""

    regular: str
    bold: str
    regular_path: Path
    bold_path: Path


# (family, regular, bold), most preferred first. Debian paths, then Fedora/Arch ones.
FONT_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    (
        "DejaVuSans",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ),
    (
        "DejaVuSans",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ),
    (
        "DejaVuSans",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    ),
    (
        "NotoSans",
        "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
        "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    ),
    (
        "LiberationSans",
        "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    ),
    (
        "LiberationSans",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ),
)

# Every letter Vietnamese writes beyond ASCII: a font missing one would print an empty box.
VIETNAMESE_LETTERS = "ĂÂĐÊÔƠƯăâđêôơưÀÁÃÈÉÌÍÒÓÕÙÚÝàáãèéìíòóõùúýĨĩŨũ" + "".join(
    chr(c) for c in range(0x1EA0, 0x1EFA)
)

_registered: dict[tuple[str, str], FontSet] = {}


def find_fonts(candidates: Sequence[tuple[str, str, str]] = FONT_CANDIDATES) -> FontSet:
    """The first installed font pair that covers Vietnamese, registered with reportlab once.

    Raises `FontsMissing` naming the Debian package to install when there is none.
    """
    for family, regular, bold in candidates:
        key = (regular, bold)
        if key in _registered:
            return _registered[key]
        regular_path, bold_path = Path(regular), Path(bold)
        if not (regular_path.is_file() and bold_path.is_file()):
            continue
        regular_font = TTFont(f"{family}-Kiosk", str(regular_path))
        bold_font = TTFont(f"{family}-Kiosk-Bold", str(bold_path))
        if not all(_covers_vietnamese(font) for font in (regular_font, bold_font)):
            continue
        pdfmetrics.registerFont(regular_font)
        pdfmetrics.registerFont(bold_font)
        fonts = FontSet(regular_font.fontName, bold_font.fontName, regular_path, bold_path)
        _registered[key] = fonts
        return fonts
    looked = ", ".join(regular for _, regular, _ in candidates) or "(no paths given)"
    raise FontsMissing(
        "Printing posters needs a TrueType font with Vietnamese letters, and none was found "
        f"(looked for {looked}). On Debian or Ubuntu install one with: "
        "sudo apt-get install -y fonts-dejavu-core"
    )


def _covers_vietnamese(font: Any) -> bool:
    glyphs = font.face.charToGlyph
    return all(ord(char) in glyphs for char in VIETNAMESE_LETTERS)


# --- the document ---------------------------------------------------------------------------

PAGE_W, PAGE_H = A4
NAVY = HexColor("#0B3A75")
INK = HexColor("#1A1A1A")
GREY = HexColor("#555555")
WARN = HexColor("#B3261E")
WARN_FILL = HexColor("#FFF3F0")
CUT = HexColor("#888888")

POSTER_QR_MIN = 90 * mm  # readable from two metres, scannable through a scratched laminate
POSTER_QR_MAX = 105 * mm
CARD_QR_MIN = 42 * mm
CARD_QR_MAX = 56 * mm
SHEET_COLUMNS, SHEET_ROWS = 2, 3


def posters_pdf(posters: Sequence[PosterPrint], *, layout: Layout, fonts: FontSet) -> bytes:
    """The print-ready PDF (A4) of `posters`, one page each (`poster`) or six per page (`sheet`)."""
    if layout not in ("poster", "sheet"):
        raise ValueError(f"Unknown poster layout {layout!r}: use 'poster' or 'sheet'")
    if not posters:
        raise ValueError("No posters to print")
    out = io.BytesIO()
    # invariant: no timestamp or random id, so the same posters give the same bytes.
    canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=1)
    first = posters[0]
    canvas.setTitle(_nfc(f"Áp phích mã QR – {first.commune_name}"))
    canvas.setAuthor(_nfc(f"{first.commune_name}, {first.province_name}"))
    canvas.setCreator("commune-kiosk")
    if layout == "poster":
        for poster in posters:
            _Poster(canvas, fonts, _normalised(poster)).draw()
            canvas.showPage()
    else:
        per_page = SHEET_COLUMNS * SHEET_ROWS
        for start in range(0, len(posters), per_page):
            _draw_sheet(canvas, fonts, [_normalised(p) for p in posters[start : start + per_page]])
            canvas.showPage()
    canvas.save()
    return out.getvalue()


def anti_scam_text(poster: PosterPrint) -> str:
    """The warning printed on every poster (domain.md §8), naming the official host and code."""
    host, code = poster.official_host, poster.short_code
    return (
        f"Cán bộ {_unit_word(poster.commune_name)} KHÔNG BAO GIỜ hỏi mã OTP, mật khẩu hay yêu cầu "
        f"chuyển tiền vào tài khoản cá nhân. Kiểm tra địa chỉ trang web: {host}. "
        f"Mã áp phích: {code} — kiểm tra tại {host}/kiem-tra"
    )


def _unit_word(commune_name: str) -> str:
    """What the commune-level unit calls itself: "xã", "phường" or "đặc khu" (since 7/2025)."""
    lowered = commune_name.strip().lower()
    for word in ("phường", "đặc khu"):
        if lowered.startswith(word):
            return word
    return "xã"


def _nfc(text: str) -> str:
    # Decomposed input (e + combining marks) would print marks beside the letter: the font has
    # precomposed glyphs and reportlab does no shaping.
    return unicodedata.normalize("NFC", text).strip()


def _normalised(poster: PosterPrint) -> PosterPrint:
    return PosterPrint(
        procedure_name_vi=_nfc(poster.procedure_name_vi),
        procedure_name_en=_nfc(poster.procedure_name_en) if poster.procedure_name_en else None,
        commune_name=_nfc(poster.commune_name),
        province_name=_nfc(poster.province_name),
        location=_nfc(poster.location),
        url=poster.url,
        short_code=poster.short_code,
        official_host=poster.official_host,
        instructions=tuple(_nfc(line) for line in poster.instructions if line.strip()),
        fee_line=_nfc(poster.fee_line),
        processing_line=_nfc(poster.processing_line),
    )


# --- one A4 poster --------------------------------------------------------------------------


class _Poster:
    """Lays out one poster page: a top block, a bottom block, the QR centred in between."""

    margin = 15 * mm

    def __init__(self, canvas: Canvas, fonts: FontSet, poster: PosterPrint) -> None:
        self.c = canvas
        self.fonts = fonts
        self.p = poster
        self.width = PAGE_W - 2 * self.margin

    def draw(self) -> None:
        top = self._draw_top(PAGE_H - self.margin)
        bottom = self._draw_bottom(self.margin)
        self._draw_qr_block(top, bottom)

    def _draw_top(self, y: float) -> float:
        c, f, p = self.c, self.fonts, self.p
        y -= 11
        _text(c, f.regular, 11, GREY, PAGE_W / 2, y, p.province_name.upper(), centred=True)
        y -= 19
        committee = f"Ủy ban nhân dân {p.commune_name}".upper()
        size, lines = _fit(committee, f.bold, (15, 13, 11), self.width)
        _text(c, f.bold, size, NAVY, PAGE_W / 2, y, lines[0], centred=True)
        y -= 10
        c.setStrokeColor(NAVY)
        c.setLineWidth(1.6)
        c.line(self.margin, y, PAGE_W - self.margin, y)
        y -= 11
        _text(c, f.bold, 10, NAVY, PAGE_W / 2, y, "NỘP HỒ SƠ TRỰC TUYẾN", centred=True)

        # fewer lines of slightly smaller type read better from afar than more of larger type
        fitted = _fit_within(p.procedure_name_vi, f.bold, (30, 27), self.width, 1)
        fitted = fitted or _fit_within(p.procedure_name_vi, f.bold, (30, 27, 24), self.width, 2)
        size, lines = fitted or _fit(p.procedure_name_vi, f.bold, (24, 21, 18), self.width, 3)
        y -= 8
        for line in lines:
            y -= size * 1.18
            _text(c, f.bold, size, INK, PAGE_W / 2, y + size * 0.18, line, centred=True)
        if p.procedure_name_en:
            en_size, en_lines = _fit(p.procedure_name_en, f.regular, (13, 11), self.width, 2)
            y -= 4
            for line in en_lines:
                y -= en_size * 1.25
                _text(c, f.regular, en_size, GREY, PAGE_W / 2, y, line, centred=True)
        y -= 24
        place = _fit_one(f"Địa điểm: {p.location}", f.bold, 13, self.width)
        _text(c, f.bold, 13, NAVY, PAGE_W / 2, y, place, centred=True)
        facts = [line for line in (p.processing_line, p.fee_line) if line]
        if facts:
            joined = "   ·   ".join(facts)
            if pdfmetrics.stringWidth(joined, f.regular, 11) > self.width:
                for line in facts:
                    y -= 16
                    _text(c, f.regular, 11, INK, PAGE_W / 2, y, line, centred=True)
            else:
                y -= 17
                _text(c, f.regular, 11, INK, PAGE_W / 2, y, joined, centred=True)
        return y - 4

    def _draw_bottom(self, y: float) -> float:
        """The anti-scam box, then the numbered steps above it; returns the top of the steps."""
        c, f, p = self.c, self.fonts, self.p
        pad = 4 * mm
        body_size, leading = 11.5, 15
        lines = _wrap(anti_scam_text(p), f.regular, body_size, self.width - 2 * pad)
        box_h = pad + 13 + 6 + len(lines) * leading + pad - 3
        c.setFillColor(WARN_FILL)
        c.setStrokeColor(WARN)
        c.setLineWidth(2)
        c.roundRect(self.margin, y, self.width, box_h, 3 * mm, stroke=1, fill=1)
        ty = y + box_h - pad - 11
        _text(c, f.bold, 12, WARN, self.margin + pad, ty, "⚠ CẢNH GIÁC LỪA ĐẢO")
        ty -= 6
        for line in lines:
            ty -= leading
            _text(c, f.regular, body_size, INK, self.margin + pad, ty, line, emphasis=f.bold)
        y += box_h + 7 * mm

        steps = list(p.instructions)[:4]
        step_size, step_leading = 11.5, 15.5
        wrapped = [
            _wrap(f"{i}. {step}", f.regular, step_size, self.width - 8 * mm)
            for i, step in enumerate(steps, 1)
        ]
        hang = pdfmetrics.stringWidth("1. ", f.regular, step_size)  # continuation lines
        for step_lines in reversed(wrapped):  # drawn upwards from the box
            for j, line in reversed(list(enumerate(step_lines))):
                x = self.margin + 4 * mm + (hang if j else 0.0)
                _text(c, f.regular, step_size, INK, x, y, line)
                y += step_leading
        if steps:
            y += 2
            _text(c, f.bold, 12.5, NAVY, self.margin, y, "Cách nộp hồ sơ:")
            y += 12.5
        return y

    def _draw_qr_block(self, top: float, bottom: float) -> None:
        c, f, p = self.c, self.fonts, self.p
        matrix = qr_matrix(p.url)
        under = 46.0  # the short code and the host
        # side of the symbol, so that symbol + quiet zones + the lines under it fill the gap
        room = top - bottom - under
        side = room * matrix.size / (matrix.size + 2 * QUIET_ZONE)
        side = max(POSTER_QR_MIN, min(POSTER_QR_MAX, side))
        module = side / matrix.size
        block = side + 2 * QUIET_ZONE * module + under
        block_top = top - max(0.0, (top - bottom - block) / 2)
        symbol_top = block_top - QUIET_ZONE * module
        _draw_symbol(c, matrix, (PAGE_W - side) / 2, symbol_top, side)
        y = symbol_top - side - QUIET_ZONE * module + 4
        code_line = f"Mã áp phích: {p.short_code}"
        _text(c, f.bold, 17, INK, PAGE_W / 2, y - 17, code_line, centred=True)
        _text(c, f.regular, 13, NAVY, PAGE_W / 2, y - 37, p.official_host, centred=True)


# --- a sheet of cards -----------------------------------------------------------------------


def _draw_sheet(canvas: Canvas, fonts: FontSet, posters: Sequence[PosterPrint]) -> None:
    margin = 10 * mm
    card_w = (PAGE_W - 2 * margin) / SHEET_COLUMNS
    card_h = (PAGE_H - 2 * margin) / SHEET_ROWS
    for index, poster in enumerate(posters):
        row, column = divmod(index, SHEET_COLUMNS)
        x = margin + column * card_w
        y = PAGE_H - margin - (row + 1) * card_h
        _draw_card(canvas, fonts, poster, x, y, card_w, card_h)
    _draw_cut_lines(canvas, fonts, margin, card_w, card_h)


def _draw_card(
    c: Canvas, f: FontSet, p: PosterPrint, x: float, y: float, w: float, h: float
) -> None:
    pad = 5 * mm
    inner = w - 2 * pad
    cx = x + w / 2
    top = y + h - pad
    commune = _fit_one(f"{p.commune_name} · {p.province_name}".upper(), f.bold, 8, inner)
    _text(c, f.bold, 8, NAVY, cx, top - 8, commune, centred=True)
    size, lines = _fit(p.procedure_name_vi, f.bold, (14, 13, 12, 11, 10), inner, 2)
    ty = top - 12
    for line in lines:
        ty -= size * 1.2
        _text(c, f.bold, size, INK, cx, ty, line, centred=True)
    ty -= 13
    place = _fit_one(f"Địa điểm: {p.location}", f.regular, 9.5, inner)
    _text(c, f.regular, 9.5, INK, cx, ty, place, centred=True)

    bottom = y + pad
    under = 30.0  # code and host lines
    matrix = qr_matrix(p.url)
    room = ty - 3 - bottom - under
    side = max(CARD_QR_MIN, min(CARD_QR_MAX, room * matrix.size / (matrix.size + 2 * QUIET_ZONE)))
    module = side / matrix.size
    symbol_top = ty - 3 - QUIET_ZONE * module
    _draw_symbol(c, matrix, cx - side / 2, symbol_top, side)
    by = symbol_top - side - QUIET_ZONE * module + 2
    _text(c, f.bold, 11, INK, cx, by - 11, f"Mã: {p.short_code}", centred=True)
    _text(c, f.regular, 9, NAVY, cx, by - 24, p.official_host, centred=True)


def _draw_cut_lines(c: Canvas, f: FontSet, margin: float, card_w: float, card_h: float) -> None:
    c.saveState()
    c.setStrokeColor(CUT)
    c.setLineWidth(0.5)
    c.setDash(4, 3)
    for column in range(SHEET_COLUMNS + 1):
        x = margin + column * card_w
        c.line(x, 0, x, PAGE_H)
    for row in range(SHEET_ROWS + 1):
        y = margin + row * card_h
        c.line(0, y, PAGE_W, y)
    c.restoreState()
    # a pair of scissors on each horizontal cut, in the margin where no card is
    for row in range(SHEET_ROWS + 1):
        y = margin + row * card_h
        c.setFillColor(white)
        c.rect(1.5 * mm, y - 5, 12, 10, stroke=0, fill=1)
        _text(c, f.regular, 10, CUT, 2 * mm, y - 3.5, "✂")


# --- drawing primitives ---------------------------------------------------------------------


def _draw_symbol(c: Canvas, matrix: QrMatrix, left: float, top: float, side: float) -> None:
    """The dark modules as ONE filled path of rectangles, one per horizontal run.

    Drawn in module units under a transform, so each rectangle is four small integers.
    """
    module = side / matrix.size
    c.saveState()
    c.transform(module, 0, 0, -module, left, top)  # module units, y downwards from the top
    c.setFillColor(Color(0, 0, 0))
    path = c.beginPath()
    for row, first, length in matrix.runs:
        path.rect(first, row, length, 1)
    c.drawPath(path, stroke=0, fill=1)
    c.restoreState()


_BOLD_WORDS = re.compile(r"(KHÔNG BAO GIỜ)")


def _text(
    c: Canvas,
    font: str,
    size: float,
    color: Color,
    x: float,
    y: float,
    text: str,
    *,
    centred: bool = False,
    emphasis: str | None = None,
) -> None:
    c.setFillColor(color)
    if emphasis is None or not _BOLD_WORDS.search(text):
        c.setFont(font, size)
        if centred:
            c.drawCentredString(x, y, text)
        else:
            c.drawString(x, y, text)
        return
    # one line with an emphasised phrase: draw piece by piece
    for piece in _BOLD_WORDS.split(text):
        piece_font = emphasis if _BOLD_WORDS.fullmatch(piece) else font
        c.setFont(piece_font, size)
        c.drawString(x, y, piece)
        x += pdfmetrics.stringWidth(piece, piece_font, size)


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy word wrap; a word wider than the line is cut between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if pdfmetrics.stringWidth(candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while pdfmetrics.stringWidth(word, font, size) > width:
            cut = len(word) - 1
            while cut > 1 and pdfmetrics.stringWidth(word[:cut], font, size) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def _balanced(text: str, font: str, size: float, width: float) -> list[str]:
    """As few lines as `_wrap` needs, but of even length: no lone word on the last line."""
    lines = _wrap(text, font, size, width)
    if len(lines) < 2:
        return lines
    narrow, wide = 0.0, width
    while wide - narrow > 1:
        middle = (narrow + wide) / 2
        if len(_wrap(text, font, size, middle)) > len(lines):
            narrow = middle
        else:
            wide = middle
    return _wrap(text, font, size, wide)


def _fit_within(
    text: str, font: str, sizes: Sequence[float], width: float, max_lines: int
) -> tuple[float, list[str]] | None:
    """The largest of `sizes` at which `text` wraps (evenly) into `max_lines`, or None."""
    for size in sizes:
        if len(_wrap(text, font, size, width)) <= max_lines:
            return size, _balanced(text, font, size, width)
    return None


def _fit(
    text: str, font: str, sizes: Sequence[float], width: float, max_lines: int = 1
) -> tuple[float, list[str]]:
    """As `_fit_within`, else the smallest size with the last line cut short by an ellipsis."""
    fitted = _fit_within(text, font, sizes, width, max_lines)
    if fitted is not None:
        return fitted
    size = sizes[-1]
    lines = _wrap(text, font, size, width)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _fit_one(lines[-1] + " …", font, size, width)
    return size, lines


def _fit_one(text: str, font: str, size: float, width: float) -> str:
    """`text` on one line, shortened with an ellipsis if it is too wide."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"
