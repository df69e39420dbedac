"""Paint an SVG QR code the way a browser would, so a test can scan what a page really shows.

Only what QR renderings use is supported: `<rect>` and `<path>` elements filled black or white,
paths made of straight axis-aligned segments (M/m, H/h, V/v, L/l, Z/z), painted in document order
inside the root's viewBox, each closed subpath filled on its own (a QR code's runs never overlap).
Anything else fails loudly instead of painting a picture that merely looks right. A pixel is dark
when its centre is inside a dark shape, which is what `shape-rendering="crispEdges"` asks of a
browser.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from PIL import Image

SVG_NS = "{http://www.w3.org/2000/svg}"
_TOKEN = re.compile(r"[MmHhVvLlZz]|-?\d*\.?\d+(?:[eE][-+]?\d+)?")
_WHITE = {"#fff", "#ffffff", "white", "none"}


def _subpaths(d: str) -> list[list[tuple[float, float]]]:
    """The closed polygons of a path's `d`, as absolute vertices."""
    tokens = _TOKEN.findall(d)
    if "".join(tokens).replace(" ", "") != re.sub(r"[\s,]", "", d):
        raise ValueError(f"unsupported path data: {d[:60]!r}")
    polygons: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    x = y = 0.0
    command = ""
    i = 0

    def number() -> float:
        nonlocal i
        value = float(tokens[i])
        i += 1
        return value

    while i < len(tokens):
        if tokens[i].isalpha():
            command = tokens[i]
            i += 1
            if command in "Zz":
                if current:
                    polygons.append(current)
                    x, y = current[0]
                current = []
                continue
        if command in "Mm":
            if current:
                polygons.append(current)
            dx, dy = number(), number()
            x, y = (x + dx, y + dy) if command == "m" else (dx, dy)
            current = [(x, y)]
            command = "l" if command == "m" else "L"  # further pairs are line-tos
        elif command in "Hh":
            value = number()
            x = x + value if command == "h" else value
            current.append((x, y))
        elif command in "Vv":
            value = number()
            y = y + value if command == "v" else value
            current.append((x, y))
        elif command in "Ll":
            dx, dy = number(), number()
            nx, ny = (x + dx, y + dy) if command == "l" else (dx, dy)
            if nx != x and ny != y:
                raise ValueError("only horizontal and vertical segments are supported")
            x, y = nx, ny
            current.append((x, y))
        else:
            raise ValueError(f"unsupported path command {command!r}")
    if current:
        polygons.append(current)
    return polygons


def _paint(
    pixels: list[bytearray], polygon: list[tuple[float, float]], scale: float, value: int
) -> None:
    """Scanline fill (even-odd) of one axis-aligned polygon, sampling pixel centres."""
    edges = [
        (a[0], min(a[1], b[1]), max(a[1], b[1]))
        for a, b in zip(polygon, polygon[1:] + polygon[:1], strict=True)
        if a[0] == b[0] and a[1] != b[1]
    ]
    height, width = len(pixels), len(pixels[0])
    top = max(0, int(min(p[1] for p in polygon) * scale))
    bottom = min(height, int(max(p[1] for p in polygon) * scale) + 1)
    for row in range(top, bottom):
        y = (row + 0.5) / scale
        xs = sorted(x for x, y0, y1 in edges if y0 <= y < y1)
        for left, right in zip(xs[::2], xs[1::2], strict=True):
            first = max(0, round(left * scale))
            last = min(width, round(right * scale))
            pixels[row][first:last] = bytes([value]) * max(0, last - first)


def rasterise_svg(svg: str, *, scale: int = 4) -> Image.Image:
    """A greyscale image of the SVG, `scale` pixels per viewBox unit, white where nothing is."""
    root = ET.fromstring(svg)  # noqa: S314 - markup our own app rendered in this test
    if root.tag != f"{SVG_NS}svg":
        raise ValueError("not an SVG document")
    min_x, min_y, width, height = (float(v) for v in root.get("viewBox", "").split())
    if (min_x, min_y) != (0, 0):
        raise ValueError("only a viewBox starting at 0 0 is supported")
    pixels = [bytearray(b"\xff" * int(width * scale)) for _ in range(int(height * scale))]
    for element in root.iter():
        fill = (element.get("fill") or "#000").lower()
        value = 255 if fill in _WHITE else 0
        if element.tag == f"{SVG_NS}rect":
            x, y = float(element.get("x", 0)), float(element.get("y", 0))
            w, h = float(element.get("width", 0)), float(element.get("height", 0))
            _paint(pixels, [(x, y), (x + w, y), (x + w, y + h), (x, y + h)], scale, value)
        elif element.tag == f"{SVG_NS}path":
            for polygon in _subpaths(element.get("d", "")):
                _paint(pixels, polygon, scale, value)
        elif element.tag not in (f"{SVG_NS}svg", f"{SVG_NS}title", f"{SVG_NS}desc"):
            raise ValueError(f"unsupported SVG element {element.tag}")
    return Image.frombytes("L", (len(pixels[0]), len(pixels)), b"".join(pixels))
