"""How fast citizen photos are checked and re-encoded: draft() decoding against a full decode.

Run: .venv/bin/python bench/uploads_bench.py [--rounds 5]

A photo-like JPEG is made in memory (gradients, paper texture, sensor noise and lines of text,
saved at phone quality 92), then pushed through `core.uploads.inspect_upload` on one core. The
baseline is the very same call with Pillow's `JpegImageFile.draft` turned into a no-op, so the only
difference is the DCT-scaled decode. Each figure is the median of a few rounds after one warm-up.

JPEG DCT scaling only comes in 1/2, 1/4 and 1/8, and `inspect_upload` never decodes below the
output size. So with the default 2400 px output a 4000×3000 photo cannot be decoded smaller
(4000/2 = 2000 < 2400) and draft() changes nothing; the scenarios below show where it does pay.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, JpegImagePlugin  # noqa: E402 - after the path set-up above

from core.uploads import UploadLimits, inspect_upload  # noqa: E402 - after the path set-up

TEXT = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc — GIẤY CHỨNG SINH  "


def photo_jpeg(size: tuple[int, int]) -> bytes:
    """A phone photo of a paper, as far as a JPEG encoder can tell: smooth light falloff, paper
    grain, sensor noise, and dark text, saved at the quality phones use (~92)."""
    width, height = size
    light = Image.linear_gradient("L").rotate(90).resize(size)
    falloff = Image.linear_gradient("L").resize(size)
    grain = Image.effect_noise((width // 8, height // 8), 60).resize(size, Image.Resampling.BICUBIC)
    sensor = Image.effect_noise(size, 9)
    image = Image.merge(
        "RGB",
        (
            Image.blend(light, grain, 0.3),
            Image.blend(falloff, sensor, 0.5),
            Image.blend(grain, sensor, 0.5),
        ),
    )
    draw = ImageDraw.Draw(image)
    line = max(24, height // 33)
    for y in range(height // 10, height - height // 10, line * 2):
        draw.text((width // 13, y), TEXT * 2, fill=(20, 20, 30), font_size=line)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def seconds_per_file(data: bytes, limits: UploadLimits, rounds: int) -> tuple[float, str]:
    accepted = inspect_upload(data, filename="IMG.jpg", limits=limits)  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        inspect_upload(data, filename="IMG.jpg", limits=limits)
        times.append(time.perf_counter() - start)
    stored = f"{accepted.width}×{accepted.height}, {accepted.size / 1e6:.2f} MB"
    return statistics.median(times), stored


def stages(data: bytes, rounds: int) -> list[tuple[str, float]]:
    def median(step: Callable[[], object]) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def decode() -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    full = decode()
    small = full.resize((2400, 1800), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return [
        ("decode 4000×3000", median(decode)),
        (
            "Lanczos resize to 2400×1800",
            median(lambda: full.resize((2400, 1800), Image.Resampling.LANCZOS, reducing_gap=3.0)),
        ),
        (
            "JPEG q85, optimised tables",
            median(lambda: small.save(io.BytesIO(), "JPEG", quality=85, optimize=True)),
        ),
        ("JPEG q85, default tables", median(lambda: small.save(io.BytesIO(), "JPEG", quality=85))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-48mp", action="store_true", help="skip the 8000×6000 scenario")
    args = parser.parse_args()

    twelve = photo_jpeg((4000, 3000))
    scenarios = [
        ("12 MP 4000×3000 → 2400 px (default)", twelve, UploadLimits()),
        ("12 MP 4000×3000 → 2000 px", twelve, UploadLimits(output_long_side=2000)),
    ]
    if not args.skip_48mp:
        scenarios.append(("48 MP 8000×6000 → 2400 px", photo_jpeg((8000, 6000)), UploadLimits()))

    print(f"Python {sys.version.split()[0]}, Pillow {Image.__version__}, one core, ", end="")
    print(f"median of {args.rounds} rounds")
    for title, data, limits in scenarios:
        with_draft, stored = seconds_per_file(data, limits, args.rounds)
        with mock.patch.object(JpegImagePlugin.JpegImageFile, "draft", lambda *a, **k: None):
            full, _ = seconds_per_file(data, limits, args.rounds)
        print(f"\n{title}: input {len(data) / 1e6:.2f} MB, stored {stored}")
        print(f"  draft() decode : {with_draft * 1000:7.0f} ms/file  {1 / with_draft:5.2f} files/s")
        print(f"  full decode    : {full * 1000:7.0f} ms/file  {1 / full:5.2f} files/s")
        print(f"  speed-up       : {full / with_draft:5.2f}×")
        print(f"  dossiers/s (2 photos): draft {1 / with_draft / 2:5.2f}, full {1 / full / 2:5.2f}")

    print("\nWhere the time goes, 12 MP → 2400 px (plain Pillow, same steps):")
    for step, seconds in stages(twelve, args.rounds):
        print(f"  {step:<28}{seconds * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
