"""Overfitting an ASMR network to one signal: a float phase, then quantisation-aware
fine-tuning with straight-through rounding onto the step sizes the file will store.

The loss is computed in the blocked layout the last level produces (coarse cell, channel,
last-level digit), so the full-resolution output is never permuted during training;
padding samples carry zero weight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .architecture import Architecture
from .quantize import QuantConfig, choose_steps, fake_quant

Progress = Callable[[int, int, float], None]  # (step, total steps, PSNR so far)


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
    halo: float = 0.0  # opt-in: weight of resample.HaloTarget, for decoding off the grid


@dataclass
class FitResult:
    params: dict[str, np.ndarray]  # float32, before quantisation
    steps: dict[str, np.ndarray]   # quantisation step sizes (float32)
    iterations: int
    train_psnr: float
    seconds: float


def resolve_device(name: str) -> str:
    import torch

    from .errors import AsmrError

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise AsmrError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise AsmrError(f"--device {name}: expected auto, cpu or cuda")
    return name


def _blocked_target(arch: Architecture, target: np.ndarray, device: str):
    """Pad (C, *sizes) to the decomposition's grid and rearrange to (P, C, Q), with a
    matching weight mask (None when nothing is padded)."""
    import torch

    from .model import TORCH
    from .synthesis import to_blocked

    dec = arch.decomposition
    grid, bases = dec.grid(dec.levels - 2), dec.level_bases(dec.levels - 1)
    pad = [(0, 0)] + [(0, p - s) for s, p in zip(dec.sizes, dec.padded)]
    t = torch.from_numpy(np.pad(target, pad))
    blocked = to_blocked(TORCH, t, grid, bases).contiguous().to(device)
    if tuple(dec.sizes) == tuple(dec.padded):
        return blocked, None
    m = np.zeros((1, *dec.padded), np.float32)
    m[(slice(None),) + tuple(slice(0, s) for s in dec.sizes)] = 1.0
    mask = to_blocked(TORCH, torch.from_numpy(m), grid, bases).contiguous().to(device)
    return blocked, mask


def fit(arch: Architecture, target: np.ndarray, quant: QuantConfig, cfg: FitConfig,
        progress: Progress | None = None) -> FitResult:
    """target: (C, *sizes) float32 in [0, 1]."""
    import torch

    from .model import ASMR

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = ASMR(arch).to(cfg.device)
    tgt, mask = _blocked_target(arch, target, cfg.device)
    count = float(target.size)
    halo = None
    if cfg.halo:
        from .resample import HaloTarget

        halo = HaloTarget(arch, target, cfg.device)

    def loss_of(out):
        err = (out - tgt) ** 2
        return (err * mask).sum() / count if mask is not None else err.mean()

    total = max(1, cfg.iters)
    qat_steps = int(round(total * cfg.qat_fraction)) if total >= 10 else 0
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps: dict[str, np.ndarray] = {}
    transform = None
    step, mse = 0, 1.0
    timed = False
    loop_start = first_done = time.perf_counter()  # the time limit counts from here: set-up excluded
    while step < total:
        fp_steps = total - qat_steps
        if step == fp_steps and qat_steps:
            steps = {k: choose_steps(k, v.detach().cpu().numpy(), quant)
                     for k, v in model.named_tensors().items()}

            def transform(name, t, _s=steps):
                return fake_quant(t, _s[name])

            for g in opt.param_groups:
                g["lr"] = cfg.qat_lr
        elif step < fp_steps:
            frac = step / max(1, fp_steps)
            ratio = cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))
            warm = min(1.0, (step + 1) / 50)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * ratio * warm
        loss = loss_of(model.forward_blocked(transform))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if halo is not None:
            halo.backward(model, transform, cfg.halo)
        opt.step()
        step += 1
        if step % 10 == 0 or step == total:
            mse = float(loss.detach())
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
        steps = {k: choose_steps(k, v.detach().cpu().numpy(), quant)
                 for k, v in model.named_tensors().items()}
    params = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.named_tensors().items()}
    return FitResult(params, steps, step, _psnr(mse), time.perf_counter() - start)


def _psnr(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))
