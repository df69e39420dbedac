"""The test rasteriser paints our SVG QR codes exactly as the PNG renderer does."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from core.posters import qr_matrix, qr_png, qr_svg
from tests.qr_raster import rasterise_svg


@pytest.mark.parametrize("text", ["x", "https://nhuanduc.tphcm.gov.vn/q/abc", "0" * 300])
def test_svg_paints_the_same_pixels_as_the_png(text: str) -> None:
    matrix = qr_matrix(text)
    painted = rasterise_svg(qr_svg(matrix), scale=3)
    reference = Image.open(io.BytesIO(qr_png(matrix, scale=3))).convert("L")
    assert painted.size == reference.size
    assert painted.tobytes() == reference.tobytes()
    [barcode] = zxingcpp.read_barcodes(painted, formats=zxingcpp.BarcodeFormat.QRCode)
    assert barcode.text == text


def test_relative_and_absolute_commands_and_white_shapes() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4">'
        '<rect width="4" height="4" fill="#fff"/>'
        '<path d="M0 0H2V2H0Z m2 2 l2 0 l0 2 h-2 z"/>'
        '<rect x="0" y="0" width="1" height="1" fill="white"/></svg>'
    )
    image = rasterise_svg(svg, scale=1)
    assert list(image.tobytes()) == [
        255, 0, 255, 255,
        0, 0, 255, 255,
        255, 255, 0, 0,
        255, 255, 0, 0,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><path d="M0 0L2 2z"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><path d="M0 0c1 1 2 2 3 3"/>'
        "</svg>",
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 4 4"><circle r="1"/></svg>',
    ],
)
def test_what_it_cannot_paint_faithfully_is_refused(svg: str) -> None:
    with pytest.raises(ValueError):
        rasterise_svg(svg)
