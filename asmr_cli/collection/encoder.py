"""The collection encoder of format 5: budget -> lam -> one fit of the shared networks
and every member's latents (collection/fit.py) -> weights' precision -> rate fitted to the
target over the whole collection -> bytes. Also the fast path that adds a member against
a collection's frozen networks. Imports torch (through fit); the decoder never imports it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..container.tensors import pack_tensor
from ..core.presets import LatentPreset
from ..core.rates import Target
from ..latent import context_model as cm
from ..latent.codec import WEIGHT_BITS_CHOICES, quantise_synthesis
from ..latent.encoder import _prune_order, _pruned, network_bytes, rescale, small_width
from ..latent.latents import by_level, default_levels, synthesize_numpy
from ..latent.ratefit import fit_rate
from . import codec
from .format import CollectionHeader

# effort: the steps are counted in visits of each member (a step trains about
# fit.BATCH_PIXELS pixels), capped by a wall-clock limit
COLLECTION_PRESETS: dict[str, LatentPreset] = {
    "fast": LatentPreset(iters=150, time_limit=60),
    "default": LatentPreset(iters=400, time_limit=240),
    "high": LatentPreset(iters=1200, time_limit=900),
}
MEMBER_BYTES = 6  # a rough cost of a member's stream end and index entry, for the budget
CHECK_MEMBERS = 16  # members the weights' precision is judged on
# lam is steered a little above the budget: the rate fit then drops the weakest +-1
# latents to land under it (a smooth control), where rescaling trained latents jumps (12
# 64x64 tiles at --bpp 1: 96.4% of the budget unscaled, 121% at a scale of 1.05)
AIM_ABOVE = 1.04
ADD_SECONDS = 6.0  # --into: the fit's wall-clock cap (the target: a 64x64 image within 10 s)


@dataclass
class CollectionEncoding:
    data: bytes
    iterations: int
    lam: float
    weight_bits: int
    scale: float


def collection_layout(sizes: list[tuple[int, int]], channels: int, preset: str, hidden: int | None,
                      levels: int | None) -> tuple[int, int, int]:
    """(levels, hidden, context hidden): the pyramid as deep as the smallest member allows,
    the networks as wide as the pixels of the whole set (latent/encoder.small_width)."""
    from ..core.errors import AsmrError
    from ..latent.context_model import CTX_HIDDEN
    from ..latent.format import MAX_SYNTH_HIDDEN

    p = COLLECTION_PRESETS[preset]
    pixels = sum(h * w for h, w in sizes)
    most = min(default_levels(h, w, p.levels) for h, w in sizes)
    lv = levels if levels is not None else most
    smallest = min(max(h, w) for h, w in sizes)
    if not 1 <= lv <= min(8, smallest.bit_length()):
        raise AsmrError(f"--levels {lv}: expected 1..{min(8, smallest.bit_length())} for these members")
    hid = hidden if hidden is not None else small_width(pixels, p.hidden)
    if not 0 <= hid <= MAX_SYNTH_HIDDEN:
        raise AsmrError(f"--hidden {hid}: expected 0..{MAX_SYNTH_HIDDEN}")
    return lv, hid, small_width(pixels, CTX_HIDDEN)


def steps_for(preset: str, pixels: int) -> int:
    from .fit import BATCH_PIXELS

    return max(50, int(COLLECTION_PRESETS[preset].iters * max(1.0, pixels / BATCH_PIXELS)))


def encode(images: list[np.ndarray], header: CollectionHeader, target: Target, preset: str, iters: int | None,
           time_limit: float | None, seed: int, progress=None) -> CollectionEncoding:
    """images: per member (C, H, W) float32 on [0, 1], in header.members' order."""
    from ..latent.fit import LatentFitConfig
    from .fit import choose_lambda, fit_collection

    layouts = [header.layout(m.height, m.width) for m in header.members]
    ref = header.net_layout
    pixels = sum(lay.height * lay.width for lay in layouts)
    p = COLLECTION_PRESETS[preset]
    overhead = 64 + MEMBER_BYTES * len(layouts) + sum(len(m.name) for m in header.members) // 3
    latent_bits = max(64.0 * len(layouts), (target.budget_bytes - overhead - network_bytes(ref)) * 8)
    lam = choose_lambda(ref, layouts, images, latent_bits)
    cfg = LatentFitConfig(iters=iters if iters is not None else steps_for(preset, pixels), lam=lam,
                          target_bits=latent_bits * AIM_ABOVE,
                          time_limit=time_limit if time_limit is not None else p.time_limit, seed=seed)
    fit = fit_collection(ref, layouts, images, cfg, progress)

    checked = np.unique(np.linspace(0, len(images) - 1, min(CHECK_MEMBERS, len(images))).astype(int))
    best = None
    for bits in WEIGHT_BITS_CHOICES:
        tensors, weights = quantise_synthesis(ref, fit.synthesis, bits)
        size = sum(len(pack_tensor(t)) for t in tensors)
        err = 0.0
        for i in checked:
            lay = layouts[i]
            out = synthesize_numpy(lay, weights, [np.rint(z) for z in by_level(lay, fit.latents[i])])
            err += float(np.mean((np.clip(out, 0, 1) - images[i]) ** 2)) * lay.height * lay.width
        err *= pixels / sum(layouts[i].height * layouts[i].width for i in checked) / pixels
        score = err + fit.lam * size * 8 / pixels
        if best is None or score < best[0]:
            best = (score, bits)
    bits = best[1]
    counts = [len(z) for z in fit.latents]
    flat = [z for member in fit.latents for z in member]
    order = _prune_order(flat)

    def file_at(scale: float = 1.0, prune: int = 0) -> bytes:
        syn, ctx, lat = rescale(fit.synthesis, fit.context, _pruned(flat, order, prune), scale)
        members, k = [], 0
        for n in counts:
            members.append(lat[k:k + n])
            k += n
        return codec.pack(header, syn, ctx, members, bits)

    data, scale = fit_rate(file_at, target, len(order[0]))
    return CollectionEncoding(data, fit.iterations, fit.lam, bits, scale)


def fit_member(c: codec.Collection, image: np.ndarray, seed: int, iters: int | None, time_limit: float | None,
               preset: str) -> tuple[list[np.ndarray], int]:
    """A new member's latents against the collection's frozen networks, at about the
    collection's rate (its streams' bits per pixel): (float grids, steps)."""
    from ..latent.fit import LatentFitConfig
    from .fit import choose_lambda, fit_collection

    h = c.header
    lay = h.layout(image.shape[1], image.shape[2])
    pixels = sum(m.height * m.width for m in h.members)
    bpp = 32.0 * sum(m.words for m in h.members) / max(1, pixels)
    target_bits = max(64.0, bpp * lay.height * lay.width)
    lam = choose_lambda(h.net_layout, [lay], [image], target_bits)
    context = {k: np.asarray(v, np.float32) / float(1 << cm.WEIGHT_BITS) for k, v in c.context.items()}
    cfg = LatentFitConfig(iters=iters if iters is not None else COLLECTION_PRESETS[preset].iters, lam=lam,
                          target_bits=target_bits, time_limit=time_limit if time_limit is not None else ADD_SECONDS,
                          seed=seed)
    fit = fit_collection(h.net_layout, [lay], [image], cfg, frozen=(c.synthesis, context))
    return fit.latents[0], fit.iterations
