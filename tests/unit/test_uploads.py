"""Citizen uploads: type by content, re-encoding without metadata, bombs, inert PDFs, names."""

import contextlib
import hashlib
import io
import struct
import threading
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from core.text import Message
from core.uploads import (
    DAMAGED_IMAGE,
    DAMAGED_PDF,
    EMPTY,
    HEIC,
    NOT_ALLOWED,
    PDF_ACTIVE,
    PDF_ENCRYPTED,
    AcceptedFile,
    UploadLimits,
    UploadRejected,
    inspect_upload,
    safe_display_name,
)

LIMITS = UploadLimits()


# --- Fixtures, all made here -------------------------------------------------------------------


def _jpeg(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **save)
    return out.getvalue()


def _png(image: Image.Image, **save: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **save)
    return out.getvalue()


def _photo(size: tuple[int, int]) -> Image.Image:
    """Gradients under a little noise: compresses like a photo, not like a flat colour."""
    width, height = size
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 20)
    return Image.merge(
        "RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )


def _two_halves(size: tuple[int, int]) -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    image = Image.new("RGB", size, (220, 20, 20))
    image.paste((20, 20, 220), (size[0] // 2, 0, size[0], size[1]))
    return image


def _exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Xiaomi"
    exif[ExifTags.Base.Model] = "Redmi Note 13"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (21.0, 1.0, 30.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (105.0, 48.0, 12.0),
        ExifTags.GPS.GPSProcessingMethod: b"ASCII\x00\x00\x00GPS",
    }
    return exif


def _patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite IHDR's width and height and its CRC: a valid header over a tiny pixel stream."""
    ihdr = bytearray(png[12:29])  # type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return png[:12] + bytes(ihdr) + crc + png[33:]


def _patch_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


def _reportlab_pdf(pages: int = 1) -> bytes:
    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for number in range(pages):
        pdf.drawString(72, 770, f"Giấy chứng sinh — trang {number + 1}")
        pdf.showPage()
    pdf.save()
    return out.getvalue()


_CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
_PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def _pdf(
    objects: dict[int, bytes],
    *,
    packed: frozenset[int] = frozenset(),
    unreferenced: bytes = b"",
) -> bytes:
    """A PDF written by hand: plain objects, optionally some packed into a compressed object stream
    (then with a cross-reference stream, as PDF 1.5+ writers do), optionally bytes the cross-
    reference table does not point at."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(set(objects) - packed):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    out += unreferenced
    if not packed:
        size = max(objects) + 1
        xref_at = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        for number in range(1, size):
            if number in offsets:
                out += b"%010d 00000 n \n" % offsets[number]
            else:
                out += b"0000000000 65535 f \n"
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
        return bytes(out)

    stream_number, xref_number = max(objects) + 1, max(objects) + 2
    header, body = b"", b""
    for number in sorted(packed):
        header += b"%d %d " % (number, len(body))
        body += objects[number] + b"\n"
    data = zlib.compress(header + body)
    offsets[stream_number] = len(out)
    out += (
        b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
        % (stream_number, len(packed), len(header), len(data))
    )
    out += data + b"\nendstream\nendobj\n"
    offsets[xref_number] = len(out)
    size = xref_number + 1
    rows = b""
    for number in range(size):
        if number in offsets:
            rows += struct.pack(">BIH", 1, offsets[number], 0)
        elif number in packed:
            rows += struct.pack(">BIH", 2, stream_number, sorted(packed).index(number))
        else:
            rows += struct.pack(">BIH", 0, 0, 65535)
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % (
        xref_number,
        size,
        len(rows),
    )
    out += rows + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_number]
    return bytes(out)


def _minimal_pdf(
    catalog: bytes = _CATALOG, *, packed: frozenset[int] = frozenset(), unreferenced: bytes = b""
) -> bytes:
    return _pdf({1: catalog, 2: _PAGES, 3: _PAGE}, packed=packed, unreferenced=unreferenced)


def _rejected(data: bytes, limits: UploadLimits = LIMITS, filename: str = "giay.jpg") -> Message:
    with pytest.raises(UploadRejected) as caught:
        inspect_upload(data, filename=filename, limits=limits)
    return caught.value.reason


def _open(accepted: AcceptedFile) -> Image.Image:
    return Image.open(io.BytesIO(accepted.content))


# --- Metadata never survives -------------------------------------------------------------------


def test_jpeg_exif_gps_xmp_icc_and_comment_are_all_gone() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = _jpeg(
        _photo((640, 480)),
        exif=_exif_with_gps(),
        xmp="<x:xmpmeta xmlns:x='adobe:ns:meta/'>vị trí</x:xmpmeta>".encode(),
        comment=b"nha-ong-a",
        icc_profile=icc,
    )
    assert b"GPS" in original and b"Exif" in original  # the fixture really carries them
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)

    accepted = inspect_upload(original, filename="IMG_0001.jpg", limits=LIMITS)

    stored = _open(accepted)
    assert len(stored.getexif()) == 0
    assert stored.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    for marker in (b"GPS", b"Exif", b"xmpmeta", b"adobe", b"nha-ong-a", b"Xiaomi", b"ICC_PROFILE"):
        assert marker not in accepted.content
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(stored.info)


def test_png_text_chunks_exif_and_icc_are_gone() -> None:
    info = PngInfo()
    info.add_text("Author", "Nguyen Van A")
    info.add_itxt("Comment", "vị trí nhà", lang="vi")
    info.add_text("Location", "21.02,105.80" * 50, zip=True)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = _png(
        Image.new("RGB", (300, 200), "white"), pnginfo=info, exif=_exif_with_gps(), icc_profile=icc
    )

    accepted = inspect_upload(original, filename="chup-man-hinh.png", limits=LIMITS)

    assert accepted.content_type == "image/png"  # a flat screenshot stays lossless
    for marker in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"Author", b"GPS", b"Exif"):
        assert marker not in accepted.content
    assert _open(accepted).info == {}


# --- Re-encoding -------------------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    # Stored sideways as phones do (orientation 6: turn 90° clockwise to view): red on the left.
    original = _jpeg(_two_halves((400, 200)), exif=_exif_with_gps(orientation=6))

    stored = _open(inspect_upload(original, filename="a.jpg", limits=LIMITS))

    assert stored.size == (200, 400)
    top, bottom = stored.getpixel((100, 50)), stored.getpixel((100, 350))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 > top[2]  # red went to the top
    assert bottom[2] > 150 > bottom[0]


def test_12_megapixel_photo_is_scaled_to_2000_on_the_long_side() -> None:
    original = _jpeg(_photo((4000, 3000)), quality=80)

    accepted = inspect_upload(original, filename="IMG_20250101.jpg", limits=LIMITS)

    assert (accepted.width, accepted.height) == (2000, 1500)
    assert _open(accepted).size == (2000, 1500)
    assert accepted.content_type == "image/jpeg"
    assert accepted.size < len(original)


def test_portrait_photo_keeps_its_shape() -> None:
    accepted = inspect_upload(_jpeg(_photo((1500, 3000))), filename="a.jpg", limits=LIMITS)
    assert (accepted.width, accepted.height) == (1000, 2000)


def test_draft_scaled_decode_still_ends_at_the_exact_output_size() -> None:
    # 5000 px wide: decoded at 1/2 (2500 px) by draft(), then resized to 2000.
    accepted = inspect_upload(_jpeg(_photo((5000, 1000))), filename="a.jpg", limits=LIMITS)
    assert (accepted.width, accepted.height) == (2000, 400)


def test_output_long_side_is_configurable_and_small_images_are_not_enlarged() -> None:
    limits = UploadLimits(output_long_side=1000)
    assert inspect_upload(_jpeg(_photo((3000, 2000))), filename="a", limits=limits).width == 1000
    small = inspect_upload(_jpeg(_photo((640, 480))), filename="a", limits=limits)
    assert (small.width, small.height) == (640, 480)


def test_photo_saved_as_png_is_stored_as_jpeg() -> None:
    accepted = inspect_upload(_png(_photo((800, 600))), filename="scan.png", limits=LIMITS)
    assert accepted.content_type == "image/jpeg"
    assert accepted.extension == ".jpg"
    assert accepted.content.startswith(b"\xff\xd8\xff")


def test_transparent_png_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((10, 10, 10, 255), (0, 0, 100, 100))
    stored = _open(inspect_upload(_png(image), filename="a.png", limits=LIMITS)).convert("RGB")
    assert stored.getpixel((150, 50)) == (255, 255, 255)
    assert stored.getpixel((50, 50)) == (10, 10, 10)


@pytest.mark.parametrize(
    ("image", "mode"),
    [
        (Image.new("I;16", (60, 40), 40000), "L"),  # 16-bit greyscale scan
        (Image.new("1", (60, 40), 1), "L"),
        (Image.new("L", (60, 40), 128), "L"),
        (Image.new("P", (60, 40), 3), "RGB"),
        (Image.new("LA", (60, 40), (100, 255)), "L"),
    ],
)
def test_png_modes_end_as_rgb_or_grey(image: Image.Image, mode: str) -> None:
    accepted = inspect_upload(_png(image), filename="a.png", limits=LIMITS)
    assert _open(accepted).mode == mode
    assert (accepted.width, accepted.height) == (60, 40)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    accepted = inspect_upload(_png(Image.new("I;16", (8, 8), 32896)), filename="a", limits=LIMITS)
    assert _open(accepted).getpixel((1, 1)) == 128


def test_cmyk_jpeg_becomes_rgb() -> None:
    accepted = inspect_upload(
        _jpeg(Image.new("CMYK", (64, 48), (0, 255, 255, 0))), filename="a", limits=LIMITS
    )
    stored = _open(accepted)
    assert stored.mode == "RGB"
    pixel = stored.getpixel((5, 5))
    assert isinstance(pixel, tuple)
    red, green, blue = pixel
    assert red > 200 and green < 40 and blue < 40


def test_accepted_file_describes_its_content() -> None:
    accepted = inspect_upload(
        _jpeg(_photo((320, 240))), filename="Giấy khai sinh.jpg", limits=LIMITS
    )
    assert accepted.sha256 == hashlib.sha256(accepted.content).hexdigest()
    assert accepted.size == len(accepted.content)
    assert (accepted.content_type, accepted.extension, accepted.pages) == (
        "image/jpeg",
        ".jpg",
        None,
    )
    assert accepted.original_filename == "Giấy khai sinh.jpg"


def test_a_stream_is_read_like_bytes() -> None:
    original = _jpeg(_photo((320, 240)))
    from_stream = inspect_upload(io.BytesIO(original), filename="a.jpg", limits=LIMITS)
    from_bytes = inspect_upload(original, filename="a.jpg", limits=LIMITS)
    assert from_stream.sha256 == from_bytes.sha256


# --- Type by content, never by name ------------------------------------------------------------


def test_html_named_jpg_is_refused() -> None:
    html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
    assert _rejected(html, filename="giay-khai-sinh.jpg") == NOT_ALLOWED


def test_png_named_pdf_is_treated_as_png() -> None:
    accepted = inspect_upload(
        _png(Image.new("RGB", (120, 80), "white")), filename="scan.pdf", limits=LIMITS
    )
    assert accepted.content_type == "image/png"
    assert accepted.extension == ".png"
    assert (accepted.width, accepted.height, accepted.pages) == (120, 80, None)


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("giay.jpg", b"not really")
    return out.getvalue()


def _image_bytes(format_: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(out, format_)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_image_bytes("GIF"), id="gif"),
        pytest.param(_image_bytes("WEBP"), id="webp"),
        pytest.param(_image_bytes("BMP"), id="bmp"),
        pytest.param(_image_bytes("TIFF"), id="tiff"),
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>', id="svg"
        ),
        pytest.param(_zip(), id="zip"),
        pytest.param(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 100, id="exe"),
        pytest.param(b"\x7fELF\x02\x01\x01" + b"\x00" * 100, id="elf"),
        pytest.param(b"  %PDF-1.4\n" + _minimal_pdf()[9:], id="pdf-header-not-at-start"),
        pytest.param(b"\xff\xd8", id="two-bytes-of-jpeg"),
    ],
)
def test_other_types_are_refused(data: bytes) -> None:
    assert _rejected(data) == NOT_ALLOWED


def test_heic_gets_its_own_advice() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    reason = _rejected(heic, filename="IMG_0001.HEIC")
    assert reason == HEIC
    assert "Tương thích nhất" in HEIC.vi


def test_empty_file_and_empty_stream_are_refused() -> None:
    assert _rejected(b"") == EMPTY
    with pytest.raises(UploadRejected) as caught:
        inspect_upload(io.BytesIO(b""), filename="a.jpg", limits=LIMITS)
    assert caught.value.reason == EMPTY


def test_oversize_bytes_are_refused_before_parsing() -> None:
    original = _jpeg(_photo((320, 240)))
    reason = _rejected(original, limits=UploadLimits(max_bytes=len(original) - 1))
    assert "MB" in reason.vi and "MB" in reason.en
    assert inspect_upload(original, filename="a", limits=UploadLimits(max_bytes=len(original)))


class _EndlessStream(io.RawIOBase):
    """A client that never stops sending."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 65536 if size < 0 else size
        self.given += size
        return b"\xff" * size


def test_an_endless_stream_is_read_no_further_than_the_limit() -> None:
    stream = _EndlessStream()
    with pytest.raises(UploadRejected):
        inspect_upload(
            cast(BinaryIO, stream), filename="a.jpg", limits=UploadLimits(max_bytes=3 * 1024 * 1024)
        )
    assert stream.given == 3 * 1024 * 1024 + 1


def test_too_large_message_names_the_limit_in_each_language() -> None:
    whole = _rejected(b"x" * (1024 * 1024 + 1), limits=UploadLimits(max_bytes=1024 * 1024))
    assert "1 MB" in whole.vi and "1 MB" in whole.en
    odd = _rejected(
        b"x" * (int(2.5 * 1024 * 1024) + 1), limits=UploadLimits(max_bytes=int(2.5 * 1024 * 1024))
    )
    assert "2,5 MB" in odd.vi and "2.5 MB" in odd.en


# --- Bombs -------------------------------------------------------------------------------------


@contextmanager
def _no_pixels_allocated() -> Iterator[None]:
    """Pillow's image memory is C malloc, invisible to tracemalloc: count Pillow's own image
    allocations as well as Python's peak."""
    before = Image.core.get_stats()["new_count"]
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert Image.core.get_stats()["new_count"] == before
    assert peak < 20 * 1024 * 1024


@pytest.mark.parametrize(
    ("width", "height"),
    [(40_000, 40_000), (9_000, 7_000), (13_000, 10), (65_535, 1)],
    ids=["1.6-gigapixel", "63-megapixel", "side-too-long", "widest-png-row"],
)
def test_png_bomb_is_refused_from_its_header(width: int, height: int) -> None:
    bomb = _patch_png_size(_png(Image.new("L", (1, 1))), width, height)
    assert len(bomb) < 100
    with _no_pixels_allocated():
        reason = _rejected(bomb, filename="anh.png")
    assert f"{width}×{height}" in reason.vi


def test_jpeg_bomb_is_refused_from_its_header() -> None:
    bomb = _patch_jpeg_size(_jpeg(Image.new("RGB", (8, 8))), 60_000, 60_000)
    with _no_pixels_allocated():
        reason = _rejected(bomb)
    assert "60000×60000" in reason.en


def test_pixel_limits_are_configurable() -> None:
    image = _png(Image.new("L", (300, 200)))
    _rejected(image, limits=UploadLimits(max_pixels=300 * 200 - 1))
    _rejected(image, limits=UploadLimits(max_side=299))
    assert inspect_upload(
        image, filename="a", limits=UploadLimits(max_pixels=300 * 200, max_side=300)
    )


def test_a_jpeg_with_thousands_of_scans_is_refused() -> None:
    original = _jpeg(_photo((64, 64)))
    sos = original.index(b"\xff\xda")
    # Repeat the scan header over and over: the CPU bomb's shape, without its size.
    length = int.from_bytes(original[sos + 2 : sos + 4], "big")
    header = original[sos : sos + 2 + length]
    bomb = original[:sos] + header * 500 + original[sos + 2 + length :]
    assert _rejected(bomb) == DAMAGED_IMAGE


def test_limits_must_leave_pillows_bomb_check_unreached() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(ValueError, match="MAX_IMAGE_PIXELS"):
        UploadLimits(max_pixels=Image.MAX_IMAGE_PIXELS + 1)
    with pytest.raises(ValueError):
        UploadLimits(jpeg_quality=100)
    with pytest.raises(ValueError):
        UploadLimits(max_bytes=0)


def test_pillow_globals_are_left_alone() -> None:
    inspect_upload(_jpeg(_photo((100, 100))), filename="a", limits=LIMITS)
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- Polyglots and damage ----------------------------------------------------------------------


def test_jpeg_html_polyglot_keeps_only_pixels() -> None:
    payload = b"<html><script>alert(document.cookie)</script></html>"
    polyglot = _jpeg(_photo((200, 150)), comment=payload) + payload + _zip()

    accepted = inspect_upload(polyglot, filename="a.jpg", limits=LIMITS)

    assert b"<script>" not in accepted.content
    assert b"PK\x03\x04" not in accepted.content
    assert accepted.content.endswith(b"\xff\xd9")


def test_png_with_trailing_junk_keeps_only_pixels() -> None:
    accepted = inspect_upload(
        _png(Image.new("RGB", (50, 50))) + b"<script>x()</script>", filename="a", limits=LIMITS
    )
    assert b"<script>" not in accepted.content


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_jpeg_is_refused_with_advice(keep: float) -> None:
    original = _jpeg(_photo((400, 300)))
    reason = _rejected(original[: int(len(original) * keep)])
    assert reason == DAMAGED_IMAGE
    assert "chưa tải lên hết" in DAMAGED_IMAGE.vi and "gửi lại" in DAMAGED_IMAGE.vi


def test_truncated_png_is_refused() -> None:
    original = _png(_photo((200, 150)))
    assert _rejected(original[: len(original) // 2]) == DAMAGED_IMAGE


def test_corrupt_exif_does_not_stop_an_upright_photo() -> None:
    original = _jpeg(
        _photo((120, 90)), exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05garbage"
    )
    accepted = inspect_upload(original, filename="a", limits=LIMITS)
    assert (accepted.width, accepted.height) == (120, 90)


# --- PDF ---------------------------------------------------------------------------------------


def test_clean_reportlab_pdf_is_accepted_unchanged() -> None:
    original = _reportlab_pdf()
    accepted = inspect_upload(original, filename="giay-to.pdf", limits=LIMITS)
    assert accepted.content == original
    assert (accepted.content_type, accepted.extension, accepted.pages) == (
        "application/pdf",
        ".pdf",
        1,
    )
    assert accepted.width is None and accepted.height is None


def test_clean_hand_written_pdfs_are_accepted() -> None:
    assert inspect_upload(_minimal_pdf(), filename="a.pdf", limits=LIMITS).pages == 1
    packed = _minimal_pdf(packed=frozenset({2, 3}))
    assert inspect_upload(packed, filename="a.pdf", limits=LIMITS).pages == 1


@pytest.mark.parametrize(
    "catalog",
    [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction [3 0 R /Fit] >>",
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /GoTo /D [3 0 R /Fit] >> >>",
    ],
    ids=["destination", "goto"],
)
def test_open_action_that_only_opens_a_page_is_accepted(catalog: bytes) -> None:
    assert inspect_upload(_minimal_pdf(catalog), filename="a.pdf", limits=LIMITS).pages == 1


_JS_OPEN = b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>"


@pytest.mark.parametrize(
    "catalog",
    [
        _JS_OPEN,
        b"<< /Type /Catalog /Pages 2 0 R /Names << /JavaScript 4 0 R >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /Launch /F (cmd.exe) >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /URI /URI (http://x.example) >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /AA << /O << /S /GoTo /D [3 0 R /Fit] >> >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /XFA 4 0 R >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 4 0 R >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /GoToR /F (\\\\\\\\host\\\\share) >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /Extra << /Subtype /RichMedia >> >>",
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /J#61vaScript /J#53 (x) >> >>",
    ],
    ids=[
        "openaction-js",
        "names-js",
        "launch",
        "openaction-uri",
        "additional-actions",
        "xfa",
        "embedded-files",
        "remote-goto",
        "rich-media",
        "escaped-names",
    ],
)
def test_pdf_with_active_content_is_refused(catalog: bytes) -> None:
    assert _rejected(_minimal_pdf(catalog), filename="a.pdf") == PDF_ACTIVE


def test_script_inside_a_compressed_object_stream_is_refused() -> None:
    pdf = _pdf({1: _JS_OPEN, 2: _PAGES, 3: _PAGE}, packed=frozenset({1, 2, 3}))
    assert b"JavaScript" not in pdf  # invisible to a scan of the raw bytes
    assert _rejected(pdf, filename="a.pdf") == PDF_ACTIVE


def test_script_in_an_object_the_xref_does_not_list_is_refused() -> None:
    # A viewer that repairs cross-references would find it; pypdf, trusting the table, would not.
    hidden = b"9 0 obj\n<< /S /JavaScript /JS (app.alert(1)) >>\nendobj\n"
    assert _rejected(_minimal_pdf(unreferenced=hidden), filename="a.pdf") == PDF_ACTIVE


def test_objects_hidden_inside_stream_data_are_refused() -> None:
    hidden = (
        b"8 0 obj\n<< /Length 60 >>\nstream\n"
        b"9 0 obj << /Type /Catalog >> endobj\n"
        b"endstream\nendobj\n"
    )
    assert _rejected(_minimal_pdf(unreferenced=hidden), filename="a.pdf") == PDF_ACTIVE


def test_pypdf_written_script_and_attachment_are_refused() -> None:
    for add in (lambda w: w.add_js("app.alert(1);"), lambda w: w.add_attachment("x.exe", b"MZ")):
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_reportlab_pdf())))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # add_js: the simplest script
            add(writer)
        out = io.BytesIO()
        writer.write(out)
        assert _rejected(out.getvalue(), filename="a.pdf") == PDF_ACTIVE


def test_encrypted_pdf_is_refused() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_reportlab_pdf())))
    writer.encrypt(user_password="", owner_password="chu-so-huu", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    assert _rejected(out.getvalue(), filename="a.pdf") == PDF_ENCRYPTED


def test_pdf_page_limit() -> None:
    three = _reportlab_pdf(pages=3)
    reason = _rejected(three, limits=UploadLimits(max_pdf_pages=2), filename="a.pdf")
    assert "3 trang" in reason.vi and "(2)" in reason.en
    assert inspect_upload(three, filename="a.pdf", limits=UploadLimits(max_pdf_pages=3)).pages == 3


def test_truncated_or_broken_pdf_is_refused() -> None:
    original = _reportlab_pdf()
    assert _rejected(original[: len(original) // 2], filename="a.pdf") == DAMAGED_PDF
    no_pages = _pdf(
        {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [] /Count 0 >>"}
    )
    assert _rejected(no_pages, filename="a.pdf") == DAMAGED_PDF
    garbage = b"%PDF-1.4\n" + b"\x00garbage" * 100 + b"\n%%EOF\n"
    assert _rejected(garbage, filename="a.pdf") == DAMAGED_PDF


def _looping_sections(pdf: bytes) -> bytes:
    """Add an update section whose trailer points back (/Prev) at the first section, and make the
    first trailer point at the new one: two sections that lead to each other forever."""
    first = pdf.index(b"\nxref\n") + 1
    marked = pdf.replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Prev 0000000000 >>", 1)
    second = len(marked)
    marked = marked.replace(b"/Prev 0000000000", b"/Prev %010d" % second)
    update = (
        b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\n" % first
    )
    return marked + update + b"startxref\n%d\n%%%%EOF\n" % second


def _finishes(call: Callable[[], object]) -> bool:
    """Run `call` on a watchdog thread: a regression here loops forever, and a test should fail,
    not hang. (Not a timing assertion: 60 s is for "never returns".)"""
    done = threading.Event()

    def run() -> None:
        with contextlib.suppress(UploadRejected):
            call()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(60)


@pytest.mark.parametrize("cycle", ["self", "two-sections"])
def test_cross_reference_chain_that_loops_is_refused(cycle: str) -> None:
    pdf = _minimal_pdf()
    if cycle == "self":
        xref = pdf.index(b"\nxref\n") + 1
        looped = pdf.replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Prev %d >>" % xref)
    else:
        looped = _looping_sections(pdf)
    assert _finishes(lambda: inspect_upload(looped, filename="a.pdf", limits=LIMITS))
    assert _rejected(looped, filename="a.pdf") == DAMAGED_PDF


def test_outline_prev_references_are_not_offsets() -> None:
    outline_item = (
        b"<< /Title (Trang 1) /Parent 4 0 R /Prev 5 0 R /Next 5 0 R /Dest [3 0 R /Fit] >>"
    )
    objects = {1: _CATALOG, 2: _PAGES, 3: _PAGE, 4: b"<< /Count 1 >>", 5: outline_item}
    assert inspect_upload(_pdf(objects), filename="a.pdf", limits=LIMITS).pages == 1


def test_too_many_pdf_objects_is_refused() -> None:
    objects = {1: _CATALOG, 2: _PAGES, 3: _PAGE} | {n: b"<< >>" for n in range(4, 60)}
    assert (
        _rejected(_pdf(objects), limits=UploadLimits(max_pdf_objects=50), filename="a.pdf")
        == PDF_ACTIVE
    )


# --- Display names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("C:\\Users\\Lan\\Giấy khai sinh.jpg", "Giấy khai sinh.jpg"),
        ("giay\x00.jpg", "giay.jpg"),
        ("a\r\nSet-Cookie: x=1.jpg", "aSet-Cookie_ x=1.jpg"),
        ("; rm -rf ~ `id` $(whoami) | x & y.jpg", "_ rm -rf ~ _id_ _(whoami) _ x _ y.jpg"),
        ('<img src=x onerror="a">.png', "_img src=x onerror=_a__.png"),
        ("photo\u202egpj.exe", "photogpj.exe"),  # right-to-left override faking ".jpg"
        ("Gia\u0301y khai sinh.jpg", "Giáy khai sinh.jpg"),  # NFD from a Mac becomes NFC
        ("  ảnh   CCCD  .jpg ", "ảnh CCCD .jpg"),
        ("..", "tệp đính kèm"),
        ("", "tệp đính kèm"),
        ("/", "tệp đính kèm"),
    ],
)
def test_safe_display_name(given: str, shown: str) -> None:
    assert safe_display_name(given) == shown


def test_display_name_is_nfc() -> None:
    assert safe_display_name("Gia\u0301y.jpg") == "Gi\u00e1y.jpg"


def test_long_display_name_keeps_its_extension() -> None:
    name = safe_display_name("giấy chứng sinh " * 20 + ".jpeg")
    assert len(name) <= 100
    assert name.endswith(".jpeg")
    assert len(safe_display_name("x" * 500)) == 100


def test_upload_keeps_the_sanitised_name() -> None:
    accepted = inspect_upload(
        _jpeg(_photo((64, 64))), filename="../../x/ảnh\x00.jpg", limits=LIMITS
    )
    assert accepted.original_filename == "ảnh.jpg"


# --- Whatever arrives, the answer is an AcceptedFile or an UploadRejected ----------------------

_SEEDS = [
    _jpeg(_photo((48, 32)), exif=_exif_with_gps(orientation=8)),
    _jpeg(_photo((48, 32)), progressive=True),
    _png(_photo((48, 32))),
    _png(Image.new("P", (48, 32), 2), transparency=2),
    _minimal_pdf(),
    _minimal_pdf(packed=frozenset({2, 3})),
]
_FUZZ_LIMITS = UploadLimits(max_bytes=64 * 1024, max_pdf_pages=3)


def _check(data: bytes) -> None:
    try:
        accepted = inspect_upload(data, filename="x", limits=_FUZZ_LIMITS)
    except UploadRejected as rejected:
        assert rejected.reason.vi and rejected.reason.en
        return
    assert accepted.sha256 == hashlib.sha256(accepted.content).hexdigest()
    if accepted.content_type != "application/pdf":
        stored = _open(accepted)
        assert stored.size == (accepted.width, accepted.height)
        assert len(stored.getexif()) == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_only_ever_raise_upload_rejected(data: bytes) -> None:
    _check(data)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            b"\xff\xd8\xff",
            b"\x89PNG\r\n\x1a\n",
            b"%PDF-1.4\n",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        ]
    ),
    st.binary(max_size=2048),
)
def test_bytes_behind_a_valid_signature_only_raise_upload_rejected(
    magic: bytes, tail: bytes
) -> None:
    _check(magic + tail)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(min_value=0)),
)
def test_damaged_real_files_only_raise_upload_rejected(
    seed: bytes, flips: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _check(bytes(data))
