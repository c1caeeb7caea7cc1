"""Motion compensation of format version 7: a decoded 8-bit reference frame warped by a
block-constant motion field, in integer arithmetic only (numpy, no torch).

A frame's motion is one of three modes: none (the reference as it is), one global vector,
or a field of one vector per BLOCK x BLOCK block. Vectors are (dy, dx) in quarter pixels:
the sample for pixel (y, x) is the reference at (y + dy / 4, x + dx / 4), positions
outside the frame clamped to its edge. The sub-pixel value is interpolated by one of two
separable filters, both in integers:

- bilinear: weights (4 - f, f) / 4 per axis, one rounding at the end (sum / 16);
- cubic: Catmull-Rom taps at quarter positions in 1/64 ((0, 64, 0, 0), (-4, 55, 15, -2),
  (-4, 36, 36, -4), (-2, 15, 55, -4)), one rounding at the end (sum / 4096), clipped to
  [0, 255].

Every intermediate is an integer well inside int32 (|sum| < 255 * 75 * 75), so the
prediction is the same bits on every machine and thread count: the decoder's only float
work is the latent synthesis of the residual added to it.
"""

from __future__ import annotations

import numpy as np

NONE, GLOBAL, FIELD = 0, 1, 2
MODES = (NONE, GLOBAL, FIELD)
UNUSED = 3  # format 9: a B frame's reference it does not predict from
BILINEAR, CUBIC = 0, 1
FILTERS = (BILINEAR, CUBIC)
BLOCKS = (4, 8, 16, 32)
MAX_VECTOR = 1 << 14  # |component| in quarter pixels

_CUBIC_TAPS = np.array([[0, 64, 0, 0], [-4, 55, 15, -2], [-4, 36, 36, -4], [-2, 15, 55, -4]], np.int32)


def pixel_field(vectors: np.ndarray, height: int, width: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(by, bx, 2) block vectors -> per-pixel (H, W) dy and dx (int32, quarter pixels)."""
    v = np.asarray(vectors, np.int32)
    full = np.repeat(np.repeat(v, block, axis=0), block, axis=1)[:height, :width]
    return full[..., 0], full[..., 1]


def blocks_of(height: int, width: int, block: int) -> tuple[int, int]:
    return -(-height // block), -(-width // block)


def warp(ref: np.ndarray, dy: np.ndarray | int, dx: np.ndarray | int, filt: int = BILINEAR) -> np.ndarray:
    """ref (H, W, C) uint8 sampled at (y + dy/4, x + dx/4): (H, W, C) uint8. dy, dx: per-pixel
    (H, W) int arrays or single ints (quarter pixels)."""
    h, w, _ = ref.shape
    if np.ndim(dy) == 0 and np.ndim(dx) == 0 and filt == BILINEAR:
        return _shifted(ref, int(dy), int(dx))
    rows = np.arange(h, dtype=np.int32)[:, None] * 4 + np.asarray(dy, np.int32)
    cols = np.arange(w, dtype=np.int32)[None, :] * 4 + np.asarray(dx, np.int32)
    rows, cols = np.broadcast_arrays(rows, cols)
    iy, fy = rows >> 2, rows & 3
    ix, fx = cols >> 2, cols & 3
    src = ref.astype(np.int32)
    if filt == BILINEAR:
        y0, y1 = np.clip(iy, 0, h - 1), np.clip(iy + 1, 0, h - 1)
        x0, x1 = np.clip(ix, 0, w - 1), np.clip(ix + 1, 0, w - 1)
        wy, wx = fy[..., None], fx[..., None]
        top = (4 - wx) * src[y0, x0] + wx * src[y0, x1]
        bot = (4 - wx) * src[y1, x0] + wx * src[y1, x1]
        out = ((4 - wy) * top + wy * bot + 8) >> 4
        return out.astype(np.uint8)
    ty, tx = _CUBIC_TAPS[fy], _CUBIC_TAPS[fx]  # (H, W, 4)
    acc = np.zeros(ref.shape, np.int32)
    for a in range(4):
        ya = np.clip(iy + a - 1, 0, h - 1)
        row = np.zeros(ref.shape, np.int32)
        for b in range(4):
            row += tx[..., b, None] * src[ya, np.clip(ix + b - 1, 0, w - 1)]
        acc += ty[..., a, None] * row
    return np.clip((acc + 2048) >> 12, 0, 255).astype(np.uint8)


def _shifted(ref: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """warp's bilinear case for one vector: the same integers, gathered by rows and columns
    (a separable shift) instead of pixel by pixel."""
    h, w, _ = ref.shape
    iy, fy = (np.arange(h) * 4 + dy) >> 2, dy & 3
    ix, fx = (np.arange(w) * 4 + dx) >> 2, dx & 3
    src = ref.astype(np.int32)
    y0, y1 = src[np.clip(iy, 0, h - 1)], src[np.clip(iy + 1, 0, h - 1)]
    x0, x1 = np.clip(ix, 0, w - 1), np.clip(ix + 1, 0, w - 1)
    top = (4 - fx) * y0[:, x0] + fx * y0[:, x1]
    bot = (4 - fx) * y1[:, x0] + fx * y1[:, x1]
    return (((4 - fy) * top + fy * bot + 8) >> 4).astype(np.uint8)


def predict(ref: np.ndarray, mode: int, vector: np.ndarray | None, field: np.ndarray | None, block: int,
            filt: int) -> np.ndarray:
    """The prediction of a frame from its reference (H, W, C) uint8 for one frame's motion."""
    h, w, _ = ref.shape
    if mode == NONE:
        return ref.copy()
    if mode == GLOBAL:
        return warp(ref, int(vector[0]), int(vector[1]), filt)
    dy, dx = pixel_field(field, h, w, block)
    return warp(ref, dy, dx, filt)


def predict_from(refs: list[np.ndarray], motions: list[tuple[int, np.ndarray | None, np.ndarray | None]],
                 block: int, filt: int) -> np.ndarray:
    """A frame's prediction from one or two references (H, W, C) uint8, each with its motion
    (mode, vector, field); a reference whose mode is UNUSED is skipped, and two predictions
    are averaged in integers ((a + b + 1) >> 1). At least one reference is used (the
    parsers check it)."""
    preds = [predict(r, m, v, f, block, filt) for r, (m, v, f) in zip(refs, motions) if m != UNUSED]
    if len(preds) == 1:
        return preds[0]
    return ((preds[0].astype(np.int16) + preds[1] + 1) >> 1).astype(np.uint8)
