"""Decoding at any resolution and for any region: the network evaluated off its native grid.

Inside a finest block p the network is out(c) = head(sin(a_p + w0 M c)): a_p is the coarse
pre-activation of the block (shared grid), c the last-level digit normalised to [-1, 1]
and M the linear last-level modulator. That is a sum of sinusoids in c, defined for any
real c, so a fractional sample has a natural value. Across block boundaries the blocks'
extensions are blended with a partition of unity that is 1 on each block's own pixels,
so the native grid is reproduced exactly (docs/any-resolution.md):

    out(x) = sum_p w_p(x) head(sin(a_p + w0 M c_p(x)))

Downscaling averages each output pixel's footprint: the area average of a sinusoid over
a block's pixels is the sinusoid times a complex gain, so the low-passed output costs
about as much as point samples (no native-size raster is rendered).

Everything is evaluated in fixed tiles of finest coarse cells, so a region costs what the
tiles that cover it cost, and a native region is bit-identical to the same crop of a full
native decode (a BLAS product over a subset of rows can differ in the last bit).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from .architecture import Architecture
from .errors import AsmrError
from .synthesis import NUMPY, last_level, linear, to_raster, upsample_add

TILE = 16  # finest coarse cells per tile edge
MAX_OUTPUT_SIDE = 1 << 20  # per axis, like the container's size fields
MAX_RENDER_PIXELS = 256_000_000  # pixels actually rendered (the region, or the whole output)
CHUNK_ELEMENTS = 1 << 21  # complex hidden values held at once while resampling


# --------------------------------------------------------------------------- sizes


def parse_size(text: str) -> tuple[int, int]:
    """`1536x1024` -> (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise AsmrError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1536x1024")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise AsmrError(f"--size {text}: width and height must be at least 1")
    return w, h


def parse_region(text: str) -> tuple[int, int, int, int]:
    """`X,Y,W,H` -> (x, y, width, height), in output pixels."""
    parts = (text or "").split(",")
    try:
        x, y, w, h = (int(v) for v in parts)
    except ValueError:
        raise AsmrError(f"--region {text!r}: expected X,Y,WIDTH,HEIGHT, e.g. 0,0,256,256") from None
    if x < 0 or y < 0:
        raise AsmrError(f"--region {text}: X and Y must be 0 or more")
    if w < 1 or h < 1:
        raise AsmrError(f"--region {text}: width and height must be at least 1")
    return x, y, w, h


def output_size(width: int, height: int, size: tuple[int, int] | None = None, scale: float | None = None,
                out_width: int | None = None, out_height: int | None = None) -> tuple[int, int]:
    """The decoded (width, height) from at most one way of asking; aspect kept for a single
    --width or --height; --width with --height is an exact size."""
    if size is not None and (scale is not None or out_width is not None or out_height is not None):
        raise AsmrError("--size cannot be combined with --scale, --width or --height")
    if scale is not None and (out_width is not None or out_height is not None):
        raise AsmrError("--scale cannot be combined with --width or --height")
    if size is not None:
        w, h = size
    elif scale is not None:
        if not math.isfinite(scale) or scale <= 0:
            raise AsmrError(f"--scale {scale}: expected a positive number")
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
    elif out_width is not None or out_height is not None:
        for name, v in (("--width", out_width), ("--height", out_height)):
            if v is not None and v < 1:
                raise AsmrError(f"{name} {v}: expected at least 1")
        if out_width is not None and out_height is not None:
            w, h = out_width, out_height
        elif out_width is not None:
            w, h = out_width, max(1, round(height * out_width / width))
        else:
            assert out_height is not None
            w, h = max(1, round(width * out_height / height)), out_height
    else:
        w, h = width, height
    if w < 1 or h < 1:
        raise AsmrError(f"output size {w}x{h}: width and height must be at least 1")
    if w > MAX_OUTPUT_SIDE or h > MAX_OUTPUT_SIDE:
        raise AsmrError(f"output size {w}x{h}: at most {MAX_OUTPUT_SIDE} pixels per side")
    return int(w), int(h)


def check_region(region: tuple[int, int, int, int] | None, width: int, height: int) -> tuple[int, int, int, int]:
    """The region inside a (width x height) output; the whole output when None."""
    if region is None:
        region = (0, 0, width, height)
    x, y, w, h = region
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise AsmrError(f"--region {x},{y},{w},{h}: expected X,Y >= 0 and WIDTH,HEIGHT >= 1")
    if x + w > width or y + h > height:
        raise AsmrError(f"--region {x},{y},{w},{h}: outside the {width}x{height} output")
    if w * h > MAX_RENDER_PIXELS:
        raise AsmrError(f"{w}x{h} pixels to render: at most {MAX_RENDER_PIXELS} (use --region)")
    return region


# --------------------------------------------------------------------------- coarse levels


def _cells_per(arch: Architecture, level: int) -> tuple[int, ...]:
    """How many finest coarse cells (level L-2) one level-`level` cell spans, per axis."""
    last = arch.levels - 2
    return tuple(math.prod(b[level + 1:last + 1]) for b in arch.decomposition.bases)


def coarse_preactivation(arch: Architecture, p: dict[str, np.ndarray], lo: tuple[int, ...],
                         hi: tuple[int, ...]) -> np.ndarray:
    """w0 times the last hidden layer's pre-activation (before the last modulation) for the
    finest coarse cells [lo, hi) per axis: (*(hi - lo), hidden). Evaluates only their
    ancestors, with the same operations as `synthesis.render_blocked`."""
    dec, w0 = arch.decomposition, arch.w0

    def span(level):
        per = _cells_per(arch, level)
        return [(a // s, (b - 1) // s + 1) for a, b, s in zip(lo, hi, per)]

    rng = span(0)
    h = dec.level_coords(0)[tuple(slice(a, b) for a, b in rng)]
    for i in range(arch.levels - 1):
        pre = linear(h, p[f"layer{i}.weight"], p[f"layer{i}.bias"])
        if arch.latent_dim:
            grid = p[f"latent{i}"][tuple(slice(a, b) for a, b in rng)]
            pre = pre + linear(grid, p[f"proj{i}.weight"])
        if i == arch.levels - 2:
            return w0 * pre
        mod = linear(dec.level_coords(i + 1), p[f"mod{i}.weight"])
        child = np.sin(w0 * upsample_add(pre, mod))
        nxt = span(i + 1)
        base = dec.level_bases(i + 1)
        h = child[tuple(slice(a - r[0] * b_, c - r[0] * b_) for (a, c), r, b_ in zip(nxt, rng, base))]
        rng = nxt
    raise AssertionError("unreachable: an architecture has at least 2 levels")


def _tiles(lo: tuple[int, ...], hi: tuple[int, ...], grid: tuple[int, ...]):
    """The fixed tiles (absolute cell ranges) that cover cells [lo, hi)."""
    axes = [[(t * TILE, min((t + 1) * TILE, g)) for t in range(a // TILE, (b - 1) // TILE + 1)]
            for a, b, g in zip(lo, hi, grid)]
    for combo in itertools.product(*axes):
        yield tuple(c[0] for c in combo), tuple(c[1] for c in combo)


def _overlap(tlo, thi, lo, hi):
    """Slices of the intersection of [tlo, thi) and [lo, hi), in tile and in target coordinates."""
    a = [max(x, y) for x, y in zip(tlo, lo)]
    b = [min(x, y) for x, y in zip(thi, hi)]
    return (tuple(slice(u - t, v - t) for u, v, t in zip(a, b, tlo)),
            tuple(slice(u - t, v - t) for u, v, t in zip(a, b, lo)))


def coarse_tiled(arch: Architecture, p: dict[str, np.ndarray], lo: tuple[int, ...],
                 hi: tuple[int, ...]) -> np.ndarray:
    """`coarse_preactivation` for cells [lo, hi), assembled from fixed tiles so that a cell's
    value does not depend on which other cells are asked for."""
    dec = arch.decomposition
    out = np.empty((*[b - a for a, b in zip(lo, hi)], arch.hidden), np.float32)
    for tlo, thi in _tiles(lo, hi, dec.grid(arch.levels - 2)):
        src, dst = _overlap(tlo, thi, lo, hi)
        out[dst] = coarse_preactivation(arch, p, tlo, thi)[src]
    return out


# --------------------------------------------------------------------------- native grid


def render_native(arch: Architecture, p: dict[str, np.ndarray], start: tuple[int, ...],
                  stop: tuple[int, ...]) -> np.ndarray:
    """The native grid's samples [start, stop) per axis: (channels, *(stop - start)).
    Tile by tile, so any region equals the same crop of the whole, bit for bit."""
    dec, hid = arch.decomposition, arch.hidden
    last = arch.levels - 1
    bases = dec.level_bases(last)
    m = arch.w0 * linear(dec.level_coords(last), p[f"mod{last - 1}.weight"]).reshape(-1, hid)
    lo = tuple(s // b for s, b in zip(start, bases))
    hi = tuple((e - 1) // b + 1 for e, b in zip(stop, bases))
    out = np.empty((arch.channels, *[e - s for s, e in zip(start, stop)]), np.float32)
    for tlo, thi in _tiles(lo, hi, dec.grid(last - 1)):
        a = coarse_preactivation(arch, p, tlo, thi)
        blocked = last_level(NUMPY, a.reshape(-1, hid), m, p["head.weight"], p["head.bias"])
        tile = to_raster(NUMPY, blocked, tuple(b - a_ for a_, b in zip(tlo, thi)), bases)
        src, dst = _overlap(tuple(t * b for t, b in zip(tlo, bases)),
                            tuple(t * b for t, b in zip(thi, bases)), start, stop)
        out[(slice(None),) + dst] = tile[(slice(None),) + src]
    return out


# --------------------------------------------------------------------------- off the grid


def ramp(t: np.ndarray) -> np.ndarray:
    """Weight of the next block across a boundary's blending band, t in [0, 1]."""
    return t * t * (3.0 - 2.0 * t)


BLEND = 0.5  # default half-width (native pixels) of the band where neighbouring blocks blend


@dataclass
class AxisTaps:
    """How one axis' outputs read the blocks: output o takes blocks[o, k] with the
    normalised digits pos[o, k, j] and weights weight[o, k, j] (sum over k, j = 1)."""

    blocks: np.ndarray  # (n, K) int, finest-coarse-cell index along the axis
    pos: np.ndarray     # (n, K, J) float64
    weight: np.ndarray  # (n, K, J) float64


def _digit(x: np.ndarray, block: np.ndarray, base: int) -> np.ndarray:
    """Normalised (continuous) last-level digit of position x relative to a block."""
    if base == 1:
        return np.zeros_like(x, dtype=np.float64)
    return 2.0 * (x - block * base) / (base - 1) - 1.0


def point_taps(n: int, base: int, n_out: int, index: np.ndarray, blend: float | None = None) -> AxisTaps:
    """Upsampling (n_out >= n): sample the network at each output centre. Within `blend`
    native pixels of a block boundary the two blocks' extensions are mixed; with 0.5 the
    band is the gap between their pixels, so native positions keep their own block."""
    wb = min(max(BLEND if blend is None else blend, 0.5), base / 2.0)
    last = (n - 1) // base
    x = np.clip((index + 0.5) * (n / n_out) - 0.5, 0.0, n - 1.0)
    own = np.minimum(np.floor((x + 0.5) / base).astype(np.int64), last)
    left = own * base - 0.5   # boundary with the block before
    right = left + base       # boundary with the block after
    use_left = (own > 0) & (x - left < wb)
    use_right = ~use_left & (own < last) & (right - x < wb)
    nb = np.where(use_left, own - 1, np.where(use_right, own + 1, own))
    t_left = ramp(np.clip((x - (left - wb)) / (2 * wb), 0.0, 1.0))   # own's weight near the left edge
    t_right = ramp(np.clip((x - (right - wb)) / (2 * wb), 0.0, 1.0))  # neighbour's weight near the right
    w_nb = np.where(use_left, 1.0 - t_left, np.where(use_right, t_right, 0.0))
    blocks = np.stack([own, nb], axis=1)
    pos = np.stack([_digit(x, own, base), _digit(x, nb, base)], axis=1)[..., None]
    weight = np.stack([1.0 - w_nb, w_nb], axis=1)[..., None]
    return AxisTaps(blocks, pos, weight)


def area_taps(n: int, base: int, n_out: int, index: np.ndarray) -> AxisTaps:
    """Downsampling (n_out < n): each output is the area average of the native pixels under
    its footprint [o n / n_out, (o + 1) n / n_out), grouped by block."""
    e0 = index * (n / n_out)
    e1 = (index + 1) * (n / n_out)
    b0 = np.floor(e0).astype(np.int64) // base
    b1 = (np.ceil(e1).astype(np.int64) - 1) // base
    k_max = int((b1 - b0).max()) + 1
    digits = np.arange(base)
    blocks, pos, weight = [], [], []
    for k in range(k_max):
        blk = np.minimum(b0 + k, b1)
        y = blk[:, None] * base + digits[None, :]  # (n, base) native pixels of the block
        ov = np.clip(np.minimum(y + 1, e1[:, None]) - np.maximum(y, e0[:, None]), 0.0, None)
        ov = np.where((b0 + k <= b1)[:, None] & (y < n), ov, 0.0) / (e1 - e0)[:, None]
        blocks.append(blk)
        pos.append(np.broadcast_to(_digit(digits.astype(np.float64), 0, base), y.shape))
        weight.append(ov)
    return AxisTaps(np.stack(blocks, 1), np.stack(pos, 1), np.stack(weight, 1))


def axis_taps(n: int, base: int, n_out: int, start: int, stop: int, blend: float | None = None) -> AxisTaps:
    index = np.arange(start, stop, dtype=np.float64)
    if n_out == n:
        x = index.astype(np.int64)
        blk = x // base
        return AxisTaps(blk[:, None], _digit(x.astype(np.float64), blk, base)[:, None, None],
                        np.ones((len(x), 1, 1)))
    if n_out > n:
        return point_taps(n, base, n_out, index, blend)
    return area_taps(n, base, n_out, index)


def _gains(taps: AxisTaps, omega: np.ndarray) -> np.ndarray:
    """sum_j weight e^{i omega pos}: (n, K, hidden) complex64 -- the axis' factor of the
    modulation e^{i w0 M c}, already filtered for area taps."""
    out = np.zeros((*taps.blocks.shape, len(omega)), np.complex128)
    for j in range(taps.pos.shape[2]):
        w = taps.weight[:, :, j]
        if not w.any():
            continue
        out += w[..., None] * np.exp(1j * taps.pos[:, :, j, None] * omega[None, None, :])
    return out.astype(np.complex64)


def render_resampled(arch: Architecture, p: dict[str, np.ndarray], sizes: tuple[int, ...],
                     start: tuple[int, ...], stop: tuple[int, ...], blend: float | None = None) -> np.ndarray:
    """Samples [start, stop) of the signal rendered at `sizes` (per axis; an axis at its
    native size is sampled on its grid): (channels, *(stop - start)) float32."""
    dec, hid = arch.decomposition, arch.hidden
    last = arch.levels - 1
    bases = dec.level_bases(last)
    taps = [axis_taps(n, b, m, s, e, blend) for n, b, m, s, e in zip(dec.sizes, bases, sizes, start, stop)]
    omega = arch.w0 * p[f"mod{last - 1}.weight"].astype(np.float64)  # (hid, dims)
    gains = [_gains(t, omega[:, a]) for a, t in enumerate(taps)]
    lo = tuple(int(t.blocks.min()) for t in taps)
    hi = tuple(int(t.blocks.max()) + 1 for t in taps)
    z = np.exp(1j * coarse_tiled(arch, p, lo, hi)).astype(np.complex64)  # e^{i a_p}
    # per axis and slot: the outputs whose weight there is not zero (slot 0: every output)
    active = [[np.nonzero(t.weight[:, k].any(axis=1))[0] for k in range(t.blocks.shape[1])] for t in taps]
    shape = [e - s for s, e in zip(start, stop)]
    rest = math.prod(shape[1:]) * hid
    rows = max(1, CHUNK_ELEMENTS // max(1, rest))
    head_w, head_b = p["head.weight"], p["head.bias"]
    out = np.empty((arch.channels, *shape), np.float32)
    d = len(shape)
    for r0 in range(0, shape[0], rows):
        r1 = min(shape[0], r0 + rows)
        acc = np.zeros((r1 - r0, *shape[1:], hid), np.complex64)
        for combo in itertools.product(*[range(t.blocks.shape[1]) for t in taps]):
            idx = [active[a][k] for a, k in enumerate(combo)]
            idx[0] = idx[0][(idx[0] >= r0) & (idx[0] < r1)]
            if any(len(i) == 0 for i in idx):
                continue
            term = z
            for a, (t, g, k, i) in enumerate(zip(taps, gains, combo, idx)):
                term = np.take(term, t.blocks[i, k] - lo[a], axis=a)
                term = term * g[i, k].reshape([len(i) if b == a else 1 for b in range(d)] + [hid])
            dense = all(len(i) == (r1 - r0 if a == 0 else shape[a]) for a, i in enumerate(idx))
            if dense:
                acc += term
            else:
                acc[np.ix_(idx[0] - r0, *idx[1:])] += term
        vals = acc.imag @ head_w.T + head_b  # (rows, ..., channels)
        out[:, r0:r1] = np.moveaxis(vals, -1, 0)
    return out


def render(arch: Architecture, p: dict[str, np.ndarray], sizes: tuple[int, ...],
           start: tuple[int, ...] | None = None, stop: tuple[int, ...] | None = None,
           blend: float | None = None) -> np.ndarray:
    """The signal rendered at `sizes` per axis, samples [start, stop): (channels, *region)
    float32. The native size goes through the exact tiled path."""
    p = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}
    start = tuple(start) if start is not None else (0,) * len(sizes)
    stop = tuple(stop) if stop is not None else tuple(sizes)
    if tuple(sizes) == tuple(arch.decomposition.sizes):
        return render_native(arch, p, start, stop)
    return render_resampled(arch, p, tuple(sizes), start, stop, blend)
