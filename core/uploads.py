"""Citizen uploads: photos and scans of papers (ảnh chụp giấy tờ, tệp đính kèm hồ sơ).

A dossier (hồ sơ) needs its papers: the birth certificate (giấy chứng sinh), an ID card (CCCD), a
marriage certificate. Citizens photograph them with cheap phones, usually 12-megapixel JPEGs of
3–6 MB, and send them over weak mobile data; hostile people send anything at all. This module is
the one gate every uploaded byte passes through before it is sealed and stored:

- **The content decides the type, never the name or the declared Content-Type.** Only JPEG, PNG and
  PDF are accepted, recognised by their signature *and* a real parse. A ``.jpg`` that is HTML, a
  ``.pdf`` that is a PNG (treated as the PNG it is), GIF, SVG, ZIP, executables, empty files: the
  signature decides, and everything outside the three types is refused with a message that tells the
  citizen what to do instead.
- **Limits come before work.** The byte limit is enforced while reading, so an oversize stream is
  never held in memory whole. An image's dimensions are read from its header (PNG ``IHDR``, JPEG
  ``SOFn``) by this module itself, before Pillow is involved: a decompression bomb (a few hundred
  bytes declaring 40000×40000 pixels) is refused without a pixel being allocated, whatever Pillow's
  own global ``MAX_IMAGE_PIXELS`` and the process's warning filters say. A progressive JPEG with an
  absurd number of scans (a CPU bomb: each scan re-walks the whole image) is refused the same way.
- **Metadata never reaches the decoder.** The same header walk drops every JPEG segment and PNG
  chunk that does not carry pixels (EXIF, XMP, ICC, comments, text, APNG frames) and reads the EXIF
  orientation itself. Pillow's metadata parsers, which warn on corrupt data (an error or nothing,
  depending on the process's warning filters), never run on a citizen's bytes, so the outcome is
  the same in tests and in production.
- **Images are re-encoded; the stored file holds only pixels.** The image is decoded (a large JPEG
  at a reduced DCT scale via ``draft()``, never below the output size), turned upright by its EXIF
  orientation, scaled so its long side is at most ``output_long_side`` (papers stay readable),
  flattened to RGB or greyscale on white, and written afresh as JPEG with no metadata at all: no
  EXIF (phone photos carry GPS position, which is sensitive personal data under NĐ 13/2023), no XMP,
  no ICC profile, no comments, no PNG text chunks. Because only decoded pixels are written,
  polyglots (a JPEG that is also an HTML page or a ZIP) and trailing junk after the image end
  marker do not survive: whatever bytes followed or hid inside the original are not in the output.
  A PNG is kept as PNG only when the lossless PNG comes out no larger than the JPEG, which is what
  happens with screenshots of text (flat colours, sharp edges); photos saved as PNG become JPEG.
- **PDFs cannot be re-encoded here, so they are inspected and accepted only if plainly inert.** The
  file must start with a ``%PDF-1.x`` (or ``%PDF-2.0``) header at byte 0 and end with ``%%EOF``; it
  must not be encrypted, must have at most ``max_pdf_pages`` pages, and must contain no active
  content: JavaScript, launch/submit/import/remote-go-to actions, automatic actions (``/AA``, an
  ``/OpenAction`` that is not a plain "go to page"), embedded or attached files, rich media, 3D or
  XFA forms. Names are looked for three ways (the raw bytes outside stream data, the decoded
  contents of every object stream, and every object pypdf parses), with ``#xx`` name escapes
  decoded, because viewers and parsers disagree on malformed files and a hostile file lives in
  that disagreement. A cross-reference chain that loops (pypdf 6.3 follows it forever) is refused
  before pypdf opens the file, a file of more than ``max_pdf_objects`` objects before pypdf parses
  any of them. Refusing an odd but legitimate PDF is acceptable; accepting a scripted one is not.
  Metadata inside an accepted PDF (author, producer, embedded photos' EXIF) stays: the citizen is
  better served sending photos, and the message for every PDF refusal says so. PDF checking needs
  ``pypdf``; where it is not installed, every PDF is refused rather than waved through.

Whoever serves a stored file back must still send it with its ``content_type``,
``X-Content-Type-Options: nosniff`` and ``Content-Disposition: attachment``: an accepted PDF is
inert for PDF viewers, not for a browser that is allowed to guess.

The original file name is kept only for display (``safe_display_name``): NFC, no directories, no
control or bidirectional-override characters, no shell or Windows-reserved punctuation, at most 100
characters. It is never used as a storage path.

Everything here is pure: bytes (or a binary stream) and limits in, an ``AcceptedFile`` out, or an
``UploadRejected`` carrying a bilingual ``Message``. No Pillow global is read at import or changed
ever; ``UploadLimits`` only checks, when built, that its pixel limit is the binding one.
"""

import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO, Final, Literal

from PIL import Image

from core.text import Message

ContentType = Literal["image/jpeg", "image/png", "application/pdf"]

_MB: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """What one uploaded file may be. Defaults suit phone photos of A4 papers."""

    max_bytes: int = 15 * _MB
    # 50 MP lets through the "50 MP" mode of budget phones (8160×6120); Pillow's own bomb warning
    # starts at 89.5 MP, so this limit, checked first, is the one that bites.
    max_pixels: int = 50_000_000
    max_side: int = 12_000
    # Long side of a stored image. 2000 px keeps an A4 page photographed edge to edge at ~170 dpi,
    # and is exactly what a 12 MP (4000×3000) phone photo decodes to at JPEG's 1/2 DCT scale, so
    # the decoder does the downscaling (bench/uploads_bench.py: ~3× faster than 2400 px).
    output_long_side: int = 2000
    jpeg_quality: int = 85
    max_pdf_pages: int = 20
    # Progressive JPEGs from phones and libjpeg have about 10 scans; a CPU bomb has thousands.
    max_jpeg_scans: int = 100
    # A 20-page scan is about 100 objects, a 20-page generated document a few thousand. Each object
    # is parsed in Python, so this bounds the time a hostile PDF can take.
    max_pdf_objects: int = 20_000

    def __post_init__(self) -> None:
        for name in (
            "max_bytes",
            "max_pixels",
            "max_side",
            "output_long_side",
            "max_pdf_pages",
            "max_jpeg_scans",
            "max_pdf_objects",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"UploadLimits.{name} must be positive")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError("UploadLimits.jpeg_quality must be within 1..95")
        # Pillow warns (an error under warnings-as-errors) above MAX_IMAGE_PIXELS. Our own header
        # check must refuse first, so the outcome never depends on warning filters.
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None and self.max_pixels > pillow_limit:
            raise ValueError(
                f"UploadLimits.max_pixels ({self.max_pixels}) must not exceed Pillow's "
                f"MAX_IMAGE_PIXELS ({pillow_limit})"
            )


@dataclass(frozen=True, slots=True)
class AcceptedFile:
    """An upload that passed: ``content`` is what gets stored, nothing else of the original is."""

    content: bytes
    content_type: ContentType
    extension: str  # ".jpg", ".png" or ".pdf", from the content
    sha256: str  # hex digest of `content`
    size: int  # len(content)
    original_filename: str  # safe display name, never a storage path
    width: int | None = None  # images: stored pixels
    height: int | None = None
    pages: int | None = None  # PDFs


class UploadRejected(Exception):
    """The upload is refused; ``reason`` tells the citizen why and what to do."""

    def __init__(self, reason: Message) -> None:
        super().__init__(reason.en)
        self.reason = reason


# --- What the citizen is told ------------------------------------------------------------------

EMPTY = Message(
    vi="Tệp gửi lên không có nội dung. Xin chọn lại ảnh chụp giấy tờ rồi gửi lại.",
    en="The file is empty. Please choose the photo of your document again and resend it.",
)
TOO_LARGE = Message(
    vi="Tệp quá lớn: mỗi tệp tối đa {max_mb} MB. Xin chụp lại giấy tờ bằng camera thường của điện "
    "thoại (không dùng chế độ độ phân giải cao nhất) rồi gửi ảnh.",
    en="The file is too large: at most {max_mb} MB per file. Please photograph the document again "
    "with the phone's normal camera mode (not the highest resolution) and send the photo.",
)
NOT_ALLOWED = Message(
    vi="Tệp này không phải ảnh JPEG, PNG hay tệp PDF. Xin chụp lại giấy tờ và gửi ảnh.",
    en="This file is not a JPEG or PNG image or a PDF. Please photograph the document and send "
    "the photo.",
)
HEIC = Message(
    vi="Ảnh này ở định dạng HEIC/HEIF (thường gặp trên iPhone) mà hệ thống chưa đọc được. Xin vào "
    "Cài đặt > Camera > Định dạng, chọn “Tương thích nhất”, chụp lại giấy tờ rồi gửi ảnh.",
    en="This photo is in HEIC/HEIF format (common on iPhones), which cannot be read here. Please "
    "go to Settings > Camera > Formats, choose “Most Compatible”, photograph the document again "
    "and send the photo.",
)
TOO_MANY_PIXELS = Message(
    vi="Ảnh có kích thước quá lớn ({width}×{height} điểm ảnh). Xin chụp lại bằng camera thường của "
    "điện thoại rồi gửi ảnh.",
    en="The image is too large ({width}×{height} pixels). Please take the photo again with the "
    "phone's normal camera mode and send it.",
)
DAMAGED_IMAGE = Message(
    vi="Ảnh bị hỏng hoặc chưa tải lên hết (mạng yếu có thể làm đứt tệp giữa chừng). Xin gửi lại "
    "ảnh; nếu vẫn không được, hãy chụp lại giấy tờ.",
    en="The image is damaged or was not fully uploaded (a weak connection can cut a file short). "
    "Please send it again; if that fails, photograph the document again.",
)
DAMAGED_PDF = Message(
    vi="Tệp PDF bị hỏng hoặc chưa tải lên hết. Xin gửi lại tệp, hoặc chụp ảnh giấy tờ và gửi ảnh.",
    en="The PDF is damaged or was not fully uploaded. Please send it again, or photograph the "
    "document and send the photos.",
)
PDF_TOO_MANY_PAGES = Message(
    vi="Tệp PDF có {pages} trang, nhiều hơn mức cho phép ({max_pages} trang). Xin chỉ gửi những "
    "trang giấy tờ được yêu cầu.",
    en="The PDF has {pages} pages, more than allowed ({max_pages}). Please send only the pages of "
    "the documents that are asked for.",
)
PDF_ENCRYPTED = Message(
    vi="Tệp PDF này có đặt mật khẩu hoặc được mã hoá nên không mở được. Xin gửi bản không đặt mật "
    "khẩu, hoặc chụp ảnh giấy tờ và gửi ảnh.",
    en="This PDF is password-protected or encrypted, so it cannot be opened. Please send a copy "
    "without a password, or photograph the document and send the photos.",
)
PDF_ACTIVE = Message(
    vi="Tệp PDF này có chứa mã lệnh, tệp đính kèm hoặc thành phần không kiểm tra được, nên không "
    "thể nhận vì lý do an toàn. Xin chụp ảnh giấy tờ và gửi ảnh.",
    en="This PDF contains scripts, attached files or parts that cannot be checked, so it cannot be "
    "accepted for safety reasons. Please photograph the document and send the photos.",
)
PDF_UNAVAILABLE = Message(
    vi="Hiện chưa nhận được tệp PDF. Xin chụp ảnh giấy tờ và gửi ảnh.",
    en="PDF files cannot be accepted at the moment. Please photograph the document and send the "
    "photos.",
)


# --- Entry point -------------------------------------------------------------------------------


def inspect_upload(
    data: bytes | bytearray | memoryview | BinaryIO, *, filename: str, limits: UploadLimits
) -> AcceptedFile:
    """Check one upload and return what to store, or raise ``UploadRejected``.

    ``filename`` is only displayed (sanitised); it never influences the type. A stream is read from
    its current position, and never more than ``limits.max_bytes + 1`` bytes of it.
    """
    raw = _read_limited(data, limits.max_bytes)
    if not raw:
        raise UploadRejected(EMPTY)
    if len(raw) > limits.max_bytes:
        raise UploadRejected(_too_large(limits.max_bytes))
    display = safe_display_name(filename)
    kind = _sniff(raw)
    if kind == "jpeg":
        return _accept_image(raw, "JPEG", display, limits)
    if kind == "png":
        return _accept_image(raw, "PNG", display, limits)
    if kind == "pdf":
        return _accept_pdf(raw, display, limits)
    if kind == "heif":
        raise UploadRejected(HEIC)
    raise UploadRejected(NOT_ALLOWED)


def _read_limited(data: bytes | bytearray | memoryview | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    chunks: list[bytes] = []
    remaining = max_bytes + 1  # one byte more than allowed is enough to know it is too much
    while remaining > 0:
        chunk = data.read(min(remaining, _MB))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> Message:
    megabytes = f"{round(max_bytes / _MB, 1):g}"
    return Message(
        vi=TOO_LARGE.vi.format(max_mb=megabytes.replace(".", ",")),  # Vietnamese decimal comma
        en=TOO_LARGE.en.format(max_mb=megabytes),
    )


# --- Type by content ---------------------------------------------------------------------------

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PDF_HEADER: Final = re.compile(rb"%PDF-(?:1\.[0-7]|2\.0)[\r\n\t %]")
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)


def _sniff(raw: bytes) -> str | None:
    """The file's kind from its first bytes: only a claim, which parsing must confirm."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if raw.startswith(_PNG_SIGNATURE):
        return "png"
    if _PDF_HEADER.match(raw):
        return "pdf"
    if raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


# --- Images ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    """What this module reads itself before any decoder runs."""

    width: int
    height: int
    orientation: int  # EXIF orientation, 1 (upright) when absent or unreadable
    pixels_only: bytes  # the file with every metadata segment or chunk removed


# Start-of-frame markers of every JPEG coding process; C4, C8, CC share the range but are not SOFs.
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
# Segments the decoder needs: frames, Huffman/arithmetic/quantisation tables, restart interval,
# Adobe APP14 (is CMYK data colour-transformed?) and the JFIF APP0 (the colour space libjpeg
# assumes). Everything else before the first scan (APP1–APP13, APP15: EXIF, XMP, ICC, MPF, maker
# notes; COM comments) is dropped.
_JPEG_KEEP: Final = _JPEG_SOF | {0xC4, 0xCC, 0xDB, 0xDD, 0xEE}
_SOS: Final = 0xDA


def _jpeg_header(raw: bytes) -> _Header:
    """Walk the markers from SOI to the first scan: dimensions, orientation, metadata removed.

    Every frame header met on the way counts (the largest wins), so a file cannot show a small
    frame first and a huge one after it.
    """
    kept = bytearray(b"\xff\xd8")
    pos = 2
    width = height = 0
    orientation = 1
    while pos + 4 <= len(raw):
        if raw[pos] != 0xFF:
            break
        while pos < len(raw) and raw[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(raw):
            break
        marker = raw[pos]
        if marker in _JPEG_STANDALONE:
            pos += 1
            continue
        if marker == 0xD9 or pos + 3 > len(raw):  # end of image before any scan
            break
        length = int.from_bytes(raw[pos + 1 : pos + 3], "big")
        segment = raw[pos + 3 : pos + 1 + length]
        if length < 2 or len(segment) != length - 2:
            break
        if marker in _JPEG_SOF and len(segment) >= 5:
            height = max(height, int.from_bytes(segment[1:3], "big"))
            width = max(width, int.from_bytes(segment[3:5], "big"))
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00") and orientation == 1:
            orientation = _tiff_orientation(segment[6:])
        if marker == _SOS:
            if not (width and height):
                break
            kept += raw[pos - 1 :]  # the scans, verbatim: the decoder stops at their end
            return _Header(width, height, orientation, bytes(kept))
        if marker in _JPEG_KEEP or (marker == 0xE0 and segment.startswith(b"JFIF\x00")):
            kept += raw[pos - 1 : pos + 1 + length]
        pos += 1 + length
    raise UploadRejected(DAMAGED_IMAGE)


# Chunks that carry pixels; the rest (text, EXIF, ICC, gamma, time, APNG frames…) is dropped.
_PNG_KEEP: Final = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})


def _png_header(raw: bytes) -> _Header:
    """IHDR (which must come first) for dimensions, eXIf for orientation, pixel chunks kept."""
    if len(raw) < 24 or raw[12:16] != b"IHDR":
        raise UploadRejected(DAMAGED_IMAGE)
    width = int.from_bytes(raw[16:20], "big")
    height = int.from_bytes(raw[20:24], "big")
    if not width or not height:
        raise UploadRejected(DAMAGED_IMAGE)
    kept = bytearray(_PNG_SIGNATURE)
    orientation = 1
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        kind = raw[pos + 4 : pos + 8]
        end = pos + 12 + length
        if kind == b"eXIf" and orientation == 1:
            exif = raw[pos + 8 : min(end - 4, len(raw))]
            orientation = _tiff_orientation(exif.removeprefix(b"Exif\x00\x00"))
        if kind in _PNG_KEEP:
            kept += raw[pos:end]  # a chunk cut short stays cut short: the decoder will say so
        if kind == b"IEND":
            break  # whatever follows the image is not part of it
        pos = end
    return _Header(width, height, orientation, bytes(kept))


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag (0x0112) of the first IFD of EXIF's TIFF structure; 1 if anything is off.

    Read here, not by Pillow: Pillow's EXIF reader warns on corrupt data, and a warning is an error
    or nothing depending on the process's filters. An unrotated photo beats a refusal.
    """
    if tiff[:4] == b"II*\x00":
        order: Literal["little", "big"] = "little"
    elif tiff[:4] == b"MM\x00*":
        order = "big"
    else:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        if int.from_bytes(tiff[entry : entry + 2], order) == 0x0112:
            is_short = int.from_bytes(tiff[entry + 2 : entry + 4], order) == 3
            value = int.from_bytes(tiff[entry + 8 : entry + 10], order)
            return value if is_short and 1 <= value <= 8 else 1
    return 1


def _check_dimensions(width: int, height: int, limits: UploadLimits) -> None:
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise UploadRejected(TOO_MANY_PIXELS.format(width=width, height=height))


# EXIF orientation → the transpose that makes the image upright (as ImageOps.exif_transpose does).
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def _accept_image(
    raw: bytes, pillow_format: Literal["JPEG", "PNG"], display: str, limits: UploadLimits
) -> AcceptedFile:
    # Limits first, from our own reading of the header: Pillow has not seen the file yet.
    header = _jpeg_header(raw) if pillow_format == "JPEG" else _png_header(raw)
    _check_dimensions(header.width, header.height, limits)
    # Every scan starts with an SOS marker and entropy-coded data never contains FF DA (0xFF is
    # always stuffed), so counting the marker counts the scans.
    if pillow_format == "JPEG" and header.pixels_only.count(b"\xff\xda") > limits.max_jpeg_scans:
        raise UploadRejected(DAMAGED_IMAGE)

    try:
        pixels = _decode(header, pillow_format, limits)
        if header.orientation in _UPRIGHT:
            pixels = pixels.transpose(_UPRIGHT[header.orientation])
        pixels = _flatten(pixels)
        pixels = _fit(pixels, limits.output_long_side)
        content, content_type = _encode(pixels, pillow_format, limits.jpeg_quality)
    except UploadRejected:
        raise
    except Exception as exc:
        # A hostile or broken file can make a decoder raise anything (OSError for truncation,
        # SyntaxError, ValueError, struct.error, EOFError…). For the citizen it is one thing: this
        # image could not be read.
        raise UploadRejected(DAMAGED_IMAGE) from exc
    return AcceptedFile(
        content=content,
        content_type=content_type,
        extension=".png" if content_type == "image/png" else ".jpg",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        original_filename=display,
        width=pixels.width,
        height=pixels.height,
    )


def _decode(header: _Header, pillow_format: str, limits: UploadLimits) -> Image.Image:
    im: Image.Image = Image.open(io.BytesIO(header.pixels_only), formats=[pillow_format])
    # Pillow read the same header; check its reading too, in case the two ever differ.
    _check_dimensions(im.width, im.height, limits)
    if pillow_format == "JPEG":
        # Decode at the smallest DCT scale (1/2, 1/4, 1/8) that still leaves the long side at or
        # above the output size: an 8000 px photo decodes at 4000 px, four times fewer pixels.
        # Never below the output size: DCT scaling is a box filter, the final resize is better.
        target = _fitted_size(im.size, limits.output_long_side)
        if target != im.size:
            im.draft("RGB", target)
    im.load()
    return im


def _flatten(im: Image.Image) -> Image.Image:
    """RGB or greyscale; transparency goes on white, so a transparent screenshot stays legible."""
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        grey = im.mode in ("L", "LA", "La")
        rgba = im.convert("LA" if grey else "RGBA")
        background = Image.new(rgba.mode[0] if grey else "RGB", im.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I"):  # 16-bit greyscale PNG: scale 0..65535 down to 0..255
        return im.convert("I").point(lambda v: v / 257).convert("L")
    return im.convert("RGB")  # P, CMYK (some scanner apps), YCbCr…


def _fitted_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    width, height = size
    scale = long_side / max(width, height)
    if scale >= 1:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(im: Image.Image, long_side: int) -> Image.Image:
    size = _fitted_size(im.size, long_side)
    if size == im.size:
        return im
    # reducing_gap: shrink by an integer factor first (fast), then Lanczos for the last step.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(
    im: Image.Image, source_format: str, quality: int
) -> tuple[bytes, Literal["image/jpeg", "image/png"]]:
    # Pillow copies `info` from image to image and its savers fall back on it (JPEG comments, PNG
    # ICC profiles, DPI…). Clearing it means the encoders get nothing but pixels.
    im.info = {}
    jpeg = io.BytesIO()
    # Standard Huffman tables: optimised ones save ~6% of the bytes of a 2000 px photo but cost a
    # second pass, 2.5x the encoding time (bench/submit_bench.py --photos).
    im.save(jpeg, "JPEG", quality=quality)
    if source_format != "PNG":
        return jpeg.getvalue(), "image/jpeg"
    png = io.BytesIO()
    im.save(png, "PNG", compress_level=6)
    if png.tell() <= jpeg.tell():
        return png.getvalue(), "image/png"
    return jpeg.getvalue(), "image/jpeg"


# --- PDF ---------------------------------------------------------------------------------------

# Names that make a PDF do something by itself, reach outside itself, or carry other files.
_ACTIVE_NAMES: Final = frozenset(
    {
        "JavaScript",
        "JS",
        "AA",  # additional actions: run on open/close/page view/field focus
        "Launch",
        "SubmitForm",
        "ImportData",
        "GoToR",  # remote go-to: on Windows a UNC path leaks the viewer's credentials
        "GoToE",
        "EmbeddedFile",
        "EmbeddedFiles",
        "FileAttachment",
        "XFA",
        "Rendition",
        "Sound",
        "Movie",
        "3D",
        "3DD",
    }
)
_ACTIVE_PREFIXES: Final = ("RichMedia",)
# An /OpenAction is fine when it only opens at a page: a destination array or a /GoTo action.
_PASSIVE_OPEN_ACTIONS: Final = frozenset({"/GoTo"})

_PDF_NAME: Final = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)")
_PDF_NAME_OR_STREAM: Final = re.compile(
    rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]*)|(?<![A-Za-z0-9])stream(?:\r\n|\n|\r)"
)
_PDF_HIDDEN_OBJECT: Final = re.compile(
    rb"(?<![A-Za-z0-9])(?:endobj|\d+\s+\d+\s+obj)(?![A-Za-z0-9])"
)
_PDF_NAME_ESCAPE: Final = re.compile(rb"#([0-9A-Fa-f]{2})")
# An integer that is not the start of an indirect reference ("12 0 R", as in outline items' /Prev).
_PDF_GAP: Final = rb"(?:[\x00\t\n\x0c\r ]|%[^\r\n]*)"  # white space or a comment
_PDF_OFFSET: Final = re.compile(
    rb"%s*(\d+)(?![\d.])(?!%s+\d+%s+R)" % (_PDF_GAP, _PDF_GAP, _PDF_GAP)
)
_PDF_STARTXREF: Final = re.compile(rb"startxref\s+(\d+)")


def _pdf_name(raw_name: bytes) -> str:
    return _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m[1], 16)]), raw_name).decode("latin-1")


def _is_active(name: str) -> bool:
    return name in _ACTIVE_NAMES or name.startswith(_ACTIVE_PREFIXES)


def _scan_pdf_bytes(raw: bytes) -> None:
    """Refuse on an active name anywhere outside stream data, an object hidden inside a stream, or
    a cross-reference chain that loops.

    Stream data is skipped because random compressed bytes spell ``/JS`` or ``/AA`` often enough
    to refuse a few percent of scanned PDFs. Strings and comments are *not* skipped: a name inside
    them refuses the file too, so no trick with parentheses or ``%`` can hide one. A stream whose
    data contains ``N G obj`` or ``endobj`` is someone hiding objects from this scan (real streams
    are compressed or drawing operators) and is refused.
    """
    previous: list[int] = []  # every /Prev offset: where older cross-reference sections start
    pos = 0
    while match := _PDF_NAME_OR_STREAM.search(raw, pos):
        if match.group(1) is not None:
            name = _pdf_name(match.group(1))
            if _is_active(name):
                raise UploadRejected(PDF_ACTIVE)
            if name == "Prev" and (offset := _PDF_OFFSET.match(raw, match.end())):
                previous.append(int(offset.group(1)))
            pos = match.end()
            continue
        end = raw.find(b"endstream", match.end())
        body_end = len(raw) if end < 0 else end
        if _PDF_HIDDEN_OBJECT.search(raw, match.end(), body_end):
            raise UploadRejected(PDF_ACTIVE)
        pos = body_end + len(b"endstream")
    # Each update of a PDF adds a cross-reference section whose trailer points (/Prev) at the one
    # before. A chain that comes back to a section already read never ends: pypdf before 6.7.2
    # follows it forever (CVE-2026-27628). Sections are distinct, so offsets must be too.
    newest = _PDF_STARTXREF.findall(raw[-1024:])
    chain = previous + [int(newest[-1])] if newest else previous
    if len(set(chain)) != len(chain):
        raise UploadRejected(DAMAGED_PDF)


def _scan_decoded_objects(data: bytes) -> None:
    """An object stream's decoded contents: plain objects, every name is looked at."""
    for match in _PDF_NAME.finditer(data):
        if _is_active(_pdf_name(match.group(1))):
            raise UploadRejected(PDF_ACTIVE)


def _accept_pdf(raw: bytes, display: str, limits: UploadLimits) -> AcceptedFile:
    # The spec lets %%EOF sit anywhere in the last 1024 bytes; a cut-off upload has none there.
    if b"%%EOF" not in raw[-1024:]:
        raise UploadRejected(DAMAGED_PDF)
    _scan_pdf_bytes(raw)
    pages = _inspect_pdf_structure(raw, limits)
    if pages > limits.max_pdf_pages:
        raise UploadRejected(PDF_TOO_MANY_PAGES.format(pages=pages, max_pages=limits.max_pdf_pages))
    return AcceptedFile(
        content=raw,
        content_type="application/pdf",
        extension=".pdf",
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        original_filename=display,
        pages=pages,
    )


def _inspect_pdf_structure(raw: bytes, limits: UploadLimits) -> int:
    """Parse with pypdf: refuse encryption and active objects, return the page count."""
    try:
        from pypdf import PdfReader
        from pypdf.generic import IndirectObject
    except ImportError as exc:  # without pypdf nothing can vouch for a PDF
        raise UploadRejected(PDF_UNAVAILABLE) from exc

    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            raise UploadRejected(PDF_ENCRYPTED)
        references = {
            (number, generation)
            for generation, entries in reader.xref.items()
            for number in entries
        }
        references |= {(number, 0) for number in reader.xref_objStm}
        if len(references) > limits.max_pdf_objects:
            raise UploadRejected(PDF_ACTIVE)
        objects: list[object] = [reader.trailer]
        for number, generation in sorted(references):
            objects.append(reader.get_object(IndirectObject(number, generation, reader)))
        _check_pdf_objects(objects)
        pages = len(reader.pages)
    except UploadRejected:
        raise
    except Exception as exc:
        # pypdf raises its own errors, but also ValueError, KeyError, RecursionError… on hostile
        # input. What pypdf cannot read, a viewer may read differently: refuse.
        raise UploadRejected(DAMAGED_PDF) from exc
    if pages < 1:
        raise UploadRejected(DAMAGED_PDF)
    return pages


def _check_pdf_objects(objects: list[object]) -> None:
    """Look at every name in the parsed objects.

    References are not followed (every indirect object is already in the list) and there is no
    recursion: the nesting depth of a PDF is the attacker's choice.
    """
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, StreamObject

    pending = list(objects)
    while pending:
        obj = pending.pop()
        if isinstance(obj, DictionaryObject):
            for key, value in obj.items():
                if _is_active(key[1:]):
                    raise UploadRejected(PDF_ACTIVE)
                if key == "/OpenAction":
                    _check_open_action(value.get_object())
                pending.append(value)
            if isinstance(obj, StreamObject) and obj.get("/Type") == "/ObjStm":
                _scan_decoded_objects(obj.get_data())
        elif isinstance(obj, ArrayObject):
            pending.extend(obj)
        elif isinstance(obj, NameObject) and _is_active(obj[1:]):
            raise UploadRejected(PDF_ACTIVE)


def _check_open_action(action: object) -> None:
    """An /OpenAction may only open the document at a page: a destination or a /GoTo action."""
    from pypdf.generic import ArrayObject, DictionaryObject

    if isinstance(action, ArrayObject):
        return
    if isinstance(action, DictionaryObject) and action.get("/S") in _PASSIVE_OPEN_ACTIONS:
        return
    raise UploadRejected(PDF_ACTIVE)


# --- Display names -----------------------------------------------------------------------------

_MAX_NAME: Final = 100
_FALLBACK_NAME: Final = "tệp đính kèm"
# Windows-reserved and shell-meaningful characters; the name is only shown, but it also ends up in
# a download's Content-Disposition and in an official's file manager.
_UNSAFE_PUNCTUATION: Final = re.compile(r"[<>:\"|?*`$;&'\\]")
_SPACES: Final = re.compile(r"\s+")


def safe_display_name(filename: str) -> str:
    """A name fit to show to staff: what the citizen's phone called the file, made harmless."""
    name = unicodedata.normalize("NFC", filename)
    # Drop control, format (bidi overrides that fake an extension), surrogate, private-use and
    # unassigned characters; NUL included.
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = re.split(r"[/\\]", name)[-1]  # no directories, whichever OS sent it
    name = _UNSAFE_PUNCTUATION.sub("_", name)
    name = _SPACES.sub(" ", name).strip(" .")
    if not name:
        return _FALLBACK_NAME
    if len(name) > _MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            keep = _MAX_NAME - len(extension) - 1
            name = stem[:keep].rstrip(" .") + "." + extension
        else:
            name = name[:_MAX_NAME]
    return name
