"""The clip encoder of format version 4: budget -> groups of frames -> lam per group ->
fit (clip_fit) -> weights' precision -> rate fitted to the target -> bytes. Imports torch
(through clip_fit); the decoder never imports this module."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..container.tensors import pack_tensor
from ..core.presets import CLIP_PRESETS
from ..core.rates import Target
from ..latent.codec import WEIGHT_BITS_CHOICES, quantise_synthesis
from ..latent.encoder import layout_for, network_bytes, rescale
from ..latent.format import LatentHeader
from ..latent.latents import Layout, by_level, synthesize_numpy
from ..latent.ratefit import fit_rate
from .codec import pack_clip
from .format import overhead

GROUP_FRAMES = 128  # the most frames a group holds (a group's first frame has no temporal context)
GROUP_PIXELS = 1 << 25  # the most pixels a group holds: bounds the encoder's memory
CHECK_FRAMES = 8  # frames the weights' precision is judged on
# lam is chosen for a little more than the budget: pruning the latents one step from what
# their context expects costs little, while a file under the --bpp tolerance is rescaled,
# which costs much more
AIM_ABOVE = 1.05
# lam steered at most this factor from its start. With uniform noise the bit estimate of
# latents the temporal context predicts sharply is far above what the coder spends, so a
# clip steers by the rate of its rounded latents; late in the schedule the rate barely
# answers (carphone at 0.1 bpp: lam raised 10x in the rounding phase left the file at
# 67 KB, where that lam from the start gives 8 KB), so the noise phase steers too.
STEER_RANGE = 4.0


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


def encode(clip: np.ndarray, header: LatentHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> ClipEncoding:
    """clip: (C, T, H, W) float32 on [0, 1]. Trains on the CPU."""
    from ..latent.fit import LatentFitConfig
    from .fit import choose_clip_lambda, fit_clip

    layout = header.layout
    frames = header.frames
    spans = header.group_spans()
    p = CLIP_PRESETS[preset]
    limit = time_limit if time_limit is not None else p.time_limit
    nets = network_bytes(layout) * len(spans)
    latent_bits = max(64.0 * len(spans), (target.budget_bytes - overhead(header) - nets) * 8)
    fits = []
    done_steps = 0
    for i, (s, e) in enumerate(spans):
        share = (e - s) / frames
        part = clip[:, s:e]
        lam = choose_clip_lambda(layout, part, latent_bits * share * AIM_ABOVE)
        cfg = LatentFitConfig(iters=iters if iters is not None else p.iters, lam=lam,
                              target_bits=latent_bits * share,
                              time_limit=None if limit is None else max(1.0, limit * share), seed=seed + i,
                              steer_range=STEER_RANGE)

        def report(step, total, psnr, _s=done_steps, _g=i):
            if progress:
                progress(_s + step, _s + total + (len(spans) - 1 - _g) * total, psnr)

        fits.append(fit_clip(layout, part, cfg, report))
        done_steps += fits[-1].iterations
    lam = float(np.mean([f.lam for f in fits]))

    bits = weight_bits(layout, lambda t: clip[:, t], frames, spans, fits, lam)

    def file_at(scale: float = 1.0, keep: float = 0.5) -> bytes:
        return pack_clip(header, [group_at(layout, f, _kept(f.latents, keep), scale) for f in fits], bits)

    return clip_encoding(_fit_clip_rate(file_at, target), fits, lam, bits)


def group_at(layout, fit, frames: list[list[np.ndarray]], scale: float) -> tuple[dict, dict, list[list[np.ndarray]]]:
    """A group's networks and its frames' latents (per frame, Layout.grids() order) with the
    latents rescaled by `scale` (latent/encoder.rescale): (synthesis, context, frames)."""
    syn, ctx, lat = rescale(fit.synthesis, fit.context, [z for fr in frames for z in fr], scale)
    per = len(layout.grids())
    return syn, ctx, [lat[j:j + per] for j in range(0, len(lat), per)]


def clip_encoding(data: bytes, fits: list, lam: float, bits: int) -> ClipEncoding:
    """The encoder's result: the file, the steps of every group's fit, the ETA's estimate."""
    estimated = None
    if all(f.estimated_seconds is not None for f in fits):
        estimated = sum(f.estimated_seconds for f in fits)
    return ClipEncoding(data, sum(f.iterations for f in fits), lam, bits, estimated)


KEEP_MAX = 2.5  # the widest dead zone the rate fit tries (in quantisation steps)
RATE_TRIES = 6  # codings of the whole clip the rate fit may try
CLIP_CLOSE = 0.02  # ... stopping once the file is this close under the budget
KEEP_START = 0.55  # the first dead zone tried when the trained file is over budget
KEEP_STEP = 0.04  # ... bisected down to this width
BPP_SLACK = 0.04  # an explicit --bpp this close under is kept (--bpp promises 5%): no rescaling


def weight_bits(layout, frame_of, frames: int, spans: list[tuple[int, int]], fits: list, lam: float) -> int:
    """The synthesis weights' precision: the least distortion + lam * rate, on a few frames
    of each group (formats 7/9: each frame plus its last training prediction, 8-bit).
    frame_of(i): the source frame (C, H, W) float32 at position i of the groups' order."""
    n = frames * layout.height * layout.width
    best = None
    for bits in WEIGHT_BITS_CHOICES:
        err, size = 0.0, 0
        for (s, e), f in zip(spans, fits):
            tensors, weights = quantise_synthesis(layout, f.synthesis, bits)
            size += sum(len(pack_tensor(t)) for t in tensors)
            checked = np.unique(np.linspace(0, e - s - 1, min(CHECK_FRAMES, e - s)).astype(int))
            for t in checked:
                out = synthesize_numpy(layout, weights, [np.rint(z) for z in by_level(layout, f.latents[t])])
                if getattr(f, "prediction", None) is not None:
                    out = out + f.prediction[:, t] / np.float32(255.0)
                err += float(np.mean((np.clip(out, 0, 1) - frame_of(s + t)) ** 2)) * (e - s) / len(checked)
        score = err / frames + lam * size * 8 / n
        if best is None or score < best[0]:
            best = (score, bits)
    return best[1]


def _kept(frames: list[list[np.ndarray]], keep: float) -> list[list[np.ndarray]]:
    """The latents of a group with a dead zone around what the context expects: frame by
    frame, a latent within `keep` steps of the previous frame's (final) value takes that
    value, and on the group's first frame one within `keep` of 0 becomes 0. keep = 0.5 is
    plain rounding; wider zones cost a little distortion and save bits where the temporal
    context is sure. Frame after frame, so each frame sees its predecessor as coded."""
    if keep <= 0.5:
        return frames
    out, prev = [], None
    for frame in frames:
        goal = [np.zeros_like(z) for z in frame] if prev is None else prev
        cur = [np.where(np.abs(z - g) < keep, g, np.rint(z)) for z, g in zip(frame, goal)]
        out.append(cur)
        prev = cur
    return out


def _fit_clip_rate(file_at, target: Target) -> bytes:
    """The file as trained when it meets the target. Over budget: a dead zone (_kept) wide
    enough to fit, starting at KEEP_START (trained latents sit at the rounding boundaries,
    where a slightly wider zone saves most: docs/video.md) and bisected on its width (each
    try codes the whole clip, so at most RATE_TRIES tries, stopping within CLIP_CLOSE under
    the budget). Under an explicit --bpp by more than BPP_SLACK (inside the 5% --bpp
    promises), or over even at KEEP_MAX: the image encoder's rescaling, which costs more."""
    budget = target.budget_bytes
    file_at = _remembered(file_at)  # fit_rate starts from the widest zone's file, already coded
    data = file_at()
    if len(data) <= budget:
        if target.bpp is None or len(data) >= (1 - BPP_SLACK) * budget:
            return data
        return _rescaled(file_at, budget, data)
    k_lo, k_hi, best = 0.5, None, None
    first = file_at(keep=KEEP_START)
    if len(first) <= budget:
        k_hi, best = KEEP_START, first
    else:
        k_lo = KEEP_START
        widest = file_at(keep=KEEP_MAX)
        if len(widest) > budget:
            data, scale = fit_rate(lambda scale=1.0, prune=0: file_at(scale, KEEP_MAX), target, 0)
            if target.bpp is not None and len(data) < (1 - BPP_SLACK) * budget:
                # the rescaling met a jump in size (bikes' first group at fast: 273,280 bytes at
                # scale 0.7504, 257,236 at 0.7499 for 272,000): a narrower zone at that scale
                narrowed, _ = _narrowest(file_at, scale, 0.5, KEEP_MAX, data, budget)
                return max(narrowed, data, key=len)
            return data
        k_hi, best = KEEP_MAX, widest
    best, k_hi = _narrowest(file_at, 1.0, k_lo, k_hi, best, budget)
    if target.bpp is not None and len(best) < (1 - BPP_SLACK) * budget:
        # the size can jump with the zone's width (carphone_8f: 3,853 bytes at 0.5, 3,017 at
        # 0.515 for a 3,456 budget): the latents rescaled towards the budget from there
        return _rescaled(lambda scale=1.0, _k=k_hi: file_at(scale, _k), budget, best)
    return best


def _narrowest(file_at, scale: float, k_lo: float, k_hi: float, best: bytes, budget: int) -> tuple[bytes, float]:
    """The narrowest dead zone that fits (the least distortion) at this latent scale,
    bisected between k_lo (over the budget, or plain rounding) and k_hi (whose file, `best`,
    fits), at most RATE_TRIES codings: (its file, its width)."""
    for _ in range(RATE_TRIES):
        if k_hi - k_lo < KEEP_STEP:
            break
        k = 0.5 * (k_lo + k_hi)
        cand = file_at(scale, k)
        if len(cand) <= budget:
            best, k_hi = cand, k
        else:
            k_lo = k
    return best, k_hi


def _remembered(file_at):
    """file_at(scale, keep) coding the whole clip once per distinct (scale, keep)."""
    made: dict[tuple[float, float], bytes] = {}

    def at(scale: float = 1.0, keep: float = 0.5) -> bytes:
        key = (float(scale), float(keep))
        if key not in made:
            made[key] = file_at(scale, keep)
        return made[key]

    return at


def _rescaled(file_at, budget: int, data: bytes) -> bytes:
    """An explicit --bpp missed from below: the latents rescaled (finer steps) towards the
    budget, by the secant on log size against log scale, at most RATE_TRIES codings; the
    largest file under the budget (the trained one if none is)."""
    best = data
    x0, y0 = 0.0, math.log(len(data))
    x1 = 0.25
    goal = math.log((1 - CLIP_CLOSE / 2) * budget)
    for _ in range(RATE_TRIES):
        cand = file_at(math.exp(x1))
        y1 = math.log(len(cand))
        if len(cand) <= budget:
            best = cand if len(cand) > len(best) else best
            if len(cand) >= (1 - CLIP_CLOSE) * budget:
                break
        slope = (y1 - y0) / (x1 - x0) if x1 != x0 else 1.0
        x0, y0 = x1, y1
        x1 = x1 + (goal - y1) / max(slope, 0.1)
    return best
