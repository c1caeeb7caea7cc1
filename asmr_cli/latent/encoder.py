"""The image encoder of format version 3: budget -> lam -> fit the latent pyramid ->
weights' precision -> rate fitted to the target -> bytes. Imports torch (through
latent_fit); the decoder never imports this module."""

from __future__ import annotations

import math
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


def layout_for(height: int, width: int, channels: int, preset: str, hidden: int | None,
               levels: int | None, pixels: int | None = None, presets=LATENT_PRESETS) -> Layout:
    """An image's layout (a frame's, for a clip whose networks serve `pixels` pixels)."""
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
    return Layout(height, width, channels, lv, hid, context_width(pixels))


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


def encode(image: np.ndarray, header: LatentHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> LatentEncoding:
    """image: (C, H, W) float32 on [0, 1]. Trains on the CPU (the device option is not
    wired into the latent fit yet)."""
    from .fit import LatentFitConfig, choose_lambda, fit_latents

    layout = header.layout
    n = layout.height * layout.width
    p = LATENT_PRESETS[preset]
    budget = target.budget_bytes
    latent_bits = max(64.0, (budget - overhead(header) - network_bytes(layout)) * 8)
    cfg = LatentFitConfig(iters=iters if iters is not None else p.iters,
                          lam=choose_lambda(layout, image, latent_bits), target_bits=latent_bits,
                          time_limit=time_limit if time_limit is not None else p.time_limit,
                          seed=seed)
    result = fit_latents(layout, image, cfg, progress)
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
        score = distortion(weights, levels) + result.lam * size * 8 / n
        if best is None or score < best[0]:
            best = (score, bits)
    bits = best[1]

    order = _prune_order(result.latents)

    def file_at(scale: float = 1.0, prune: int = 0) -> bytes:
        syn, ctx, lat = rescale(result.synthesis, result.context, _pruned(result.latents, order, prune), scale)
        return pack(header, syn, ctx, lat, bits)

    data, scale = fit_rate(file_at, target, len(order[0]))
    return LatentEncoding(data, result.iterations, result.lam, scale, bits, result.estimated_seconds, unquantised)


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
