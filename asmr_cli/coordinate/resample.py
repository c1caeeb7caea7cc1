"""Decoding at any resolution and for any region: the network evaluated off its native grid.

Inside a finest block p the network is out(c) = head(sin(a_p + w0 M c)): a_p is the coarse
pre-activation of the block (shared grid), c the last-level digit normalised to [-1, 1]
and M the linear last-level modulator. That is a sum of sinusoids in c, defined for any
real c, so a fractional sample has a natural value. Across block boundaries the blocks'
mismatch of the two blocks' values at the boundary is spread over a narrow band on both
sides, so the output has no step there (docs/any-resolution.md):

    out(x) = f_own(x) + w(|x - b|) (f_nb(b) - f_own(b)),  f_p(x) = head(sin(a_p + w0 M c_p(x)))

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
from dataclasses import dataclass

import numpy as np

from .architecture import Architecture
from .synthesis import NUMPY, coarse_cells, last_level, modulation, unblock

TILE = 32  # finest coarse cells per tile edge (fewer, larger BLAS calls; a region costs whole tiles)
CHUNK_ELEMENTS = 1 << 21  # complex hidden values held at once while resampling


# --------------------------------------------------------------------------- coarse levels


def coarse_preactivation(arch: Architecture, p: dict[str, np.ndarray], lo: tuple[int, ...],
                         hi: tuple[int, ...]) -> np.ndarray:
    """`synthesis.coarse_cells` in numpy for the finest coarse cells [lo, hi)."""
    dec = arch.decomposition
    return coarse_cells(NUMPY, arch, p, [dec.level_coords(i) for i in range(arch.levels)], lo, hi)


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


def coarse_tiles(arch: Architecture, p: dict[str, np.ndarray], lo: tuple[int, ...], hi: tuple[int, ...]):
    """The tiled renderer's one loop: (tile start, tile stop, `coarse_preactivation` of the
    tile) for each fixed tile that covers finest coarse cells [lo, hi). A cell's value then
    does not depend on which other cells are asked for."""
    for tlo, thi in _tiles(lo, hi, arch.decomposition.grid(arch.levels - 2)):
        yield tlo, thi, coarse_preactivation(arch, p, tlo, thi)


def coarse_tiled(arch: Architecture, p: dict[str, np.ndarray], lo: tuple[int, ...],
                 hi: tuple[int, ...]) -> np.ndarray:
    """`coarse_preactivation` for cells [lo, hi), assembled from the fixed tiles."""
    out = np.empty((*[b - a for a, b in zip(lo, hi)], arch.hidden), np.float32)
    for tlo, thi, a in coarse_tiles(arch, p, lo, hi):
        src, dst = _overlap(tlo, thi, lo, hi)
        out[dst] = a[src]
    return out


# --------------------------------------------------------------------------- native grid


def render_native(arch: Architecture, p: dict[str, np.ndarray], start: tuple[int, ...],
                  stop: tuple[int, ...]) -> np.ndarray:
    """The native grid's samples [start, stop) per axis: (channels, *(stop - start)).
    Tile by tile, so any region equals the same crop of the whole, bit for bit."""
    dec, hid = arch.decomposition, arch.hidden
    last = arch.levels - 1
    bases = dec.level_bases(last)
    m = modulation(arch, p, last - 1, dec.level_coords(last)).reshape(-1, hid)
    lo = tuple(s // b for s, b in zip(start, bases))
    hi = tuple((e - 1) // b + 1 for e, b in zip(stop, bases))
    out = np.empty((arch.channels, *[e - s for s, e in zip(start, stop)]), np.float32)
    for tlo, thi, a in coarse_tiles(arch, p, lo, hi):
        blocked = last_level(NUMPY, a.reshape(-1, hid), m, p["head.weight"], p["head.bias"])
        tile = unblock(NUMPY, blocked, tuple(b - a_ for a_, b in zip(tlo, thi)), bases)
        src, dst = _overlap(tuple(t * b for t, b in zip(tlo, bases)),
                            tuple(t * b for t, b in zip(thi, bases)), start, stop)
        out[(slice(None),) + dst] = tile[(slice(None),) + src]
    return out


# --------------------------------------------------------------------------- off the grid


def ramp(t: np.ndarray) -> np.ndarray:
    """Smoothstep on [0, 1]: 0 to 1 with zero slope at both ends."""
    return t * t * (3.0 - 2.0 * t)


# half-width (native pixels) of the band where a block boundary's mismatch is spread: PSNR
# hardly depends on it, the size of the boundary steps does, and this is where they match the
# original's at 2x (the sweep and its command: docs/any-resolution.md#design)
BLEND = 0.85


@dataclass
class AxisTaps:
    """How one axis' outputs read the blocks: output o takes blocks[o, k] with the
    normalised digits pos[o, k, j] and weights weight[o, k, j] (sum over k, j = 1)."""

    blocks: np.ndarray  # (n, K) int, finest-coarse-cell index along the axis
    pos: np.ndarray     # (n, K, J) float64
    weight: np.ndarray  # (n, K, J) float64


def block_digit(x: np.ndarray, block: np.ndarray, base: int) -> np.ndarray:
    """Normalised (continuous) last-level digit of position x relative to a block."""
    if base == 1:
        return np.zeros_like(x, dtype=np.float64)
    return 2.0 * (x - block * base) / (base - 1) - 1.0


def point_taps(n: int, base: int, n_out: int, index: np.ndarray, blend: float | None = None) -> AxisTaps:
    """Upsampling (n_out >= n): sample the network at each output centre. Each output takes
    its own block's function; within `blend` native pixels of a block boundary b it also
    takes a share w of the two blocks' mismatch at b,

        out(x) = f_own(x) + w(|x - b|) (f_nb(b) - f_own(b)),  w(d) = (1 - ramp(d / blend)) / 2,

    so both sides meet at the mean of the two extensions at b (no step) while every block
    is evaluated only on its own pixels and the half-pixel gap to b (no far extrapolation).
    With blend 0.5 the band is the gap itself and native positions keep their own block."""
    wb = min(max(BLEND if blend is None else blend, 0.5), base / 2.0)
    last = (n - 1) // base
    x = np.clip((index + 0.5) * (n / n_out) - 0.5, 0.0, n - 1.0)
    own = np.minimum(np.floor((x + 0.5) / base).astype(np.int64), last)
    left = own * base - 0.5   # boundary with the block before
    right = left + base       # boundary with the block after
    use_left = (own > 0) & (x - left < wb)
    use_right = ~use_left & (own < last) & (right - x < wb)
    nb = np.where(use_left, own - 1, np.where(use_right, own + 1, own))
    edge = np.where(use_left, left, right)
    w = np.where(use_left | use_right, 0.5 * (1.0 - ramp(np.clip(np.abs(x - edge) / wb, 0.0, 1.0))), 0.0)
    at_edge = block_digit(edge, nb, base)
    blocks = np.stack([own, nb], axis=1)
    # own block: its value at x and (minus) its value at the boundary; neighbour: its value there
    pos = np.stack([np.stack([block_digit(x, own, base), block_digit(edge, own, base)], 1),
                    np.stack([at_edge, at_edge], 1)], axis=1)
    weight = np.stack([np.stack([np.ones_like(w), -w], 1), np.stack([w, np.zeros_like(w)], 1)], axis=1)
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
        pos.append(np.broadcast_to(block_digit(digits.astype(np.float64), 0, base), y.shape))
        weight.append(ov)
    return AxisTaps(np.stack(blocks, 1), np.stack(pos, 1), np.stack(weight, 1))


def axis_taps(n: int, base: int, n_out: int, start: int, stop: int, blend: float | None = None) -> AxisTaps:
    index = np.arange(start, stop, dtype=np.float64)
    if n_out == n:
        x = index.astype(np.int64)
        blk = x // base
        return AxisTaps(blk[:, None], block_digit(x.astype(np.float64), blk, base)[:, None, None],
                        np.ones((len(x), 1, 1)))
    if n_out > n:
        return point_taps(n, base, n_out, index, blend)
    return area_taps(n, base, n_out, index)


def _gains(taps: AxisTaps, omega: np.ndarray) -> np.ndarray:
    """sum_j weight e^{i omega pos}: (n, K, hidden) complex64 -- the axis' factor of the
    modulation e^{i w0 M c}, already filtered for area taps."""
    re = np.zeros((*taps.blocks.shape, len(omega)))
    im = np.zeros_like(re)
    for j in range(taps.pos.shape[2]):
        w = taps.weight[:, :, j]
        if not w.any():
            continue
        phase = taps.pos[:, :, j, None] * omega[None, None, :]
        re += w[..., None] * np.cos(phase)
        im += w[..., None] * np.sin(phase)
    out = np.empty(re.shape, np.complex64)
    out.real, out.imag = re, im
    return out


def _unit(phase: np.ndarray) -> np.ndarray:
    """e^{i phase} as complex64 (numpy's complex exp is several times slower)."""
    out = np.empty(phase.shape, np.complex64)
    out.real, out.imag = np.cos(phase), np.sin(phase)
    return out


def _per_block(taps: AxisTaps, gains: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Regroup an axis' (output, block) pairs by block: output indices (G, M), -1 where
    unused, and their gains (G, M, hidden), for the blocks lo..hi-1."""
    n, k = taps.blocks.shape
    keep = taps.weight.reshape(n * k, -1).any(axis=1)
    out_idx = np.repeat(np.arange(n), k)[keep]
    blk = taps.blocks.reshape(-1)[keep] - lo
    g = gains.reshape(n * k, -1)[keep]
    order = np.argsort(blk, kind="stable")
    out_idx, blk, g = out_idx[order], blk[order], g[order]
    counts = np.bincount(blk, minlength=hi - lo)
    slot = np.arange(len(blk)) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.full((hi - lo, int(counts.max())), -1, np.int64)
    idx[blk, slot] = out_idx
    e = np.zeros((hi - lo, int(counts.max()), g.shape[1]), np.complex64)
    e[blk, slot] = g
    return idx, e


def render_resampled(arch: Architecture, p: dict[str, np.ndarray], sizes: tuple[int, ...],
                     start: tuple[int, ...], stop: tuple[int, ...], blend: float | None = None) -> np.ndarray:
    """Samples [start, stop) of the signal rendered at `sizes` (per axis; an axis at its
    native size is sampled on its grid): (channels, *(stop - start)) float32.

    Block by block, as the native last level: with Q = e^{i a_p} times the gains of all
    axes but the last, out_c = W_c Im(Q X) = [Im Q, Re Q] @ [W_c Re X; W_c Im X] for the
    last axis' gains X -- one matrix product per last-axis block, then a scatter-add of the
    (output, block) contributions."""
    dec, hid, ch = arch.decomposition, arch.hidden, arch.channels
    last = arch.levels - 1
    bases = dec.level_bases(last)
    d = len(sizes)
    taps = [axis_taps(n, b, m, s, e, blend) for n, b, m, s, e in zip(dec.sizes, bases, sizes, start, stop)]
    omega = arch.w0 * p[f"mod{last - 1}.weight"].astype(np.float64)  # (hid, dims)
    lo = tuple(int(t.blocks.min()) for t in taps)
    hi = tuple(int(t.blocks.max()) + 1 for t in taps)
    groups = [_per_block(t, _gains(t, omega[:, a]), lo[a], hi[a]) for a, t in enumerate(taps)]
    z = _unit(coarse_tiled(arch, p, lo, hi))  # e^{i a_p}: (*G, hid)
    shape = [e - s for s, e in zip(start, stop)]
    strides = [math.prod(shape[a + 1:]) for a in range(d)]
    head_w = p["head.weight"].astype(np.float32)
    m_last = groups[-1][0].shape[1]
    xe = groups[-1][1]  # (G_last, M_last, hid)
    # q = e^{i a} (gains of the leading axes) is stored as interleaved (Re, Im) pairs, so
    # W_c Im(q X) = sum_h Re q_h (W_ch Im X_h) + Im q_h (W_ch Re X_h): one product per block
    right = np.stack([xe.imag, xe.real], axis=-1)[:, None] * head_w[None, :, None, :, None]  # (G, ch, M, hid, 2)
    right = np.ascontiguousarray(right.reshape(len(xe), ch * m_last, 2 * hid).transpose(0, 2, 1))
    sums = np.zeros((ch, math.prod(shape)), np.float64)
    m_lead = [g[0].shape[1] for g in groups[:-1]]
    zl = np.ascontiguousarray(np.moveaxis(z, d - 1, 0))  # last block axis first: (G_last, G_0, .., hid)
    per_row = math.prod(zl.shape[2:-1]) * zl.shape[0] * math.prod(m_lead) * max(ch * m_last, 2 * hid)
    rows = max(1, CHUNK_ELEMENTS * 4 // max(1, per_row))
    gpos = [a + 1 for a in range(d - 1)] + [0]  # where each block axis sits in that layout
    for r0 in range(0, z.shape[0], rows):
        r1 = min(z.shape[0], r0 + rows)
        q = zl[:, r0:r1].reshape(*zl[:, r0:r1].shape[:-1], *[1] * (d - 1), hid)
        for a in range(d - 1):
            e = groups[a][1][r0:r1] if a == 0 else groups[a][1]
            q = q * e.reshape([e.shape[0] if b == gpos[a] else 1 for b in range(d)]
                              + [e.shape[1] if b == a else 1 for b in range(d - 1)] + [hid])
        q = np.ascontiguousarray(q, dtype=np.complex64)
        vals = q.view(np.float32).reshape(q.shape[0], -1, 2 * hid) @ right  # (G_last, .., ch * M_last)
        vals = vals.reshape(*q.shape[:-1], ch, m_last)
        flat = np.zeros((*q.shape[:-1], m_last), np.int64)
        valid = np.ones(flat.shape, bool)
        for a in range(d):
            idx = groups[a][0][r0:r1] if a == 0 else groups[a][0]
            view = idx.reshape([idx.shape[0] if b == gpos[a] else 1 for b in range(d)]
                               + [idx.shape[1] if b == a else 1 for b in range(d)])
            flat = flat + view * strides[a]
            valid = valid & (view >= 0)
        vals = np.moveaxis(vals, -2, 0)[:, valid]  # (ch, pairs)
        where = flat[valid]
        for c in range(ch):
            sums[c] += np.bincount(where, weights=vals[c], minlength=sums.shape[1])
    out = sums.astype(np.float32) + p["head.bias"].astype(np.float32)[:, None]
    return out.reshape(ch, *shape)


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
