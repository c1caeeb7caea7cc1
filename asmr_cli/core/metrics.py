"""Quality measures: PSNR and SSIM (MACs per pixel are each family's own count)."""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two integer rasters of the same shape."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(peak * peak / mse)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, 'valid' region only, via summed-area tables."""
    s = np.pad(x, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    k = 2 * r + 1
    return (s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k]) / (k * k)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (7x7 uniform window, as scikit-image's default), averaged over channels.
    a, b: (H, W, C). Images smaller than the window fall back to a global window."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    h, w = a.shape[:2]
    r = min(3, (min(h, w) - 1) // 2)
    vals = []
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        if r < 1:
            mx, my = x.mean(), y.mean()
            vx, vy, cov = x.var(), y.var(), ((x - mx) * (y - my)).mean()
        else:
            n = (2 * r + 1) ** 2
            corr = n / (n - 1)  # sample covariance, as scikit-image
            mx, my = _box(x, r), _box(y, r)
            vx = (_box(x * x, r) - mx * mx) * corr
            vy = (_box(y * y, r) - my * my) * corr
            cov = (_box(x * y, r) - mx * my) * corr
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        vals.append(float(np.mean(s)))
    return float(np.mean(vals))
