"""An opt-in training term for decoding off the grid (`FitConfig.halo`): each block's
function is also fitted to the ring of pixels just outside the block, so that neighbouring
blocks' extensions agree in the gap between them, where `resample.point_taps` blends
them. Training code: torch is imported here, and no decode-side module imports this one."""

from __future__ import annotations

import numpy as np

from .architecture import Architecture
from .resample import block_digit


class HaloTarget:
    """The ring pixels around every finest block, as a (P, C, ring) target with a weight
    that is 0 where the ring leaves the image, and their normalised digits."""

    def __init__(self, arch: Architecture, target: np.ndarray, device: str):
        import torch

        dec = arch.decomposition
        bases = dec.level_bases(arch.levels - 1)
        grid = dec.grid(arch.levels - 2)
        ring = [np.arange(-1, b + 1) if b > 1 else np.zeros(1, np.int64) for b in bases]
        d = np.stack(np.meshgrid(*ring, indexing="ij"), -1).reshape(-1, len(bases))
        d = d[((d < 0) | (d >= np.array(bases))).any(axis=1)]  # (Qh, dims): the ring only
        self.coords = torch.from_numpy(np.stack(
            [block_digit(d[:, a].astype(np.float64), 0, b) for a, b in enumerate(bases)], -1)
            .astype(np.float32)).to(device)
        dims = len(bases)
        valid = np.ones((*grid, len(d)), bool)
        index = []
        for a, (g, b, n) in enumerate(zip(grid, bases, dec.sizes)):
            i = (np.arange(g).reshape([g if k == a else 1 for k in range(dims)] + [1]) * b
                 + d[:, a].reshape([1] * dims + [-1]))
            valid &= (i >= 0) & (i < n)
            index.append(np.clip(i, 0, n - 1))
        values = np.asarray(target, np.float32)[(slice(None), *index)]  # (C, *grid, Qh)
        values = np.moveaxis(values, 0, -2).reshape(-1, target.shape[0], len(d))
        self.target = torch.from_numpy(np.ascontiguousarray(values)).to(device)
        self.weight = torch.from_numpy(valid.reshape(-1, 1, len(d)).astype(np.float32)).to(device)
        self.count = float(target.size)

    def backward(self, model, transform, weight: float):
        """Accumulate weight * (ring loss) into the gradients; returns the ring loss."""
        from .model import TORCH
        from .synthesis import render_blocked

        p, coords = model._inputs(transform)
        out = render_blocked(TORCH, model.arch, p, coords[:-1] + [self.coords])
        loss = (((out - self.target) ** 2) * self.weight).sum() / self.count
        (weight * loss).backward()
        return loss.detach()
