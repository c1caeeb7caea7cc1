"""Shared bits of the benchmark scripts: data locations, codecs from Pillow, tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from asmr_cli.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "data" / "kodak"
OUT = ROOT / "benchmarks" / "out"


def kodak(names: list[str] | None = None) -> list[Path]:
    """Kodak images by short name ('01', 'kodim23', ...); [] when the data is absent."""
    if not KODAK.is_dir():
        return []
    if not names:
        return sorted(KODAK.glob("kodim*.png"))
    paths = []
    for n in names:
        n = n if n.startswith("kodim") else f"kodim{int(n):02d}"
        p = KODAK / f"{n}.png"
        if p.exists():
            paths.append(p)
    return paths


def pillow_codec(rgb: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    """Encode with Pillow (JPEG or WEBP) at a quality; return (bytes, decoded pixels)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=quality)
    data = buf.getvalue()
    return len(data), np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def pillow_sweep(rgb: np.ndarray, fmt: str) -> list[tuple[float, float, int]]:
    """(bpp, PSNR, quality) for every Pillow quality setting 1..100, sorted by bpp."""
    n = rgb.shape[0] * rgb.shape[1]
    points = []
    for q in range(1, 101):
        size, dec = pillow_codec(rgb, fmt, q)
        points.append((size * 8 / n, psnr(rgb, dec), q))
    return sorted(points)


def at_bpp(points: list[tuple[float, float, int]], bpp: float) -> tuple[float, float, int]:
    """PSNR at exactly `bpp`, interpolated linearly between the two quality settings that
    bracket the rate. Returns (bpp, PSNR, nearer quality); bpp is the codec's own
    nearest rate when the target is outside its range."""
    below = [p for p in points if p[0] <= bpp]
    above = [p for p in points if p[0] > bpp]
    if not below:
        return points[0]
    if not above:
        return points[-1]
    (b0, p0, q0), (b1, p1, q1) = below[-1], above[0]
    t = (bpp - b0) / (b1 - b0)
    return bpp, p0 + t * (p1 - p0), q0 if t < 0.5 else q1


def markdown_table(header: list[str], rows: list[list]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
