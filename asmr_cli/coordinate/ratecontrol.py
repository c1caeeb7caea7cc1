"""Rate control of the coordinate network: a byte budget (core/rates.py) into an
architecture (width, latent grids), and the architecture's trained weights into
quantisation steps that fill the budget. Training length never decides the rate."""

from __future__ import annotations

import math

import numpy as np

from ..container.tensors import code_tensor, pack_tensor
from ..core.errors import AsmrError
from ..core.quantize import quantize, sensitivity_steps
from ..core.rates import Target

# Share of the budget spent on the hidden x hidden matrices (the rest: first layer,
# modulators, head, biases and any latent grids), and the bits a weight costs at the
# rates we aim for (kodim23 at 1.4 bpp, hidden 128: 6.5 bits a weight after entropy coding).
WEIGHT_SHARE = {False: 0.9, True: 0.6}  # keyed by "has latent grids"
BITS_PER_WEIGHT = 6.5
# the widths rate control picks (a file may declare up to format.MAX_HIDDEN)
MIN_AUTO_HIDDEN, MAX_AUTO_HIDDEN = 8, 192


def hidden_for(budget_bytes: int, levels: int, latent_dim: int = 0) -> int:
    """Width whose (levels - 2) hidden x hidden matrices take their share of the budget."""
    weights = WEIGHT_SHARE[latent_dim > 0] * budget_bytes * 8 / BITS_PER_WEIGHT
    hid = math.sqrt(weights / max(1, levels - 2))
    return int(min(MAX_AUTO_HIDDEN, max(MIN_AUTO_HIDDEN, 4 * round(hid / 4))))


MIN_BITS_PER_PARAM = 3.0  # below this a network is mostly zeros
# latent grids code in about a bit a value (a video's along time: 1.2 bits on carphone)
MIN_BITS_PER_LATENT = 1.0
TENSOR_OVERHEAD = 12      # bytes per tensor record besides its coded words (about)


def fit_budget(target: Target, file_overhead: int, arch) -> int:
    """Payload bytes to aim for. Tiny images cannot reach a low rate with any network:
    a rate or quality target is raised to the least that codes a usable network, a
    --size cap below that is refused."""
    shapes = arch.param_shapes()
    latents = sum(math.prod(s) for name, s in shapes if name.startswith("latent"))
    weights = arch.param_count() - latents
    least = (file_overhead + TENSOR_OVERHEAD * len(shapes)
             + int((weights * MIN_BITS_PER_PARAM + latents * MIN_BITS_PER_LATENT) / 8))
    if target.budget_bytes >= least:
        return target.budget_bytes - file_overhead
    if target.cap:
        raise AsmrError(f"--size {target.budget_bytes}: this image needs at least {least} bytes")
    return least - file_overhead


def coded_size(params: dict[str, np.ndarray], steps: dict[str, np.ndarray]) -> int:
    """Exact payload bytes for these steps (runs the entropy coder and the packer)."""
    return sum(len(pack_tensor(code_tensor(name, quantize(v, steps[name]), steps[name])))
               for name, v in params.items())


def search_steps(params: dict[str, np.ndarray], sens: dict[str, np.ndarray],
                 budget: int) -> tuple[dict[str, np.ndarray], int]:
    """The finest steps (smallest lam) whose payload fits in `budget` bytes."""
    # log2 lam. The sensitivities are mean squared gradients of a per-sample mean loss, so
    # they shrink with the signal's size: a whole clip needs lam far below an image's (a
    # bracket starting at 2^-30 left carphone's 0.25 bpp target at 0.21 bpp)
    lo, hi = -72.0, 10.0
    best = None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        steps = sensitivity_steps(params, sens, 2.0 ** mid)
        size = coded_size(params, steps)
        if size <= budget:
            best, hi = (steps, size), mid
        else:
            lo = mid
        if hi - lo < 0.005:
            break
    if best is None:
        steps = sensitivity_steps(params, sens, 2.0 ** hi)
        best = (steps, coded_size(params, steps))
    return best
