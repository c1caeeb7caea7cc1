"""Overfitting an ASMR network to one signal: a float phase, then quantisation-aware
fine-tuning with straight-through rounding onto the step sizes the file will store.

The loss is computed in the blocked layout the last level produces (coarse cell, channel,
last-level digit), so the full-resolution output is never permuted during training;
padding samples carry zero weight.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.quantize import expand_steps, step_groups
from .architecture import Architecture

Progress = Callable[[int, int, float], None]  # (step, total steps, PSNR so far)
StepPolicy = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, np.ndarray]]


def fake_quant(t, steps):
    """Straight-through rounding of a torch tensor onto the step grid."""
    import torch

    s = torch.as_tensor(expand_steps(steps, tuple(t.shape)), dtype=t.dtype, device=t.device)
    return t + (torch.round(t / s) * s - t).detach()


@dataclass(frozen=True)
class FitConfig:
    iters: int = 2000
    lr: float = 1e-3
    final_lr_ratio: float = 0.05
    qat_fraction: float = 0.15
    qat_lr: float = 1e-4
    time_limit: float | None = None
    seed: int = 0
    device: str = "cpu"
    halo: float = 0.0  # opt-in: weight of halo.HaloTarget, for decoding off the grid
    # (name prefix, learning-rate multiplier): latent grids learn 10x faster than the
    # weights (docs/architecture.md#measured-constants)
    lr_scales: tuple[tuple[str, float], ...] = (("latent", 10.0),)


@dataclass
class FitResult:
    params: dict[str, np.ndarray]  # float32, before quantisation
    steps: dict[str, np.ndarray]   # quantisation step sizes (float32)
    sensitivity: dict[str, np.ndarray]  # mean squared gradient per step group
    iterations: int
    seconds: float


CHUNK_THRESHOLD = 1 << 22  # padded samples above which the last level trains in chunks
CHUNK_SAMPLES = 1 << 20    # samples per chunk of coarse cells


def _scatter_blocked(blocked: np.ndarray, raster: np.ndarray, grid: tuple[int, ...],
                     bases: tuple[int, ...]) -> None:
    """Write an unpadded (C, *sizes) raster into a (P, C, Q) blocked array in place: per
    axis, the whole coarse cells and the one partial cell at the edge, all through views
    (no padded or permuted copy of the raster)."""
    d, ch = len(grid), blocked.shape[1]
    view = blocked.reshape(*grid, ch, *bases).transpose(d, *[v for i in range(d) for v in (i, d + 1 + i)])
    parts = []
    for s, b in zip(raster.shape[1:], bases):
        full, rem = divmod(s, b)
        axis = [(slice(0, full), slice(None), slice(0, full * b), (full, b))] if full else []
        if rem:
            axis.append((slice(full, full + 1), slice(0, rem), slice(full * b, s), (1, rem)))
        parts.append(axis)
    for combo in itertools.product(*parts):
        dst = (slice(None),) + tuple(x for c in combo for x in c[:2])
        src = raster[(slice(None),) + tuple(c[2] for c in combo)]
        view[dst] = src.reshape(src.shape[0], *[n for c in combo for n in c[3]])


def _blocked_target(arch: Architecture, target: np.ndarray, device: str):
    """(C, *sizes) -> zero-padded (P, C, Q) float32, built in place, with a (P, 1, Q) bool
    mask of the real samples (None when nothing is padded)."""
    import torch

    dec = arch.decomposition
    grid, bases = dec.grid(dec.levels - 2), dec.level_bases(dec.levels - 1)
    shape = (math.prod(grid), target.shape[0], math.prod(bases))
    blocked = np.zeros(shape, np.float32)
    _scatter_blocked(blocked, np.asarray(target, np.float32), grid, bases)
    tgt = torch.from_numpy(blocked).to(device)
    if tuple(dec.sizes) == tuple(dec.padded):
        return tgt, None
    mask = np.zeros((shape[0], 1, shape[2]), bool)
    _scatter_blocked(mask, np.broadcast_to(np.True_, (1, *dec.sizes)), grid, bases)
    return tgt, torch.from_numpy(mask).to(device)


def _chunk_cells(arch: Architecture) -> int | None:
    """Coarse cells per chunk of the last level, or None to run it whole."""
    dec = arch.decomposition
    if math.prod(dec.padded) <= CHUNK_THRESHOLD:
        return None
    return max(1, CHUNK_SAMPLES // math.prod(dec.level_bases(dec.levels - 1)))


def _loss_backward(model, tgt, mask, count: float, transform=None, chunk_cells: int | None = None):
    """Loss over the whole padded grid; its exact gradient is accumulated into .grad.
    With `chunk_cells`, the coarse part runs once, its outputs become detached leaves, the
    last level and the loss run chunk by chunk of coarse cells (backward into the leaves),
    then one backward through the coarse part: full-batch gradient, bounded memory."""
    import torch

    from .model import TORCH
    from .synthesis import last_level

    def loss_of(out, lo=0, hi=None):
        err = (out - tgt[lo:hi]) ** 2
        return (err * mask[lo:hi] if mask is not None else err).sum() / count

    roots = model.forward_coarse(transform)
    if chunk_cells is None:
        loss = loss_of(last_level(TORCH, *roots))
        loss.backward()
        return loss.detach()
    leaves = [t.detach().requires_grad_() for t in roots]
    total = torch.zeros((), device=tgt.device)
    for lo in range(0, leaves[0].shape[0], chunk_cells):
        hi = lo + chunk_cells
        loss = loss_of(last_level(TORCH, leaves[0][lo:hi], *leaves[1:]), lo, hi)
        loss.backward()
        total += loss.detach()
    torch.autograd.backward(roots, [t.grad for t in leaves])
    return total


def fit(arch: Architecture, target: np.ndarray, step_policy: StepPolicy, cfg: FitConfig,
        progress: Progress | None = None) -> FitResult:
    """target: (C, *sizes) float32 in [0, 1]. `step_policy` picks the quantisation steps
    from the float weights and their loss sensitivities when fine-tuning starts."""
    import torch

    from .model import ASMR

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = ASMR(arch).to(cfg.device)
    tgt, mask = _blocked_target(arch, target, cfg.device)
    count = float(target.size)
    chunk_cells = _chunk_cells(arch)
    halo = None
    if cfg.halo:
        from .halo import HaloTarget

        halo = HaloTarget(arch, target, cfg.device)

    total = max(1, cfg.iters)
    qat_steps = int(round(total * cfg.qat_fraction)) if total >= 10 else 0
    opt = torch.optim.Adam(_param_groups(model, cfg.lr_scales), lr=cfg.lr)
    guard = _DivergenceGuard(model, opt)
    steps: dict[str, np.ndarray] = {}
    transform = None
    step, mse = 0, 1.0
    timed = False
    loop_start = first_done = time.perf_counter()  # the time limit counts from here: set-up excluded
    while step < total:
        fp_steps = total - qat_steps
        if step == fp_steps and qat_steps:
            sens = _sensitivity(model, opt)
            steps = step_policy(_numpy_params(model), sens)

            def transform(name, t, _s=steps):
                return fake_quant(t, _s[name])

            for g in opt.param_groups:
                g["lr"] = cfg.qat_lr * g["scale"]
        elif step < fp_steps:
            frac = step / max(1, fp_steps)
            ratio = cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
            warm = min(1.0, (step - guard.restarted_at + 1) / 50)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * guard.lr_factor * ratio * warm * g["scale"]
        opt.zero_grad(set_to_none=True)
        loss = _loss_backward(model, tgt, mask, count, transform, chunk_cells)
        if halo is not None:
            halo.backward(model, transform, cfg.halo)
        opt.step()
        step += 1
        if step % 10 == 0 or step == total:
            mse = float(loss.detach())
            if step < fp_steps:  # float phase only: fake quantisation raises the loss
                guard.check(mse, step)
            if progress:
                progress(step, total, _psnr(mse))
        if step == 1:
            first_done = time.perf_counter()  # the first step carries one-off costs (lazy imports)
        if cfg.time_limit and not timed and step == 10:
            # shrink the schedule to the time budget, keeping its shape
            timed = True
            per_step = (time.perf_counter() - first_done) / (step - 1)
            left = cfg.time_limit - (time.perf_counter() - loop_start)
            fit_in = step + int(max(0.0, left) * 0.9 / per_step)
            if fit_in < total:
                total = max(step + 1, fit_in)
                qat_steps = int(round(total * cfg.qat_fraction)) if total >= 20 else 0
                if step >= total - qat_steps:
                    qat_steps = 0
        if cfg.time_limit and time.perf_counter() - loop_start > cfg.time_limit:
            break  # steps got slower than measured (a busy machine): stop with what we have
    if not steps:
        sens = _sensitivity(model, opt)
        steps = step_policy(_numpy_params(model), sens)
    return FitResult(_numpy_params(model), steps, sens, step, time.perf_counter() - start)


class _DivergenceGuard:
    """Sine networks can blow up at a learning rate that suits most images
    (docs/architecture.md#measured-constants). The guard keeps the weights of the best loss seen so
    far; when the loss exceeds DIVERGED times that best (or is not finite), it restores
    them, clears Adam's moments, halves the learning rate and warms it up again."""

    DIVERGED = 4.0

    def __init__(self, model, opt):
        self.model, self.opt = model, opt
        self.best = math.inf
        self.snapshot: dict | None = None
        self.lr_factor = 1.0
        self.restarted_at = 0
        self.restarts = 0

    def check(self, mse: float, step: int) -> None:
        import torch

        tensors = self.model.named_tensors()
        if math.isfinite(mse) and mse <= self.DIVERGED * self.best:
            if mse < self.best:
                self.best = mse
                self.snapshot = {k: v.detach().clone() for k, v in tensors.items()}
            return
        if self.snapshot is None:
            return
        with torch.no_grad():
            for k, v in tensors.items():
                v.copy_(self.snapshot[k])
        self.opt.state.clear()
        self.lr_factor *= 0.5
        self.restarted_at = step
        self.restarts += 1


def _param_groups(model, scales: tuple[tuple[str, float], ...]) -> list[dict]:
    """One Adam group per learning-rate multiplier: a tensor takes the multiplier of the
    first prefix its name starts with, 1 otherwise."""
    groups: dict[float, list] = {}
    for name, p in model.named_tensors().items():
        scale = next((s for prefix, s in scales if name.startswith(prefix)), 1.0)
        groups.setdefault(scale, []).append(p)
    return [{"params": ps, "scale": s} for s, ps in groups.items()]


def _numpy_params(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.named_tensors().items()}


def _sensitivity(model, opt) -> dict[str, np.ndarray]:
    """Mean squared loss gradient per step group, from Adam's second-moment estimate. Right
    after the divergence guard cleared Adam's state (a time limit can stop training there)
    a tensor has no moments: its last squared gradient stands in, or 1 without a gradient."""
    out = {}
    for name, p in model.named_tensors().items():
        moment = opt.state.get(p, {}).get("exp_avg_sq")
        if moment is None:
            moment = p.grad ** 2 if p.grad is not None else None
        v = (np.ones(tuple(p.shape)) if moment is None
             else moment.detach().cpu().numpy().astype(np.float64))
        out[name] = v.reshape(step_groups(name, tuple(p.shape)), -1).mean(axis=1)
    return out


def _psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))
