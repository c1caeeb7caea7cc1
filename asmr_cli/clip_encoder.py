"""The clip encoder of format version 4: budget -> groups of frames -> lam per group ->
fit (clip_fit) -> weights' precision -> rate fitted to the target -> bytes. Imports torch
(through clip_fit); the decoder never imports this module."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import bitstream
from .clip_codec import pack_clip
from .image_encoder import _fit_rate, _prune_order, _pruned, layout_for, network_bytes, rescale
from .latent_codec import WEIGHT_BITS_CHOICES, quantise_synthesis
from .latents import Layout, by_level, synthesize_numpy
from .presets import CLIP_PRESETS
from .ratecontrol import Target

GROUP_FRAMES = 128  # the most frames a group holds (a group's first frame has no temporal context)
GROUP_PIXELS = 1 << 25  # the most pixels a group holds: bounds the encoder's memory
CHECK_FRAMES = 8  # frames the weights' precision is judged on


@dataclass
class ClipEncoding:
    data: bytes
    iterations: int
    lam: float
    weight_bits: int
    estimated_seconds: float | None


def group_size(frames: int, height: int, width: int) -> int:
    """Frames per group: as many as GROUP_FRAMES and GROUP_PIXELS allow, balanced."""
    most = max(1, min(GROUP_FRAMES, GROUP_PIXELS // (height * width)))
    groups = -(-frames // most)
    return -(-frames // groups)


def clip_layout(frames: int, height: int, width: int, channels: int, preset: str, hidden: int | None,
                levels: int | None) -> Layout:
    """A frame's layout; the networks' widths follow the pixels of a group, which shares them,
    and the context model keeps at least the two units that carry the previous frame's
    value (its starting point) when a group has more than one frame."""
    group = group_size(frames, height, width)
    lay = layout_for(height, width, channels, preset, hidden, levels, group * height * width, CLIP_PRESETS)
    if group > 1 and lay.context_hidden < 2:
        lay = replace(lay, context_hidden=2)
    return lay


def encode(clip: np.ndarray, header: bitstream.LatentHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> ClipEncoding:
    """clip: (C, T, H, W) float32 on [0, 1]. Trains on the CPU."""
    from .clip_fit import choose_clip_lambda, fit_clip
    from .latent_fit import LatentFitConfig

    layout = header.layout
    frames = header.frames
    spans = header.group_spans()
    p = CLIP_PRESETS[preset]
    limit = time_limit if time_limit is not None else p.time_limit
    nets = network_bytes(layout) * len(spans)
    latent_bits = max(64.0 * len(spans), (target.budget_bytes - bitstream.overhead(header) - nets) * 8)
    fits = []
    done_steps = 0
    for i, (s, e) in enumerate(spans):
        share = (e - s) / frames
        part = clip[:, s:e]
        lam = choose_clip_lambda(layout, part, latent_bits * share)
        cfg = LatentFitConfig(iters=iters if iters is not None else p.iters, lam=lam,
                              target_bits=latent_bits * share,
                              time_limit=None if limit is None else max(1.0, limit * share), seed=seed + i)

        def report(step, total, psnr, _s=done_steps, _g=i):
            if progress:
                progress(_s + step, _s + total + (len(spans) - 1 - _g) * total, psnr)

        fits.append(fit_clip(layout, part, cfg, report))
        done_steps += fits[-1].iterations
    n = frames * layout.height * layout.width
    lam = float(np.mean([f.lam for f in fits]))

    # the synthesis weights' precision: the least distortion + lam * rate, on a few frames
    best = None
    for bits in WEIGHT_BITS_CHOICES:
        err, size = 0.0, 0
        for (s, e), f in zip(spans, fits):
            tensors, weights = quantise_synthesis(layout, f.synthesis, bits)
            size += sum(len(bitstream.pack_tensor(t)) for t in tensors)
            for t in np.unique(np.linspace(0, e - s - 1, min(CHECK_FRAMES, e - s)).astype(int)):
                out = synthesize_numpy(layout, weights, [np.rint(z) for z in by_level(layout, f.latents[t])])
                err += float(np.mean((np.clip(out, 0, 1) - clip[:, s + t]) ** 2)) * (e - s) / min(CHECK_FRAMES, e - s)
        score = err / frames + lam * size * 8 / n
        if best is None or score < best[0]:
            best = (score, bits)
    bits = best[1]

    flat = [z for f in fits for frame in f.latents for z in frame]
    order = _prune_order(flat)
    per_frame = len(layout.grids())

    def file_at(scale: float = 1.0, prune: int = 0) -> bytes:
        pruned = _pruned(flat, order, prune)
        groups, k = [], 0
        for f in fits:
            count = len(f.latents) * per_frame
            syn, ctx, lat = rescale(f.synthesis, f.context, pruned[k:k + count], scale)
            k += count
            groups.append((syn, ctx, [lat[j:j + per_frame] for j in range(0, count, per_frame)]))
        return pack_clip(header, groups, bits)

    data, _ = _fit_rate(file_at, target, len(order[0]))
    estimated = None
    if all(f.estimated_seconds is not None for f in fits):
        estimated = sum(f.estimated_seconds for f in fits)
    return ClipEncoding(data, done_steps, lam, bits, estimated)


def group_count(frames: int, height: int, width: int) -> int:
    return math.ceil(frames / group_size(frames, height, width))
