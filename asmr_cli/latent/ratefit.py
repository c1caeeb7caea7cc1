"""The rate fit every latent encoder ends with: a trained model coded again, pruned or
rescaled, until the file meets the target. It asks the family's coder for a whole file
at a (scale, prune) setting through one callable, and never re-enters the container."""

from __future__ import annotations

import math

from ..core.errors import AsmrError
from ..core.rates import Target

RATE_TOLERANCE = 0.03  # --bpp: the latents are rescaled when the file is further off than this
CLOSE_ENOUGH = 0.005  # pruning stops once the file is this close under the budget
SCALE_RESOLUTION = 0.01  # log(scale): how finely the least rescaling that meets --bpp is sought


def fit_rate(file_at, target: Target, prunable: int) -> tuple[bytes, float]:
    """The file as trained when it meets the target (the fit steers lam towards it).
    Over budget: the weakest +-1 latents dropped to 0, as few as needed (bisection).
    Failing that, or an explicit --bpp missed from below by more than RATE_TOLERANCE, the
    latents rescaled (bisection on log(scale); this requantises them, which costs
    quality: from below, the least scale that meets the rate). --size and -q never over,
    --bpp within RATE_TOLERANCE."""
    budget = target.budget_bytes
    data = file_at()
    explicit = target.bpp is not None

    def ok(size: int) -> bool:
        if size > budget:
            return False
        return not explicit or size >= (1 - RATE_TOLERANCE) * budget

    if ok(len(data)):
        return data, 1.0
    if len(data) > budget and prunable and len(file_at(prune=prunable)) <= budget:
        lo, hi = 0, prunable
        while hi - lo > 1:
            mid = (lo + hi) // 2
            cand = file_at(prune=mid)
            if len(cand) <= budget:
                if len(cand) >= (1 - CLOSE_ENOUGH) * budget:  # each try codes the whole file again
                    return cand, 1.0
                hi = mid
            else:
                lo = mid
        return file_at(prune=hi), 1.0
    over = len(data) > budget
    lo, hi = (-4.0, 0.0) if over else (0.0, 2.0)
    best = (data, 1.0) if not over else None
    found = None  # under the budget from below: the least scale that meets the rate (every
    # change of scale requantises latents, so the least one costs the least quality)
    for _ in range(14):
        mid = (lo + hi) / 2
        cand = file_at(math.exp(mid))
        if len(cand) <= budget:
            if best is None or len(cand) > len(best[0]) or len(best[0]) > budget:
                best = (cand, math.exp(mid))
            if ok(len(cand)):
                if over:
                    return cand, math.exp(mid)
                found, hi = (cand, math.exp(mid)), mid
            else:
                lo = mid
        else:
            hi = mid
        if found is not None and hi - lo < SCALE_RESOLUTION:
            break
    if found is not None:
        return found
    if best is None:  # even the coarsest rescaling is over budget: the networks alone are
        smallest = file_at(math.exp(-4.0))
        if target.cap:
            raise AsmrError(f"--size {budget}: too small for this image; the smallest file would be "
                            f"{len(smallest)} bytes")
        return smallest, math.exp(-4.0)
    return best
