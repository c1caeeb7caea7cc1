"""A fit's steps: learning-rate decay, the rounding phase, lam steered towards the rate,
the time estimate and the wall-clock cap. Shared by the image and clip fits (the clip
recipe reuses it: a change here moves both)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

Progress = Callable[[int, int, float], None]


class Schedule:
    """A fit's steps: the learning rate's cosine decay, the rounding phase, lam steered
    towards the target rate while rounding, the estimate of the total time at step 10
    and the wall-clock cap (the schedule shrinks to fit it)."""

    def __init__(self, cfg, start: float):
        """cfg: a fit.LatentFitConfig (iters, lam, target_bits, time_limit, the rates' schedule)."""
        self.cfg, self.start = cfg, start
        self.total = max(1, cfg.iters)
        self.lam = cfg.lam
        self.rate: float | None = None
        self.estimated: float | None = None
        self.loop_start = time.perf_counter()

    def lr_ratio(self, step: int) -> float:
        r = self.cfg.final_lr_ratio
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * step / self.total))

    def hard(self, step: int) -> bool:
        return step >= self.total - int(round(self.total * self.cfg.ste_fraction))

    def steer(self, step: int, bits: float, aim: float = 1.0) -> None:
        """With true rounding the bit estimate is what the coder will spend: steer lam so
        the file lands on the rate (rescaling latents afterwards costs ~3 dB); `aim` x the
        target when the rate will still fall after this."""
        if not self.cfg.target_bits:
            return
        self.rate = bits if self.rate is None else 0.8 * self.rate + 0.2 * bits
        if step % 5 == 0:
            self.lam *= float(np.clip(self.rate / (aim * self.cfg.target_bits), 0.9, 1.11))
            if self.cfg.steer_range:
                r = self.cfg.steer_range
                self.lam = float(np.clip(self.lam, self.cfg.lam / r, self.cfg.lam * r))

    def report(self, step: int, mse, progress: Progress | None) -> None:
        """Progress every 10 steps and at the last: (step, total, PSNR of the step's sample)."""
        if progress and (step % 10 == 0 or step == self.total):
            progress(step, self.total, 10 * math.log10(1 / max(float(mse.detach()), 1e-12)))

    def finished(self, step: int) -> bool:
        """After `step` steps: whether to stop. The time per step is measured at step 10
        (the estimate) and again at steps 16, 32, 64, ... until the rounding phase, so the
        plan fills the cap even when the first steps were slow."""
        now = time.perf_counter()
        limit = self.cfg.time_limit
        if step == 10 or (step >= 16 and step & (step - 1) == 0 and not self.hard(step)):
            per_step = (now - self.loop_start) / step
            if limit:
                fit_in = step + int(max(0.0, limit - (now - self.loop_start)) * 0.95 / per_step)
                self.total = max(step + 1, min(max(1, self.cfg.iters), fit_in))
            if step == 10:
                self.estimated = (now - self.start) + per_step * (self.total - step)
        return step >= self.total or bool(limit and now - self.loop_start > limit)
