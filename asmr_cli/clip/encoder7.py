"""The clip encoder of format version 7: budget -> groups and segments -> motion from the
source frames (estimate.py) -> lam -> fit with closed-loop predictions (fit.py) ->
weights' precision -> rate fitted to the target (encoder.py's dead zone) -> bytes.
Imports torch (through fit.py); the decoder never imports this module."""

from __future__ import annotations

import math

import numpy as np

from ..container.tensors import pack_tensor
from ..core.presets import CLIP_PRESETS
from ..core.rates import Target
from ..latent.encoder import network_bytes
from ..latent.latents import synthesize_numpy
from . import motion
from .codec7 import compose, pack
from .encoder import AIM_ABOVE, STEER_RANGE, ClipEncoding, _fit_clip_rate, _kept, clip_encoding, group_at, weight_bits
from .format7 import GroupMotion, MotionHeader, motion_tensors, overhead

INTRA_PERIOD: int | None = None  # frames from one intra frame to the next; None: period_for's rule
PERIOD_AT_01 = 32  # the intra period at 0.1 bpp; twice as long at half the rate
INTRA_WEIGHT = 8.0  # the intra frame's distortion weight in training (P frames: 1); every P frame inherits it
SEARCH_MOTION = True  # False: every P frame predicted from the unmoved frame before (ablation)
FILTER = motion.BILINEAR


def period_for(group: int, bpp: float) -> int:
    """Frames from one intra frame to the next: PERIOD_AT_01 at 0.1 bpp and above, doubled for
    each halving of the rate below it (an intra frame costs about as much as a whole segment
    of P frames: at 0.025 bpp a carphone intra frame alone would be a third of the budget),
    at most the group."""
    period = PERIOD_AT_01 * 2 ** max(0, round(math.log2(0.1 / max(bpp, 1e-6))))
    return max(1, min(group, INTRA_PERIOD if INTRA_PERIOD is not None else period))


def frame_weights(header: MotionHeader, start: int, end: int) -> list[float]:
    """Each frame's distortion weight in training: INTRA_WEIGHT on intra frames, 1 on P frames
    (weighting every frame by the frames predicted from it after it, 1 + 0.25 x their count,
    measured worse: docs/video.md)."""
    firsts = {a for a, _ in header.segment_spans()}
    return [INTRA_WEIGHT if t in firsts else 1.0 for t in range(start, end)]


def block_for(height: int, width: int) -> int:
    """Motion block side: 8 pixels up to 2^17 pixels a frame, 16 up to 2^22 (4K), 32 above
    (format7.MAX_MOTION_VALUES bounds a group's vectors)."""
    return 8 if height * width <= 1 << 17 else 16 if height * width <= 1 << 22 else 32


def _group_motion(header: MotionHeader, frames8: np.ndarray, start: int, end: int, lam: float) -> GroupMotion:
    from .estimate import estimate, mu_for

    p = header.p_frames(start, end)
    est = estimate(frames8, p, header.block, header.filt, mu_for(lam, header.channels), SEARCH_MOTION)
    by, bx = motion.blocks_of(header.sizes[1], header.sizes[2], header.block)
    modes = np.array([m for m, _, _ in est], np.int32)
    vecs = [v for m, v, _ in est if m == motion.GLOBAL]
    fields = [f for m, _, f in est if m == motion.FIELD]
    return GroupMotion(modes, np.array(vecs, np.int32).reshape(-1, 2),
                       np.array(fields, np.int32).reshape(-1, by, bx, 2))


def _source_prediction(header: MotionHeader, frames8: np.ndarray, start: int, end: int,
                       mot: GroupMotion) -> np.ndarray:
    """(C, T, H, W) float32: each P frame's prediction from the source frame before it (the
    training's first prediction), 0 on intra frames."""
    t_n, h, w, c = frames8[start:end].shape
    out = np.zeros((c, t_n, h, w), np.float32)
    for i, t in enumerate(header.p_frames(start, end)):
        mode, vec, field = mot.of(i)
        out[:, t - start] = np.moveaxis(motion.predict(frames8[t - 1], mode, vec, field, header.block, header.filt),
                                        -1, 0) / 255.0
    return out


def _decoded(header: MotionHeader, synthesis: dict, start: int, end: int, mot: GroupMotion,
             latents: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The group as the decoder would make it from these (per-level) latents and float
    synthesis weights: (predictions (C, T, H, W) float32 on [0, 1], frames (T, H, W, C) uint8)."""
    lay = header.layout
    p_index = {t: i for i, t in enumerate(header.p_frames(start, end))}
    preds = np.zeros((lay.channels, end - start, lay.height, lay.width), np.float32)
    frames = np.empty((end - start, lay.height, lay.width, lay.channels), np.uint8)
    prev = None
    for k in range(end - start):
        t = start + k
        synth = synthesize_numpy(lay, synthesis, latents[k])
        pred = None
        if t in p_index:
            mode, vec, field = mot.of(p_index[t])
            pred = motion.predict(prev, mode, vec, field, header.block, header.filt)
            preds[:, k] = np.moveaxis(pred, -1, 0) / np.float32(255.0)
        prev = frames[k] = compose(np.nan_to_num(synth), pred)
    return preds, frames


def encode(clip: np.ndarray, header: MotionHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> ClipEncoding:
    """clip: (C, T, H, W) float32 on [0, 1]. Trains on the CPU."""
    from ..latent.fit import LatentFitConfig
    from .fit import Prediction, choose_clip_lambda, fit_clip

    layout = header.layout
    frames = header.frames
    spans = header.group_spans()
    firsts = {s for s, _ in header.segment_spans()}
    p = CLIP_PRESETS[preset]
    limit = time_limit if time_limit is not None else p.time_limit
    frames8 = np.clip(np.rint(np.moveaxis(clip, 0, -1) * 255.0), 0, 255).astype(np.uint8)
    nets = network_bytes(layout) * len(spans)
    rough = max(64.0 * len(spans), (target.budget_bytes - overhead(header) - nets) * 8)
    motions = []
    for s, e in spans:  # motion first: what it costs comes out of the latents' budget
        lam0 = choose_clip_lambda(layout, clip[:, s:e], rough * (e - s) / frames * AIM_ABOVE)
        motions.append(_group_motion(header, frames8, s, e, lam0))
    motion_bytes = sum(len(pack_tensor(t)) for m in motions for t in motion_tensors(m))
    latent_bits = max(64.0 * len(spans), (target.budget_bytes - overhead(header) - nets - motion_bytes) * 8)
    fits = []
    done_steps = 0
    for i, (s, e) in enumerate(spans):
        share = (e - s) / frames
        part = clip[:, s:e]
        mot = motions[i]
        start_pred = _source_prediction(header, frames8, s, e, mot)
        is_intra = [t in firsts for t in range(s, e)]
        # lam as format 4 chooses it for the clip (the residuals' own entropy, predicted from the
        # source frames, put carphone's file 80% over budget: the decoded references are worse)
        lam = choose_clip_lambda(layout, part, latent_bits * share * AIM_ABOVE)
        cfg = LatentFitConfig(iters=iters if iters is not None else p.iters, lam=lam,
                              target_bits=latent_bits * share,
                              time_limit=None if limit is None else max(1.0, limit * share), seed=seed + i,
                              steer_range=STEER_RANGE)

        def refresh(synthesis, latents, _s=s, _e=e, _m=mot):
            return _decoded(header, synthesis, _s, _e, _m, latents)[0]

        pred = Prediction(start_pred, is_intra, frame_weights(header, s, e), refresh)

        def report(step, total, psnr, _s=done_steps, _g=i):
            if progress:
                progress(_s + step, _s + total + (len(spans) - 1 - _g) * total, psnr)

        fits.append(fit_clip(layout, part, cfg, report, pred))
        done_steps += fits[-1].iterations
    lam = float(np.mean([f.lam for f in fits]))

    bits = weight_bits(layout, clip, spans, fits, lam)

    def file_at(scale: float = 1.0, keep: float = 0.5) -> bytes:
        groups = []
        for (s, e), f, mot in zip(spans, fits, motions):
            kept = []
            for a, b in header.segment_spans():
                if s <= a < e:
                    kept += _kept(f.latents[a - s:b - s], keep)
            syn, ctx, frames_at = group_at(layout, f, kept, scale)
            groups.append((syn, ctx, mot, frames_at))
        return pack(header, groups, bits)

    return clip_encoding(_fit_clip_rate(file_at, target), fits, lam, bits)


def mode_counts(motions: list[GroupMotion]) -> dict[str, int]:
    modes = np.concatenate([m.modes for m in motions]) if motions else np.zeros(0)
    return {name: int(np.count_nonzero(modes == m)) for name, m in
            (("none", motion.NONE), ("global", motion.GLOBAL), ("field", motion.FIELD))}

