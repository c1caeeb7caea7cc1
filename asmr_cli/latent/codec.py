"""Format versions 3 and 8 (images): the latent pyramid, its synthesis and its context model as
bytes, and back to pixels at any size. numpy and constriction only: no torch.

Encoder side: `pack` quantises the synthesis weights (per-row steps chosen for distortion
+ lam * rate), turns the context model into the fixed-point integers both sides compute
with, rounds the latents and codes them under that model. Decoder side: `unpack` and
`render`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..container import entropy
from ..container.file import AsmrFile
from ..container.tensors import Tensor
from ..core.errors import AsmrError
from ..core.quantize import dequantize, quantize, snap_steps
from . import context_model as cm
from .format import LatentHeader, dumps
from .latents import NUMPY, Layout, by_level, features, macs_per_pixel, mlp, refine_numpy, synthesize_numpy

CONTEXT_STEP = np.array([2.0 ** -cm.WEIGHT_BITS], np.float32)
WEIGHT_BITS_CHOICES = (6, 8, 10, 12)  # per-row precision of the synthesis weights tried by `pack`


@dataclass
class LatentImage:
    """Everything the decoder rebuilds from a version-3 file."""

    layout: Layout
    synthesis: dict[str, np.ndarray]  # float32, dequantised
    context: dict[str, np.ndarray]    # int32 fixed point
    latents: list[np.ndarray]         # int64 grids in Layout.grids() order

    def level_latents(self) -> list[np.ndarray]:
        return by_level(self.layout, self.latents)


def row_steps(values: np.ndarray, bits: int) -> np.ndarray:
    """One step per row (per tensor for vectors): the row's peak over 2^bits."""
    groups = values.shape[0] if values.ndim > 1 else 1
    rows = values.reshape(groups, math.prod(values.shape) // max(1, groups))
    peak = np.abs(rows).max(axis=1, initial=0.0)
    return snap_steps(np.maximum(peak, 1e-8) / 2.0**bits)


def quantise_synthesis(layout: Layout, synthesis: dict[str, np.ndarray], bits: int):
    """-> (file tensors, the decoder's dequantised weights)."""
    tensors, weights = [], {}
    for name, shape in layout.synthesis_shapes():
        v = np.asarray(synthesis[name], np.float32).reshape(shape)
        steps = row_steps(v, bits)
        q = quantize(v, steps)
        tensors.append(Tensor(steps, entropy.encode(q)))
        weights[name] = dequantize(q, steps)
    return tensors, weights


def context_tensors(q: dict[str, np.ndarray], n_grids: int, hidden: int,
                    temporal: bool = False) -> list[Tensor]:
    return [Tensor(CONTEXT_STEP, entropy.encode(q[name]))
            for name, _ in cm.parameter_shapes(n_grids, hidden, temporal)]


def pack(header: LatentHeader, synthesis: dict[str, np.ndarray], context: dict[str, np.ndarray],
         latents: list[np.ndarray], bits: int) -> bytes:
    """The whole file, synthesis weights at `bits` per-row precision."""
    layout = header.layout
    syn_tensors, _ = quantise_synthesis(layout, synthesis, bits)
    q = cm.to_fixed(context)
    ints = [np.rint(z).astype(np.int64) for z in latents]
    grids = cm.encode_grids(ints, layout.grids(), q)
    return dumps(header, syn_tensors + context_tensors(q, len(ints), layout.context_hidden), grids)


def unpack(f: AsmrFile) -> LatentImage:
    layout = f.header.layout
    syn, ctx = unpack_networks(layout, f.tensors)
    latents = cm.decode_grids(f.grids, layout.grids(), ctx)
    return LatentImage(layout, syn, ctx, latents)


def unpack_networks(layout: Layout, tensors: list[Tensor], temporal: bool = False):
    """The synthesis weights (dequantised) and the context model's integers from the file's
    tensors, in that order."""
    shapes = layout.synthesis_shapes()
    syn = {}
    for (name, shape), t in zip(shapes, tensors[:len(shapes)]):
        syn[name] = dequantize(entropy.decode(t.coded, shape), t.steps)
    ctx = {}
    for (name, shape), t in zip(cm.parameter_shapes(len(layout.grids()), layout.context_hidden, temporal),
                                tensors[len(shapes):]):
        values = entropy.decode(t.coded, shape)
        if values.size and np.abs(values).max() >= cm.MAX_WEIGHT:
            raise AsmrError("corrupt file: context-model weight out of range")
        ctx[name] = values
    return syn, ctx


SYNTHESIS_THREADS = min(2, os.cpu_count() or 1)  # an image's synthesis bands, shared (the same values)


def render_native(img: LatentImage, threads: int = 1) -> np.ndarray:
    """(C, H, W) float32 on [0, 1] (unclipped); the synthesis on `threads` threads."""
    with np.errstate(over="ignore", invalid="ignore"):  # a hostile file's weights may overflow
        out = synthesize_numpy(img.layout, img.synthesis, img.level_latents(), threads)
    return _finite(out.astype(np.float32, copy=False))


def _finite(out: np.ndarray) -> np.ndarray:
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)


# -- any size -------------------------------------------------------------------------------

def _cubic(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5): interpolating, so the native grid is kept."""
    t = np.abs(t)
    a = -0.5
    return np.where(t <= 1, (a + 2) * t**3 - (a + 3) * t**2 + 1,
                    np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0))


def axis_taps(n_in: int, n_out: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampling of one axis for output samples lo..hi of n_out, as (indices, weights),
    both (hi - lo, taps): the identity on the native grid, bicubic when enlarging, the
    exact area average when reducing."""
    out = np.arange(lo, hi, dtype=np.float64)
    if n_out == n_in:
        return np.arange(lo, hi)[:, None], np.ones((hi - lo, 1))
    if n_out > n_in:
        x = (out + 0.5) * n_in / n_out - 0.5
        idx = np.floor(x).astype(np.int64)[:, None] + np.arange(-1, 3)
        return np.clip(idx, 0, n_in - 1), _cubic(x[:, None] - idx)
    step = n_in / n_out
    taps = int(math.ceil(step)) + 1
    first = np.floor(out * step).astype(np.int64)
    idx = first[:, None] + np.arange(taps)
    a, b = (out * step)[:, None], ((out + 1) * step)[:, None]
    w = np.clip(np.minimum(b, idx + 1) - np.maximum(a, idx), 0, None) / step
    return np.clip(idx, 0, n_in - 1), w


def _resample(x: np.ndarray, taps: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    idx, w = taps
    shape = [1] * x.ndim
    shape[axis] = idx.shape[0]
    out = None
    for k in range(idx.shape[1]):
        term = np.take(x, idx[:, k], axis=axis) * w[:, k].astype(np.float32).reshape(shape)
        out = term if out is None else out + term
    return out


def render(img: LatentImage, out_size: tuple[int, int], top_left: tuple[int, int],
           bottom_right: tuple[int, int]) -> np.ndarray:
    """The rows/columns [top_left, bottom_right) of the image rendered at out_size (oh, ow):
    (C, rows, cols). Reducing both axes averages the native output over each output pixel's
    area; otherwise the synthesis features are resampled (bicubic along enlarged axes) and
    the per-pixel stage runs on the output samples, so the network itself draws them (format
    8: plus what the refine stage adds at the native size, resampled alike)."""
    lay = img.layout
    (oh, ow), (y0, x0), (y1, x1) = out_size, top_left, bottom_right
    ty, tx = axis_taps(lay.height, oh, y0, y1), axis_taps(lay.width, ow, x0, x1)
    if oh <= lay.height and ow <= lay.width:
        if (oh, ow) == (lay.height, lay.width):
            return render_native(img, SYNTHESIS_THREADS)[:, y0:y1, x0:x1]
        native = np.clip(render_native(img, SYNTHESIS_THREADS), 0, 1)
        return _resample(_resample(native, ty, 1), tx, 2)
    with np.errstate(over="ignore", invalid="ignore"):
        a = features(NUMPY, lay, img.synthesis, img.level_latents())
        a = _resample(_resample(a, ty, 1), tx, 2)
        rows, cols = a.shape[1:]
        out = mlp(NUMPY, lay, img.synthesis, a.reshape(a.shape[0], -1)).reshape(lay.channels, rows, cols)
        if lay.refine:  # what the refine stage adds at the native size, resampled the same way
            before = synthesize_numpy(lay, img.synthesis, img.level_latents(), SYNTHESIS_THREADS, refine=False)
            added = refine_numpy(img.synthesis, before) - before
            out += _resample(_resample(added, ty, 1), tx, 2)
    return _finite(out)


def decoder_macs(layout: Layout, temporal: bool = False) -> float:
    return macs_per_pixel(layout, cm.macs_per_latent(layout.context_hidden, temporal))


def unshared_macs(layout: Layout, temporal: bool = False) -> float:
    """The same decoder with every level evaluated at every pixel (no activation sharing):
    each level's modulation per pixel instead of per cell."""
    n = layout.height * layout.width
    per_pixel = sum(layout.features * len(layout.planes(lv)) for lv in range(layout.levels))
    shared = sum(layout.features * len(layout.planes(lv)) * h * w for lv, (h, w) in enumerate(layout.shapes)) / n
    return decoder_macs(layout, temporal) - shared + per_pixel
