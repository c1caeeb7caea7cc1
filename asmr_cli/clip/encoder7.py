"""The clip encoder of format versions 7 and 9 (the header's class says which): budget ->
groups and segments -> motion (estimate.py, capped to a share of the bits) -> lam -> fit, each
group in coding order, with closed-loop predictions (fit.py) -> weights' precision ->
rate fitted to the target (encoder.py's dead zone) -> bytes.
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
LAYER_WEIGHT = 1.5  # format 9: a B frame's weight per temporal layer under it
SEARCH_MOTION = True  # False: every P frame predicted from the unmoved frame before (ablation)
FILTER = motion.BILINEAR
BLOCK: int | None = None  # the motion block side; None: block_for's rule
# motion takes at most this share of a group's bits: over it, the estimate is made again
# with a bit 4x dearer (at most MOTION_TRIES times). Without it format 9 at 0.025 bpp on
# carphone chose 21 fields (B frames 60 frames from their references) and left the latents
# nothing (docs/video.md)
MOTION_SHARE = 0.3
MOTION_TRIES = 4
# each group's lam is re-anchored on its measured rate at 10% of the steps (clip/fit.fit_clip),
# aiming at this x the target: the rate then as a share of the trained file's, measured on
# carphone 0:120 at 0.1 bpp, --preset fast (docs/video.md; format 4 is left as it was)
EARLY_RATE = 1.3


def period_for(group: int, bpp: float) -> int:
    """Frames from one intra frame to the next: PERIOD_AT_01 at 0.1 bpp and above, doubled for
    each halving of the rate below it (an intra frame costs about as much as a whole segment
    of P frames: at 0.025 bpp a carphone intra frame alone would be a third of the budget),
    at most the group."""
    period = PERIOD_AT_01 * 2 ** max(0, round(math.log2(0.1 / max(bpp, 1e-6))))
    return max(1, min(group, INTRA_PERIOD if INTRA_PERIOD is not None else period))


def frame_weights(header: MotionHeader, start: int, end: int) -> list[float]:
    """Each frame's distortion weight in training, in coding order: INTRA_WEIGHT on intra
    frames, 1 on P frames (weighting every frame by the frames predicted from it after it,
    1 + 0.25 x their count, measured worse: docs/video.md), and on a B frame LAYER_WEIGHT
    to the power of the layers under it in its segment (the leaves 1): Cool-chic's lam per
    temporal layer, a frame that more frames predict from weighted more."""
    plan = header.plan(start, end)
    depth: dict[int, int] = {}
    for t, refs in plan:
        depth[t] = 0 if not refs else 1 + max(depth.get(r, 0) for r in refs)
    out = []
    for t, refs in plan:
        if not refs:
            out.append(INTRA_WEIGHT)
        elif len(refs) == 1:
            out.append(1.0)
        else:
            leaves = max(depth[u] for u, r in plan if r and min(r) >= min(refs) and max(r) <= max(refs))
            out.append(LAYER_WEIGHT ** (leaves - depth[t]))
    return out


def block_for(height: int, width: int) -> int:
    """Motion block side: 8 pixels up to 2^17 pixels a frame, 16 up to 2^22 (4K), 32 above
    (format7.MAX_MOTION_VALUES bounds a group's vectors)."""
    if BLOCK is not None:
        return BLOCK
    return 8 if height * width <= 1 << 17 else 16 if height * width <= 1 << 22 else 32


def _group_motion(header: MotionHeader, frames8: np.ndarray, start: int, end: int, lam: float,
                  searched: dict | None = None) -> GroupMotion:
    """The group's motion at lam; `searched` (a dict kept across the tries of one group) holds
    the integer searches, which do not depend on lam (estimate.estimate)."""
    from .estimate import estimate, mu_for

    est = estimate(frames8, header.plan(start, end), header.block, header.filt, mu_for(lam, header.channels),
                   SEARCH_MOTION, searched)
    by, bx = motion.blocks_of(header.sizes[1], header.sizes[2], header.block)
    modes = np.array([m for m, _, _ in est], np.int32)
    vecs = [v for m, v, _ in est if m == motion.GLOBAL]
    fields = [f for m, _, f in est if m == motion.FIELD]
    return GroupMotion(modes, np.array(vecs, np.int32).reshape(-1, 2),
                       np.array(fields, np.int32).reshape(-1, by, bx, 2))


def _predictions(header: MotionHeader, start: int, end: int, mot: GroupMotion,
                 frame_of) -> tuple[np.ndarray, np.ndarray]:
    """The group in coding order as predicted and decoded: frame_of(i, t, pred) gives the
    frame at coding position i (t its frame number, pred its prediction (H, W, C) uint8 or
    None for an intra frame) as (H, W, C) uint8. Intra frames first (a B frame predicts from
    the next segment's), then the others in coding order. Returns (predictions (C, T, H, W)
    float32 on [0, 1], 0 on intra frames; frames (T, H, W, C) uint8), both in coding order."""
    lay = header.layout
    plan = header.plan(start, end)
    preds = np.zeros((lay.channels, len(plan), lay.height, lay.width), np.float32)
    frames = np.empty((len(plan), lay.height, lay.width, lay.channels), np.uint8)
    done: dict[int, np.ndarray] = {}
    slot = header.first_slots(start, end)
    for i, (t, refs) in enumerate(plan):
        if not refs:
            done[t] = frames[i] = frame_of(i, t, None)
    for i, (t, refs) in enumerate(plan):
        if refs:
            motions = [mot.of(slot[t] + j) for j in range(len(refs))]
            pred = motion.predict_from([done[r] for r in refs], motions, header.block, header.filt)
            preds[:, i] = np.moveaxis(pred, -1, 0) / np.float32(255.0)
            done[t] = frames[i] = frame_of(i, t, pred)
    return preds, frames


def _source_prediction(header: MotionHeader, frames8: np.ndarray, start: int, end: int,
                       mot: GroupMotion) -> np.ndarray:
    """(C, T, H, W) float32 in coding order: each predicted frame's prediction from the
    source frames (the training's first prediction), 0 on intra frames."""
    return _predictions(header, start, end, mot, lambda i, t, pred: frames8[t])[0]


def _decoded(header: MotionHeader, synthesis: dict, start: int, end: int, mot: GroupMotion,
             latents: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The group as the decoder would make it from these latents (per frame in coding order,
    per level) and float synthesis weights: (predictions (C, T, H, W) float32 on [0, 1],
    frames (T, H, W, C) uint8), in coding order."""
    lay = header.layout

    def frame_of(i: int, t: int, pred: np.ndarray | None) -> np.ndarray:
        return compose(np.nan_to_num(synthesize_numpy(lay, synthesis, latents[i])), pred)

    return _predictions(header, start, end, mot, frame_of)


def encode(clip: np.ndarray, header: MotionHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> ClipEncoding:
    """clip: (C, T, H, W) float32 on [0, 1]. Trains on the CPU."""
    from ..latent.fit import LatentFitConfig, bisect_lambda
    from .fit import Prediction, choose_clip_lambda, clip_rate_model, fit_clip

    layout = header.layout
    frames = header.frames
    spans = header.group_spans()
    order = np.array([t for s, e in spans for t, _ in header.plan(s, e)])  # coding order
    p = CLIP_PRESETS[preset]
    limit = time_limit if time_limit is not None else p.time_limit
    frames8 = np.clip(np.rint(np.moveaxis(clip, 0, -1) * 255.0), 0, 255).astype(np.uint8)
    nets = network_bytes(layout) * len(spans)
    rough = max(64.0 * len(spans), (target.budget_bytes - overhead(header) - nets) * 8)
    motions = []
    for s, e in spans:  # motion first: what it costs comes out of the latents' budget
        lam0 = choose_clip_lambda(layout, clip[:, s:e], rough * (e - s) / frames * AIM_ABOVE)
        searched: dict = {}
        mot = _group_motion(header, frames8, s, e, lam0, searched)
        for _ in range(MOTION_TRIES):  # at most MOTION_SHARE of the group's bits: bits dearer each try
            if _bytes(mot) * 8 <= MOTION_SHARE * rough * (e - s) / frames:
                break
            lam0 *= 4
            mot = _group_motion(header, frames8, s, e, lam0, searched)
        motions.append(mot)
    motion_bytes = sum(_bytes(m) for m in motions)
    latent_bits = max(64.0 * len(spans), (target.budget_bytes - overhead(header) - nets - motion_bytes) * 8)
    fits = []
    done_steps = 0
    for i, (s, e) in enumerate(spans):
        share = (e - s) / frames
        part = clip[:, order[s:e]]  # one group at a time in coding order (not a copy of the clip)
        mot = motions[i]
        start_pred = _source_prediction(header, frames8, s, e, mot)
        is_intra = [not refs for _, refs in header.plan(s, e)]
        # lam as format 4 chooses it for the clip (the residuals' own entropy, predicted from the
        # source frames, put carphone's file 80% over budget: the decoded references are worse)
        model = clip_rate_model(layout, clip[:, s:e], latent_bits * share * AIM_ABOVE)
        lam = bisect_lambda(model, latent_bits * share * AIM_ABOVE)
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

        fits.append(fit_clip(layout, part, cfg, report, pred, model, EARLY_RATE))
        done_steps += fits[-1].iterations
    lam = float(np.mean([f.lam for f in fits]))

    bits = weight_bits(layout, lambda i: clip[:, order[i]], frames, spans, fits, lam)

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


def _bytes(mot: GroupMotion) -> int:
    return sum(len(pack_tensor(t)) for t in motion_tensors(mot))


def mode_counts(motions: list[GroupMotion]) -> dict[str, int]:
    modes = np.concatenate([m.modes for m in motions]) if motions else np.zeros(0)
    return {name: int(np.count_nonzero(modes == m)) for name, m in
            (("none", motion.NONE), ("global", motion.GLOBAL), ("field", motion.FIELD), ("unused", motion.UNUSED))}

