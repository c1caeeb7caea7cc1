"""The latent pyramid and its synthesis: format version 3's image model, written once
for numpy (decoding) and torch (training).

An image is held by integer latent grids at dyadic resolutions, level 0 at one value per
pixel and each coarser level at half the size of the one below, in a colour space whose
first plane is luma (YCbCr for RGB). The synthesis is ASMR's hierarchical modulation
with latent-valued modulators: each level's grid enters through a bias-free linear map
evaluated on that level's own cells, and the sum is carried down the pyramid by a fixed
2x upsampling, so every coarse level is computed once per coarse cell and shared by the
pixels under it (activation sharing). Only the last stage, a small MLP of width
`hidden`, runs per pixel:

    a_{L-1} = M_{L-1} z_{L-1};   a_l = up2(a_{l+1}) + M_l z_l;   (a_0 has C + hidden rows)
    out = a_0[:C] + head(relu(W2 relu(a_0[C:] + b1) + b2)) + head_b

The first C rows are a linear path (a Laplacian-pyramid synthesis, which is how the
encoder initialises it); the MLP adds what is not linear. Format version 8 adds a refine
stage (Layout.refine = K > 0, as C3 and Cool-chic do): two 3x3 convolutions over the
output, residual,

    x = out with its edges repeated REFINE_MARGIN pixels outward
    out' = out + conv2(relu(conv1(x) + c1)) + c2     (conv1: C -> K, conv2: K -> C, valid)

docs/method.md has the design and docs/rate-distortion.md the measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor

# YCbCr (BT.601, full range, chroma centred on 0): the transform the synthesis starts from.
YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
MAX_LEVELS = 8
MIN_COARSE = 1  # the coarsest grid keeps at least this many cells per axis
REFINE_MARGIN = 2  # pixels each side the refine stage reads (two 3x3 convolutions)


@dataclass(frozen=True)
class ArrayOps:
    """The few array functions whose names differ between numpy and torch."""

    cat: Callable[[list[Array], int], Array]
    stack: Callable[[list[Array], int], Array]
    relu: Callable[[Array], Array]


NUMPY = ArrayOps(cat=lambda xs, axis: np.concatenate(xs, axis=axis),
                 stack=lambda xs, axis: np.stack(xs, axis=axis),
                 relu=lambda x: np.maximum(x, 0, out=x))


def colour_transform(channels: int) -> np.ndarray:
    """(C, C) matrix from the image's channels to the latent planes."""
    t = np.eye(channels)
    if channels >= 3:
        t[:3, :3] = YCBCR
    return t


def fine_planes(channels: int) -> tuple[int, ...]:
    """Planes that have a level-0 (one value per pixel) grid: luma and alpha; chroma
    starts at half resolution, as in 4:2:0."""
    return {1: (0,), 2: (0, 1), 3: (0,), 4: (0, 3)}[channels]


def default_levels(height: int, width: int, cap: int = 7) -> int:
    """As many levels as halve the shorter side down to two cells, at most `cap`: a level
    whose grid is a row of cells costs its records and codes next to nothing."""
    levels, n = 1, min(height, width)
    while levels < cap and n > 2 * MIN_COARSE:
        n = (n + 1) // 2
        levels += 1
    return levels


@dataclass(frozen=True)
class Layout:
    """The shapes of a latent pyramid: grid sizes per level and the planes each holds."""

    height: int
    width: int
    channels: int
    levels: int
    hidden: int
    context_hidden: int = 16
    refine: int = 0  # the refine stage's width K (format 8); 0: none (formats 3, 4, 5, 7)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        out, h, w = [], self.height, self.width
        for _ in range(self.levels):
            out.append((h, w))
            h, w = (h + 1) // 2, (w + 1) // 2
        return out

    def planes(self, level: int) -> tuple[int, ...]:
        return fine_planes(self.channels) if level == 0 else tuple(range(self.channels))

    def grids(self) -> list[tuple[int, int, tuple[int, int]]]:
        """(level, plane, shape) of every latent grid, in coding order: coarsest first."""
        shapes = self.shapes
        return [(lv, p, shapes[lv]) for lv in range(self.levels - 1, -1, -1) for p in self.planes(lv)]

    @property
    def features(self) -> int:
        return self.channels + self.hidden

    def synthesis_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """The synthesis parameters, in bitstream order."""
        f, h, c = self.features, self.hidden, self.channels
        out = [(f"mod{lv}", (f, len(self.planes(lv)))) for lv in range(self.levels)]
        out += [("b1", (h,)), ("w2", (h, h)), ("b2", (h,)), ("head_w", (c, h)), ("head_b", (c,))]
        if self.refine:
            k = self.refine
            out += [("conv1", (k, c, 3, 3)), ("c1", (k,)), ("conv2", (c, k, 3, 3)), ("c2", (c,))]
        return out

    def latent_count(self) -> int:
        return sum(math.prod(s) for _, _, s in self.grids())


def by_level(layout: Layout, grids: list[np.ndarray]) -> list[np.ndarray]:
    """Grids in Layout.grids() order -> one (planes, h, w) float32 array per level, level 0
    first: the coding order's list as the synthesis reads it."""
    out: list[list] = [[None] * len(layout.planes(lv)) for lv in range(layout.levels)]
    for (lv, p, _), z in zip(layout.grids(), grids):
        out[lv][layout.planes(lv).index(p)] = z
    return [np.stack(g).astype(np.float32) for g in out]


def up2(ops: ArrayOps, x: Array, shape: tuple[int, int]) -> Array:
    """2x bilinear upsampling of (..., h, w) to (..., H, W), H in (2h - 1, 2h): each output
    sample is 3/4 of its own cell and 1/4 of the nearer neighbour (edges repeated)."""
    if ops is NUMPY:
        return _up2_numpy(x, shape)
    for axis, size in ((-2, shape[0]), (-1, shape[1])):
        n = x.shape[axis]
        lo = _take(x, 0, 1, axis)
        hi = _take(x, n - 1, n, axis)
        prev = ops.cat([lo, _take(x, 0, n - 1, axis)], axis)
        nxt = ops.cat([_take(x, 1, n, axis), hi], axis)
        even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
        y = ops.stack([even, odd], axis)  # (..., n, 2, ...) along `axis`
        new = list(x.shape)
        new[axis] = 2 * n
        x = _take(y.reshape(new), 0, size, axis)
    return x


def _up2_numpy(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`up2` on numpy, each output sample one sum written in place, even and odd samples
    side by side (a new axis of 2, then merged): the same float32 operations on every
    sample (0.75 x, 0.25 x the neighbour, their sum), so the same bits."""
    for axis, size in ((x.ndim - 2, shape[0]), (x.ndim - 1, shape[1])):
        n = x.shape[axis]
        pre = (slice(None),) * axis
        three, quarter = x * 0.75, x * 0.25
        y = np.empty(x.shape[:axis + 1] + (2,) + x.shape[axis + 1:], x.dtype)
        even, odd = y[pre + (slice(None), 0)], y[pre + (slice(None), 1)]

        def part(a, start, stop, _pre=pre):
            return a[_pre + (slice(start, stop),)]

        np.add(part(three, 1, n), part(quarter, 0, n - 1), out=part(even, 1, n))
        np.add(part(three, 0, 1), part(quarter, 0, 1), out=part(even, 0, 1))  # the edge repeated
        np.add(part(three, 0, n - 1), part(quarter, 1, n), out=part(odd, 0, n - 1))
        np.add(part(three, n - 1, n), part(quarter, n - 1, n), out=part(odd, n - 1, n))
        x = part(y.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:]), 0, size)
    return x


def _take(x: Array, start: int, stop: int, axis: int) -> Array:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def features(ops: ArrayOps, layout: Layout, p: dict[str, Array], latents: list[Array], stop: int = 0) -> Array:
    """a_stop, the modulation summed down the pyramid to level `stop`: (C + hidden, h, w)
    (a_0: the full image). latents[l] is the level-l grid (planes, h, w); each level's
    term is computed on its own cells."""
    shapes = layout.shapes
    acc = None
    for lv in range(layout.levels - 1, stop - 1, -1):
        z = latents[lv]
        h, w = shapes[lv]
        term = (p[f"mod{lv}"] @ z.reshape(z.shape[0], -1)).reshape(-1, h, w)
        acc = term if acc is None else up2(ops, acc, (h, w)) + term
    return acc


def up2_at(a: Array, rows: Array, cols: Array, frames: Array | None = None) -> Array:
    """up2(a) at the given full-resolution (row, col) samples only: (F, n) from a (F, h, w),
    or from a (F, T, h, w) at the given frames, with the same weights as `up2` (3/4 own
    cell, 1/4 the nearer neighbour), gathered."""
    h, w = a.shape[-2], a.shape[-1]
    base = 0 if frames is None else frames * (h * w)
    i, j = rows // 2, cols // 2
    ni = (i + 2 * (rows % 2) - 1).clip(0, h - 1)
    nj = (j + 2 * (cols % 2) - 1).clip(0, w - 1)
    flat = a.reshape(a.shape[0], -1)
    return (0.5625 * flat[:, base + i * w + j] + 0.1875 * flat[:, base + ni * w + j]
            + 0.1875 * flat[:, base + i * w + nj] + 0.0625 * flat[:, base + ni * w + nj])


def mlp(ops: ArrayOps, layout: Layout, p: dict[str, Array], a: Array) -> Array:
    """The per-pixel stage: a (C + hidden, n) -> (C, n)."""
    c = layout.channels
    h = ops.relu(a[c:] + p["b1"][:, None])
    h = ops.relu(p["w2"] @ h + p["b2"][:, None])
    return a[:c] + p["head_w"] @ h + p["head_b"][:, None]


def synthesize(ops: ArrayOps, layout: Layout, p: dict[str, Array], latents: list[Array]) -> Array:
    """The image in its own channels, (C, H, W), values on the [0, 1] scale."""
    a = features(ops, layout, p, latents)
    return mlp(ops, layout, p, a.reshape(a.shape[0], -1)).reshape(layout.channels, layout.height, layout.width)


TILE_PIXELS = 1 << 14  # pixels the numpy synthesis runs at once (the per-pixel stage in row bands that stay in cache)


def _conv3x3(w: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A valid 3x3 convolution (cross-correlation, as torch's conv2d): w (K, C, 3, 3), x (C,
    h, w) -> (K, h - 2, w - 2)."""
    h, wd = x.shape[1] - 2, x.shape[2] - 2
    out = np.empty((w.shape[0], h, wd), np.float32)
    out[:] = b.astype(np.float32)[:, None, None]
    for dy in range(3):
        for dx in range(3):
            out += np.tensordot(w[:, :, dy, dx].astype(np.float32), x[:, dy:dy + h, dx:dx + wd], axes=1)
    return out


def refine_numpy(p: dict[str, np.ndarray], out: np.ndarray, rows: int = 64) -> np.ndarray:
    """The refine stage (format 8) on a (C, H, W) output, in bands of `rows` rows (memory
    stays at a band's few planes); the edges repeated REFINE_MARGIN pixels outward."""
    m = REFINE_MARGIN
    x = np.pad(out, ((0, 0), (m, m), (m, m)), mode="edge")
    res = np.empty_like(out)
    for r0 in range(0, out.shape[1], rows):
        r1 = min(out.shape[1], r0 + rows)
        h = np.maximum(_conv3x3(p["conv1"], p["c1"], x[:, r0:r1 + 2 * m]), 0)
        res[:, r0:r1] = out[:, r0:r1] + _conv3x3(p["conv2"], p["c2"], h)
    return res


def synthesize_numpy(layout: Layout, p: dict[str, np.ndarray], latents: list[np.ndarray],
                     threads: int = 1, refine: bool = True) -> np.ndarray:
    """`_synthesize_numpy`, then the refine stage where the layout has one (refine=False:
    the output before it)."""
    out = _synthesize_numpy(layout, p, latents, threads)
    return refine_numpy(p, out) if layout.refine and refine else out


def _synthesize_numpy(layout: Layout, p: dict[str, np.ndarray], latents: list[np.ndarray],
                      threads: int = 1) -> np.ndarray:
    """`synthesize` on numpy in bands of rows: the pyramid down to level 2 once, then per
    band the rows of level 1 it needs, the last upsampling, level 0's term and the MLP
    (two levels per band: level 1 alone is a quarter of the pixels), so memory stays at about
    TILE_PIXELS x (C + hidden) floats per thread whatever the image size. The bands are
    independent, so `threads` threads (numpy releases the GIL in its array work) share them
    with the same result. Same values."""
    c, hgt, wid = layout.channels, layout.height, layout.width
    if layout.levels < 2 or hgt * wid <= TILE_PIXELS:
        return synthesize(NUMPY, layout, p, latents)
    fuse = layout.levels >= 3  # level 1 too is computed band by band, from level 2
    coarse = features(NUMPY, layout, p, latents, stop=2 if fuse else 1)
    (h1, w1) = layout.shapes[1]
    z0, z1 = latents[0], latents[1]
    out = np.empty((c, hgt, wid), np.float32)
    rows = max(8, TILE_PIXELS // wid)
    starts = list(range(0, hgt, rows))

    def level1(i0: int, i1: int) -> np.ndarray:
        """Rows [i0, i1) of a_1."""
        if not fuse:
            return coarse[:, i0:i1]
        j0, j1 = max(0, i0 // 2 - 1), min(coarse.shape[1], (i1 + 1) // 2 + 1)  # level-2 rows they need
        up = up2(NUMPY, coarse[:, j0:j1], (2 * (j1 - j0), w1))[:, i0 - 2 * j0:i1 - 2 * j0]
        return up + (p["mod1"] @ z1[:, i0:i1].reshape(z1.shape[0], -1)).reshape(-1, i1 - i0, w1)

    def bands(r0s: list[int]) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # numpy's error state is per thread
            for r0 in r0s:
                r1 = min(hgt, r0 + rows)
                i0, i1 = max(0, r0 // 2 - 1), min(h1, (r1 + 1) // 2 + 1)  # level-1 rows the band needs
                band = up2(NUMPY, level1(i0, i1), (2 * (i1 - i0), wid))[:, r0 - 2 * i0:r1 - 2 * i0]
                a0 = band + (p["mod0"] @ z0[:, r0:r1].reshape(z0.shape[0], -1)).reshape(-1, r1 - r0, wid)
                out[:, r0:r1] = mlp(NUMPY, layout, p, a0.reshape(a0.shape[0], -1)).reshape(c, r1 - r0, wid)

    threads = max(1, min(threads, len(starts)))
    if threads == 1:
        bands(starts)
        return out
    import threading

    errors: list[BaseException] = []

    def worker(r0s: list[int]) -> None:
        try:
            bands(r0s)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    helpers = [threading.Thread(target=worker, args=(starts[i::threads],), daemon=True) for i in range(1, threads)]
    for t in helpers:
        t.start()
    worker(starts[0::threads])
    for t in helpers:
        t.join()
    if errors:
        raise errors[0]
    return out


def macs_per_pixel(layout: Layout, context_macs: float) -> float:
    """Decoder MACs per pixel: each level's modulation on its cells, the upsampling (two
    2-tap passes per feature), the per-pixel MLP, and the context model per latent."""
    n = layout.height * layout.width
    f, h, c = layout.features, layout.hidden, layout.channels
    total = 0.0
    for lv, (gh, gw) in enumerate(layout.shapes):
        cells = gh * gw
        total += f * len(layout.planes(lv)) * cells
        if lv:
            total += 2 * 2 * f * min(n, 4 * cells)
    total += n * (h + h * h + h + c * h + c)
    total += n * 18 * layout.refine * c  # the refine stage: two 3x3 convolutions, C -> K -> C
    total += context_macs * layout.latent_count()
    return total / n
