"""Motion estimation for the encoder of format versions 7 and 9 (numpy; never imported by
the decoder).

Per reference of each predicted frame (the reference as predicted, CHAINED): a global
translation found coarse to fine (4x and 2x reductions, then full resolution), a block
matching cost volume around it
(luma SSE per block for every integer displacement in a window), vectors chosen row by
row with a rate term against the left neighbour's vector (what the coder predicts from),
refined to half then quarter pixels through the decoder's own interpolation. Then the
reference's mode is the cheapest of none, global and field in SSE + mu * bits, where mu is
what a bit is worth in the training's loss."""

from __future__ import annotations

import numpy as np

from ..container import entropy
from . import motion

SEARCH = 7  # integer search radius around the global vector, full resolution
COARSE_SEARCH = 8  # at 1/4 resolution (so +-32 pixels)
GLOBAL_BITS = 24.0  # about what a global vector costs
MODE_BITS = 2.0
CHAINED = True  # match against the chain of predictions (what the decoder will hold), not the source frame
SUB_PIXEL = True  # refine to quarter pixels (False: integer vectors, the ablation)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(np.float32) @ LUMA if frame.shape[-1] >= 3 else frame[..., 0].astype(np.float32)


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """img sampled at (y + dy, x + dx), edges clamped."""
    h, w = img.shape[:2]
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    return img[rows][:, cols]


def _reduce(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    x = img[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def global_vector(cur: np.ndarray, ref: np.ndarray) -> tuple[int, int]:
    """The integer translation (dy, dx) of the whole frame, coarse to fine, luma SSE."""
    pyr = [(cur, ref)]
    for _ in range(2):
        c, r = pyr[-1]
        if min(c.shape) < 16:
            break
        pyr.append((_reduce(c), _reduce(r)))
    gy = gx = 0
    for i, (c, r) in enumerate(reversed(pyr)):
        radius = COARSE_SEARCH if i == 0 else 2
        if i:
            gy, gx = 2 * gy, 2 * gx
        m = max(1, min(c.shape) // 8)  # edges left out (clamped samples)
        best = None
        for dy in range(gy - radius, gy + radius + 1):
            for dx in range(gx - radius, gx + radius + 1):
                d = float(np.mean((c[m:-m, m:-m] - _shift(r, dy, dx)[m:-m, m:-m]) ** 2))
                if best is None or d < best[0]:
                    best = (d, dy, dx)
        _, gy, gx = best
    return gy, gx


def _block_sums(x: np.ndarray, block: int) -> np.ndarray:
    h, w = x.shape
    by, bx = -(-h // block), -(-w // block)
    pad = np.zeros((by * block, bx * block), x.dtype)
    pad[:h, :w] = x
    return pad.reshape(by, block, bx, block).sum(axis=(1, 3))


def _vector_bits(d: np.ndarray) -> np.ndarray:
    """Approximate bits of a vector difference (..., 2) in quarter pixels."""
    return (1.0 + 2.0 * np.log2(1.0 + np.abs(d))).sum(-1)


def cost_volume(cur: np.ndarray, ref: np.ndarray, g: tuple[int, int], block: int) -> tuple[np.ndarray, np.ndarray]:
    """Luma SSE per block for every integer displacement within SEARCH of the global vector g
    (and zero): (cost (D, by, bx), vectors (D, 2) in quarter pixels)."""
    disps = [(g[0] + dy, g[1] + dx) for dy in range(-SEARCH, SEARCH + 1) for dx in range(-SEARCH, SEARCH + 1)]
    if (0, 0) not in disps:
        disps.append((0, 0))
    h, w = cur.shape
    pad = max(abs(v) for d in disps for v in d)
    big = np.pad(ref, pad, mode="edge")  # the clamped edges of _shift, as views
    cost = np.stack([_block_sums((cur - big[pad + dy:pad + dy + h, pad + dx:pad + dx + w]) ** 2, block)
                     for dy, dx in disps])
    return cost, np.array(disps, np.int32) * 4


def block_field(cost: np.ndarray, vecs: np.ndarray, mu_luma: float) -> np.ndarray:
    """Integer block vectors (by, bx, 2) in quarter pixels from cost_volume's (cost, vecs),
    chosen with a rate term against the left neighbour."""
    _, by, bx = cost.shape
    out = np.zeros((by, bx, 2), np.int32)
    left = np.zeros((by, 2), np.int32)
    for j in range(bx):
        bits = _vector_bits(vecs[:, None, :] - left[None, :, :])  # (D, by)
        pick = np.argmin(cost[:, :, j] + mu_luma * bits, axis=0)
        out[:, j] = vecs[pick]
        left = out[:, j]
    return out


def _block_sse(cur: np.ndarray, pred: np.ndarray, block: int) -> np.ndarray:
    return _block_sums((cur - luma(pred)) ** 2, block)


class Phases:
    """A reference's luma (rounded to 8 bits, as the decoder's warp would see one channel)
    interpolated at the 16 quarter-pixel phases on an edge-padded canvas, so that a warp by
    any vectors within `reach` pixels is one gather: the same integers as motion.warp."""

    def __init__(self, ref8: np.ndarray, reach: int, filt: int):
        ref1 = np.round(luma(ref8)).clip(0, 255).astype(np.uint8)
        self.pad = reach + 3  # the cubic taps reach one pixel back and two on
        big = np.pad(ref1, self.pad, mode="edge")[..., None]
        self.h, self.w = ref1.shape
        self.planes = np.stack([motion.warp(big, fy, fx, filt)[..., 0] for fy in range(4) for fx in range(4)])

    def warp(self, dy: np.ndarray | int, dx: np.ndarray | int) -> np.ndarray:
        """(H, W) float32: the luma reference at (y + dy/4, x + dx/4), quarter pixels."""
        dy, dx = np.asarray(dy, np.int32), np.asarray(dx, np.int32)
        if np.ndim(dy) == 0 and np.ndim(dx) == 0:
            y0, x0 = self.pad + (int(dy) >> 2), self.pad + (int(dx) >> 2)
            return self.planes[(int(dy) & 3) * 4 + (int(dx) & 3), y0:y0 + self.h, x0:x0 + self.w].astype(np.float32)
        rows = np.arange(self.h, dtype=np.int32)[:, None] + self.pad + (dy >> 2)
        cols = np.arange(self.w, dtype=np.int32)[None, :] + self.pad + (dx >> 2)
        return self.planes[(dy & 3) * 4 + (dx & 3), rows, cols].astype(np.float32)


def refine(cur: np.ndarray, ref: Phases, field: np.ndarray, block: int) -> np.ndarray:
    """Block vectors refined to half, then quarter pixels (the decoder's interpolation, luma)."""
    h, w = cur.shape
    field = field.copy()
    for step in (2, 1) if SUB_PIXEL else ():
        best = None
        for ddy in (-step, 0, step):
            for ddx in (-step, 0, step):
                cand = field + np.array([ddy, ddx], np.int32)
                dy, dx = motion.pixel_field(cand, h, w, block)
                sse = _block_sums((cur - ref.warp(dy, dx)) ** 2, block)
                if best is None:
                    best, choice = sse, np.broadcast_to(cand, cand.shape).copy()
                else:
                    better = sse < best
                    best = np.where(better, sse, best)
                    choice[better] = cand[better]
        field = choice
    return field


def refine_global(cur: np.ndarray, ref: Phases, g: np.ndarray) -> tuple[np.ndarray, float]:
    best = None
    for step in (2, 1) if SUB_PIXEL else (0,):
        centre = g if best is None else best[1]
        for ddy in (-step, 0, step):
            for ddx in (-step, 0, step):
                v = centre + np.array([ddy, ddx], np.int32)
                sse = float(np.sum((cur - ref.warp(int(v[0]), int(v[1]))) ** 2))
                if best is None or sse < best[0]:
                    best = (sse, v)
    return best[1], best[0]


def field_bits(field: np.ndarray) -> float:
    coded = entropy.encode(field[None], (0, 1, 2))
    return 32.0 * coded.words.size + 48.0


def _one(cur8: np.ndarray, ref8: np.ndarray, block: int, filt: int, mu: float, extra_bits: float,
         searched: dict | None = None,
         key=None) -> tuple[float, tuple[int, np.ndarray | None, np.ndarray | None], np.ndarray, float]:
    """The cheapest of none, global and field for predicting cur8 from ref8, in SSE + mu x
    bits: (that cost, the motion, its prediction, its bits). The integer search (which does
    not depend on mu) is kept in `searched` under `key` and taken from it when there."""
    cur = luma(cur8)
    if searched is None or key not in searched:
        ref = luma(ref8)
        g = global_vector(cur, ref)
        found = (g, *cost_volume(cur, ref, g, block))
        if searched is not None:
            searched[key] = found
    else:
        found = searched[key]
    g, cost, vecs = found
    phases = Phases(ref8, max(abs(g[0]), abs(g[1])) + SEARCH + 1, filt)
    gvec, _ = refine_global(cur, phases, np.array(g, np.int32) * 4)
    field = refine(cur, phases, block_field(cost, vecs, mu / cur8.shape[-1]), block)
    g_pred = motion.predict(ref8, motion.GLOBAL, gvec, None, block, filt)
    f_pred = motion.predict(ref8, motion.FIELD, None, field, block, filt)
    cands = [((motion.NONE, None, None), ref8, MODE_BITS),
             ((motion.GLOBAL, gvec, None), g_pred, MODE_BITS + GLOBAL_BITS),
             ((motion.FIELD, None, field), f_pred, MODE_BITS + field_bits(field))]
    cost, mot, pred, bits = min(((_sse(cur8, p) + mu * (b + extra_bits), m, p, b) for m, p, b in cands),
                                key=lambda x: x[0])
    return cost, mot, pred, bits


def _sse(cur8: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sum((cur8.astype(np.float32) - pred.astype(np.float32)) ** 2))


def estimate(frames: np.ndarray, plan: list[tuple[int, tuple[int, ...]]], block: int, filt: int, mu: float,
             search: bool = True,
             searched: dict | None = None) -> list[tuple[int, np.ndarray | None, np.ndarray | None]]:
    """frames (T, H, W, C) uint8 (the source); plan: frames in coding order with their
    references (MotionHeader.plan); for every slot (each reference of each predicted frame)
    its (mode, global vector, field). mu: the loss's worth of one bit in SSE over all
    channels on the 0-255 scale. search=False: every slot NONE (the ablation's no-motion
    start; a B frame then averages its two references). CHAINED: a reference that is itself
    predicted is matched as predicted (what the decoder will hold, less the residual), not
    as the source frame. A B frame (two references) takes the cheapest of the first alone,
    the second alone and both averaged. `searched`: a dict kept between estimates of the same
    frames at other mu (the encoder's tries): each slot's integer search is made once, on
    the first estimate's chain, and reused (the sub-pixel refinements, the vectors' rate
    term and the modes are redone against the chain as it is now)."""
    out: list[tuple[int, np.ndarray | None, np.ndarray | None]] = []
    chain: dict[int, np.ndarray] = {}  # predicted frame -> its prediction
    unused = (motion.UNUSED, None, None)
    for t, refs in plan:
        if not refs:
            continue
        if not search:
            out += [(motion.NONE, None, None)] * len(refs)
            continue
        cur8 = frames[t]
        ref8 = [chain.get(r, frames[r]) if CHAINED else frames[r] for r in refs]
        if len(refs) == 1:
            _, mot, pred, _ = _one(cur8, ref8[0], block, filt, mu, 0.0, searched, (t, refs[0]))
            out.append(mot)
        else:
            (_, ma, pa, ba), (_, mb, pb, bb) = (_one(cur8, r8, block, filt, mu, MODE_BITS, searched, (t, r))
                                                for r8, r in zip(ref8, refs))
            both = ((pa.astype(np.int16) + pb + 1) >> 1).astype(np.uint8)
            cands = [(_sse(cur8, pa) + mu * (ba + MODE_BITS), [ma, unused], pa),
                     (_sse(cur8, pb) + mu * (bb + MODE_BITS), [unused, mb], pb),
                     (_sse(cur8, both) + mu * (ba + bb), [ma, mb], both)]
            _, mots, pred = min(cands, key=lambda x: x[0])
            out += mots
        chain[t] = pred
    return out


def mu_for(lam: float, channels: int) -> float:
    """A bit's worth in SSE on the 0-255 scale summed over channels, for the loss mse + lam * bits / n."""
    return lam * channels * 255.0 ** 2
