"""Shared bits of the benchmark scripts: data locations, codecs from Pillow, tables."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from asmr_cli.core.metrics import psnr

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


def bd_rate(rate_ref, psnr_ref, rate_test, psnr_test, local: bool = False) -> float:
    """Bjontegaard delta rate (VCEG-M33): the mean rate difference, in percent, of the test
    curve against the reference curve at equal PSNR. Positive: the test codec needs that
    many percent more bits than the reference for the same quality; negative: fewer.

    Each curve is fitted with a polynomial giving log(rate) as a function of PSNR (cubic,
    as in VCEG-M33, when it has 4 or more points; of degree n - 1 for n = 2 or 3 points,
    which then passes through them exactly), both fits are integrated over the PSNR range
    the two curves share, and the difference of the mean log-rates is turned back into a
    ratio: BD-rate = (exp(mean(log r_test) - mean(log r_ref)) - 1) * 100. Returns nan when
    a curve has fewer than 2 points or the PSNR ranges do not overlap. Pure: no state, no
    I/O; the inputs are any sequences of numbers with positive rates.

    Worked example (checked by running it): a curve and the same curve at exactly +10% rate
    for the same PSNR, whatever its shape,

        >>> r, p = [0.25, 0.5, 1.0, 2.0], [24.0, 27.5, 31.0, 35.5]
        >>> round(bd_rate(r, p, [1.1 * x for x in r], p), 4)   # test needs 10% more bits
        10.0
        >>> round(bd_rate([1.1 * x for x in r], p, r, p), 4)   # 1 / 1.1 - 1
        -9.0909

    because the two log-rate fits differ by the constant log(1.1) at every PSNR.

    local=True fits a long curve (a Pillow quality sweep of 100 points, 22-44 dB) only on
    its points inside the shared PSNR range plus the nearest one on either side, instead of
    one cubic over its whole range, which does not follow it closely (on kodim23's JPEG
    sweep the global cubic is off by up to 4% in rate, and BD-rate moved from 73.7% to
    77.5%; the local fit agreed with piecewise-linear integration to 0.1%). Curves of 4
    points or fewer are fitted whole either way, so the example above holds for both.
    """
    rate_ref, psnr_ref = np.asarray(rate_ref, float), np.asarray(psnr_ref, float)
    rate_test, psnr_test = np.asarray(rate_test, float), np.asarray(psnr_test, float)
    if min(len(rate_ref), len(rate_test)) < 2:
        return float("nan")
    lo = max(psnr_ref.min(), psnr_test.min())
    hi = min(psnr_ref.max(), psnr_test.max())
    if not hi > lo:
        return float("nan")

    def mean_log_rate(rate, q):
        if local and len(q) > 4:
            order = np.argsort(q)
            rate, q = rate[order], q[order]
            inside = np.flatnonzero((q >= lo) & (q <= hi))
            first = inside[0] - 1 if len(inside) else np.searchsorted(q, lo) - 1
            last = inside[-1] + 1 if len(inside) else np.searchsorted(q, hi)
            first, last = max(first, 0), min(last, len(q) - 1)
            while last - first < 3:  # at least 4 points for the cubic
                first, last = max(first - 1, 0), min(last + 1, len(q) - 1)
            rate, q = rate[first:last + 1], q[first:last + 1]
        fit = np.polynomial.Polynomial.fit(q, np.log(rate), deg=min(3, len(q) - 1))
        integral = fit.integ()
        return (integral(hi) - integral(lo)) / (hi - lo)

    return float((np.exp(mean_log_rate(rate_test, psnr_test) - mean_log_rate(rate_ref, psnr_ref)) - 1) * 100)
