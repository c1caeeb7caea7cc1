"""The image encoder of format version 3: budget -> lam -> fit the latent pyramid ->
weights' precision -> rate fitted to the target -> bytes. Imports torch (through
latent_fit); the decoder never imports this module."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..container.tensors import pack_tensor
from ..core.presets import LATENT_PRESETS
from ..core.rates import Target
from . import context_model as cm
from .codec import WEIGHT_BITS_CHOICES, pack, quantise_synthesis
from .format import MAX_SYNTH_HIDDEN, LatentHeader, overhead
from .latents import MAX_LEVELS, Layout, by_level, default_levels, synthesize_numpy
from .ratefit import fit_rate


@dataclass
class LatentEncoding:
    data: bytes
    iterations: int
    lam: float
    scale: float  # latent rescaling applied by the rate fit (1: none)
    weight_bits: int
    estimated_seconds: float | None
    unquantised: np.ndarray  # (C, H, W) float output before rounding the latents
    shown_steps: int = 0     # the progress's total: the fit's steps and the work after them, in steps


# The work after the fit, in units of one synthesis pass over the image (timed before the
# fit, synthesis_seconds): the float output, one pass per weight precision, the check decode
# (parse, context-model decode, synthesis), and PACK_PASSES per coding of the file. -q and
# --psnr code it once; a byte target's rate fit codes it again when the fit missed the
# rate (pruning by bisection), about RATE_FIT_CODINGS times. Measured on this machine
# (issue 22, docs/rate-distortion.md) on kodim04 (0.39 MP) and a 2.46 MP upscale of kodim19:
# a pass 0.17 / 1.0 s, a coding 0.3-0.4 / 2.0-3.5 s at 0.3-3.3 bpp, the check decode 0.68 /
# 3.7 s; the rate fit of a 1.28 bpp budget coded about 4 / 6 times, of --bpp 1.0 at 2.46 MP 8
# (about 2 + log2(what pruning spans / the 0.5% window) whatever the size, hence one
# constant). Refit when the context coder's speed changes.
SYNTHESIS_PASSES = 1 + len(WEIGHT_BITS_CHOICES)
CHECK_DECODE_PASSES = 3.9
PACK_PASSES = 2.7
RATE_FIT_CODINGS = 6.5


def synthesis_seconds(layout: Layout) -> float:
    """One synthesis pass over the whole image, timed on zero weights and latents (the
    cost does not depend on the values)."""
    weights = {name: np.zeros(shape, np.float32) for name, shape in layout.synthesis_shapes()}
    latents = [np.zeros((len(layout.planes(lv)), h, w), np.float32) for lv, (h, w) in enumerate(layout.shapes)]
    best = math.inf
    for _ in range(2):  # the first call's set-up (2.4x a pass at 2.5 MP) is not the pass's cost
        t = time.perf_counter()
        synthesize_numpy(layout, weights, latents)
        best = min(best, time.perf_counter() - t)
    return best


def post_fit_seconds(layout: Layout, one_pass: float, codings: float = 1.0, passes: int = 0) -> float:
    """The predicted seconds of the encode after the fit, from one synthesis pass's
    (`passes` more synthesis passes: --psnr's pruning)."""
    return one_pass * (SYNTHESIS_PASSES + passes + CHECK_DECODE_PASSES + codings * PACK_PASSES)


STEP_PASSES = 2.4  # a fast-preset training step in synthesis passes (2.6 at 0.39 MP, 2.1 at 2.46 MP)


def expected_steps(iters: int, time_limit: float | None, one_pass: float) -> int:
    """The steps a fit will get before its wall-clock cap, guessed before it starts."""
    if not time_limit:
        return iters
    return max(1, min(iters, int(time_limit / max(STEP_PASSES * one_pass, 1e-6))))


PSNR_PRUNE_TRIES = 10  # --psnr: synthesis passes of the bisection that prunes down to the target


def layout_for(height: int, width: int, channels: int, preset: str, hidden: int | None,
               levels: int | None, pixels: int | None = None, presets=LATENT_PRESETS, refine: int = 0) -> Layout:
    """An image's layout (a frame's, for a clip whose networks serve `pixels` pixels);
    refine: the refine stage's width (images: refine_width)."""
    from ..core.errors import AsmrError

    p = presets[preset]
    pixels = height * width if pixels is None else pixels
    lv = levels if levels is not None else default_levels(height, width, p.levels)
    most = max_levels(height, width)
    if not 1 <= lv <= most:
        raise AsmrError(f"--levels {lv}: expected 1..{most} for a {width}x{height} image")
    hid = hidden if hidden is not None else small_width(pixels, p.hidden)
    if not 0 <= hid <= MAX_SYNTH_HIDDEN:
        raise AsmrError(f"--hidden {hid}: expected 0..{MAX_SYNTH_HIDDEN}")
    return Layout(height, width, channels, lv, hid, context_width(pixels), refine)


# The synthesis's refine stage (format 8: two 3x3 convolutions, C -> REFINE -> C, 162 MAC a
# pixel for RGB) on images of REFINE_FROM pixels and more, where the synthesis has its full
# width; smaller images stay format 3 (docs/rate-distortion.md, "The refine stage").
REFINE, REFINE_FROM = 3, 1 << 18


def refine_width(pixels: int) -> int:
    return REFINE if pixels >= REFINE_FROM else 0


def max_levels(height: int, width: int) -> int:
    """Levels a header may declare: the coarsest grid keeps at least one cell."""
    return min(MAX_LEVELS, max(height, width).bit_length())


def small_width(pixels: int, width: int) -> int:
    """Networks narrow on small images, where their weights would outweigh the latents:
    the full width from 256K pixels, half from 32K, a quarter from 4K, and none below
    (the linear synthesis and a static Laplace per grid)."""
    if pixels >= 1 << 18:
        return width
    if pixels >= 1 << 15:
        return max(1, width // 2)
    return max(1, width // 4) if pixels >= 1 << 12 else 0


def context_width(pixels: int) -> int:
    return small_width(pixels, cm.CTX_HIDDEN)


def network_bytes(layout: Layout) -> int:
    """A rough size of the coded networks (synthesis and context model), for the budget."""
    params = sum(math.prod(s) for _, s in layout.synthesis_shapes())
    params += sum(math.prod(s) for _, s in cm.parameter_shapes(len(layout.grids()), layout.context_hidden))
    return int(params * 1.1) + 8 * len(layout.grids())


# The image fit's recipe (LatentFitConfig fields) on top of the defaults that the clip and
# collection fits keep: window steps, soft rounding annealed 0.3 -> 0.1, true rounding for
# the last 15% of the steps, lam steered from a quarter of the steps on (within 6x of its
# start, aiming 5% over the rate so that the rate fit prunes rather than rescales). Chosen
# at equal wall time on centre crops of kodim05, 19 and 23 (docs/rate-distortion.md). The
# networks start from the learned start where their widths match (start.py: images of 256K
# pixels and more), measured on the whole kodim05, 19 and 23; the latents' learning rate
# (three times the clips') on the whole kodim05 and 19 at the default preset; the steering's
# range (6x, was 3x: lam ended at the bound and the file took the rescaling) on the whole
# kodim03, 05, 08 and 19.
IMAGE_RECIPE: dict = {"soft_rounding": True, "ste_fraction": 0.15, "steer_from": 0.25, "steer_range": 6.0,
                      "steer_aim": 1.05, "steer_memory": 0.95, "keep_finish": True, "learned_start": True,
                      "steer_every": 5, "windows": 2,  # windows: steps in pairs (window_fit.py)
                      "latent_lr": 0.03}
# what images under REFINE_FROM pixels keep: the latent learning rate of 0.03 was measured
# on Kodak images; on the README sample (192x128, 3,000 steps under the visit cap) it gave
# 32.60 dB at 1.433 bpp against 33.57 at 1.274 with 0.01 (docs/rate-distortion.md)
SMALL_RECIPE: dict = {"latent_lr": 0.01}
# what photos of LARGE_FROM pixels and more take instead (their pixels are trained in far
# fewer windows in the preset's time); chosen at 3.4 MP, even with 0.03 on Kodak images
# (docs/rate-distortion.md, "Large photos")
LARGE_RECIPE: dict = {"latent_lr": 0.05}
LARGE_FROM = 1 << 20
# a step's window: a 24th of the image, at least 2^14 pixels (what the crops were tuned at,
# and a Kodak image's 24th) and at most 2^18 (larger windows waste less of a step on its
# fixed cost, so a large photo's pixels get more visits in the same time)
WINDOW_SHARE, WINDOW_MIN, WINDOW_MAX = 24, 1 << 14, 1 << 18
# a preset trains a pixel at most this many times (window steps that cover it): past it a
# small image got worse in rate and quality alike (fitted on samples/kodim23_small.png,
# docs/rate-distortion.md); a Kodak image at the default preset stays far under it
MAX_VISITS = 2000


def recipe_for(pixels: int) -> dict:
    """The image recipe (LatentFitConfig fields) for an image of this many pixels."""
    recipe = dict(IMAGE_RECIPE, window_pixels=window_pixels(pixels))
    if pixels < REFINE_FROM:
        recipe.update(SMALL_RECIPE)
    elif pixels >= LARGE_FROM:
        recipe.update(LARGE_RECIPE)
    return recipe


def window_pixels(pixels: int) -> int:
    return int(min(WINDOW_MAX, max(WINDOW_MIN, pixels // WINDOW_SHARE)))


def visit_cap(pixels: int) -> int:
    """The most steps a preset gives an image of this many pixels (MAX_VISITS per pixel)."""
    return max(1, int(MAX_VISITS * pixels / min(pixels, window_pixels(pixels))))


def encode(image: np.ndarray, header: LatentHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None, started: float | None = None,
           device: str = "cpu", recipe: dict | None = None) -> LatentEncoding:
    """image: (C, H, W) float32 on [0, 1]; started: when the encode began (for the estimate
    of its seconds); device: where the fit trains (the coding stays on the CPU). A byte
    target: lam chosen for the budget and steered to it, then the rate fit; -q: lam as
    given, coded once; --psnr: lam from the starting pyramid's error and steered to the
    target's, coded once. recipe: LatentFitConfig fields instead of IMAGE_RECIPE (ablations)."""
    from .fit import LatentFitConfig, choose_lambda, choose_lambda_for_psnr, fit_latents, training_mse

    started = time.perf_counter() if started is None else started
    layout = header.layout
    n = layout.height * layout.width
    p = LATENT_PRESETS[preset]
    budget = target.budget_bytes
    latent_bits = target_mse = None
    steps = iters if iters is not None else p.iters
    if iters is None and recipe is None:
        steps = min(steps, visit_cap(n))
    limit = time_limit if time_limit is not None else p.time_limit
    one_pass = synthesis_seconds(layout)
    if budget is not None:
        latent_bits = max(64.0, (budget - overhead(header) - network_bytes(layout)) * 8)
        lam = choose_lambda(layout, image, latent_bits)
    elif target.psnr is not None:
        target_mse = training_mse(target.psnr, header.bit_depth)
        lam = choose_lambda_for_psnr(layout, image, target_mse, expected_steps(steps, limit, one_pass))
    else:
        lam = float(target.lam)
    if recipe is None:
        recipe = recipe_for(n)
    cfg = LatentFitConfig(iters=steps, lam=lam, target_bits=latent_bits, time_limit=limit, seed=seed,
                          target_mse=target_mse, **recipe)
    codings = RATE_FIT_CODINGS if budget is not None else 1.0
    passes = 0 if target_mse is None else PSNR_PRUNE_TRIES

    def after(per_step: float) -> float:  # one pass: the probe's, or the steps' if faster (load spikes inflate both)
        if cfg.window_pixels:  # a window step's cost says nothing about a pass over the whole image
            return post_fit_seconds(layout, one_pass, codings, passes)
        return post_fit_seconds(layout, min(one_pass, per_step / STEP_PASSES), codings, passes)

    result = fit_latents(layout, image, cfg, progress, started, after, ESTIMATE_AT, device)
    shown = result.iterations + result.post_steps
    levels = by_level(layout, result.latents)
    unquantised = synthesize_numpy(layout, result.synthesis, levels)

    def distortion(weights: dict[str, np.ndarray], latents: list[np.ndarray]) -> float:
        out = synthesize_numpy(layout, weights, [np.rint(z) for z in latents])
        return float(np.mean((np.clip(out, 0, 1) - image) ** 2))

    # the synthesis weights' precision: the least distortion + lam * rate
    best = None
    for bits in WEIGHT_BITS_CHOICES:
        tensors, weights = quantise_synthesis(layout, result.synthesis, bits)
        size = sum(len(pack_tensor(t)) for t in tensors)
        mse = distortion(weights, levels)
        score = mse + result.lam * size * 8 / n
        if best is None or score < best[0]:
            best = (score, bits, mse, weights)
    bits = best[1]
    if progress:
        progress(result.iterations + result.post_steps // 4, shown, 10 * math.log10(1 / max(best[2], 1e-12)))

    order = _prune_order(result.latents)

    def file_at(scale: float = 1.0, prune: int = 0) -> bytes:
        syn, ctx, lat = rescale(result.synthesis, result.context, _pruned(result.latents, order, prune), scale)
        return pack(header, syn, ctx, lat, bits)

    if budget is None:  # a quality target: the file as trained, coded once
        prune = 0 if target.psnr is None else prune_to_psnr(layout, image, best[3], result.latents, order,
                                                             target.psnr, header.bit_depth)
        data, scale = file_at(prune=prune), 1.0
    else:
        data, scale = fit_rate(file_at, target, len(order[0]))
    return LatentEncoding(data, result.iterations, result.lam, scale, bits, result.estimated_seconds, unquantised,
                          shown)


PSNR_PRUNE_MARGIN = 0.05  # dB: --psnr prunes down to this much above the target


def prune_to_psnr(layout: Layout, image: np.ndarray, weights: dict[str, np.ndarray], latents: list[np.ndarray],
                  order: tuple[np.ndarray, np.ndarray], psnr: float, bit_depth: int) -> int:
    """--psnr: how many of the weakest +-1 latents to drop to 0 (fewer bits, more error)
    so that a fit that came out above the target lands just above it (the output rounded
    to bit_depth bits, as the file decodes): bisection, PSNR_PRUNE_TRIES passes at most.
    0 when the fit is at or under the target (nothing to gain)."""
    peak = (1 << bit_depth) - 1
    reference = np.rint(np.clip(image, 0, 1) * peak) / peak

    def quality(count: int) -> float:
        out = synthesize_numpy(layout, weights, [np.rint(z) for z in by_level(layout, _pruned(latents, order, count))])
        mse = float(np.mean((np.rint(np.clip(out, 0, 1) * peak) / peak - reference) ** 2))
        return 10 * math.log10(1 / max(mse, 1e-12))

    goal = psnr + PSNR_PRUNE_MARGIN
    if not len(order[0]) or quality(0) <= goal:
        return 0
    lo, hi = 0, len(order[0])  # quality(lo) > goal
    for _ in range(PSNR_PRUNE_TRIES - 1):
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        if quality(mid) > goal:
            lo = mid
        else:
            hi = mid
    return lo


ESTIMATE_AT = 3  # the step of the first estimate of the encode's seconds (about 3-5% of a fast encode)


def rescale(synthesis: dict[str, np.ndarray], context: dict[str, np.ndarray], latents: list[np.ndarray],
            scale: float):
    """The same model with latents `scale` times larger (finer steps when > 1): the
    modulators shrink by as much, and the context model's inputs, means and scales follow,
    so only the rounding changes."""
    if scale == 1.0:
        return synthesis, context, latents
    syn = {k: (v / scale if k.startswith("mod") else v) for k, v in synthesis.items()}
    ctx = dict(context)
    w1 = context["c_w1"] / scale
    flags = list(cm.flag_inputs(w1.shape[1] > cm.CTX_INPUTS))
    w1[:, flags] = context["c_w1"][:, flags]  # the flags are 0 or 1 at any scale
    ctx["c_w1"] = w1
    w3, b3, grid = context["c_w3"].copy(), context["c_b3"].copy(), context["c_grid"].copy()
    w3[0] *= scale
    b3[0] *= scale
    b3[1] += math.log(scale)
    grid[:, 0] *= scale
    ctx.update(c_w3=w3, c_b3=b3, c_grid=grid)
    return syn, ctx, [z * scale for z in latents]


def _prune_order(latents: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The latents that round to +-1, as (grid, flat index), weakest first: dropping one
    to 0 saves a few bits for about a quantisation step's error."""
    grid, index, weight = [], [], []
    for k, z in enumerate(latents):
        flat = z.ravel()
        ones = np.flatnonzero(np.abs(np.rint(flat)) == 1)
        grid.append(np.full(ones.size, k))
        index.append(ones)
        weight.append(np.abs(flat[ones]))
    order = np.argsort(np.concatenate(weight), kind="stable")
    return np.concatenate(grid)[order], np.concatenate(index)[order]


def _pruned(latents: list[np.ndarray], order: tuple[np.ndarray, np.ndarray], count: int) -> list[np.ndarray]:
    if count == 0:
        return latents
    out = [z.copy() for z in latents]
    for k in np.unique(order[0][:count]):
        pick = order[1][:count][order[0][:count] == k]
        out[k].reshape(-1)[pick] = 0.0
    return out
