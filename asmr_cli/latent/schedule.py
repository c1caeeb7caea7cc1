"""A fit's steps: learning-rate decay, the rounding phase, lam steered towards the rate,
the time estimate and the wall-clock cap. Shared by the image and clip fits (the clip
recipe reuses it: a change here moves both)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

Progress = Callable[[int, int, float], None]
# --psnr: lam steered on the rounding phase's error every 5 steps by at most these factors
# (steering from 10% of the steps on, on the noise phase's error, overshot: the early
# error is not yet the trained one; docs/rate-distortion.md)
DISTORTION_STEP = (0.9, 1.11)


class Schedule:
    """A fit's steps: the learning rate's cosine decay, the rounding phase, lam steered
    towards the target rate while rounding, the estimate of the total time at step 10
    and the wall-clock cap (the schedule shrinks to fit it)."""

    def __init__(self, cfg, start: float, after: float | Callable[[float], float] = 0.0, estimate_at: int = 10):
        """cfg: a fit.LatentFitConfig (iters, lam, target_bits, time_limit, the rates' schedule);
        start: when the encode began; after: the seconds the encode will still take once the
        fit ends (coding, the rate fit, the check decode), or a function of the measured
        seconds per step that gives them, part of the estimate and of the progress;
        estimate_at: the step of the first estimate (the clips keep 10)."""
        self.cfg, self.start = cfg, start
        self.total = max(1, cfg.iters)
        self.lam = cfg.lam
        self.anchor = cfg.lam  # lam is steered within cfg.steer_range of this
        self.rate: float | None = None
        self.mse: float | None = None
        self.estimated: float | None = None  # the first estimate of the whole encode's seconds
        self.latest: float | None = None     # the latest one
        self.after_for = after if callable(after) else (lambda per_step: after)
        self.after = 0.0 if callable(after) else after
        self.estimate_at = estimate_at
        self.per_step: float | None = None
        self.planned: int | None = None  # the steps the latest estimate counts on
        self.loop_start = time.perf_counter()
        self._paced = (0, self.loop_start)  # cfg.keep_finish: the step and time of the latest re-plan
        self._repaced = False
        self.waiting = False  # for a change of pace (repace) before the first estimate

    def repace(self, step: int) -> None:
        """The steps run at another pace from this one on (window_fit: its helper process
        has started, or failed to): the first estimate, if not made yet, waits 64 more
        steps and counts the pace from here."""
        self._paced = (step, time.perf_counter())
        self.waiting = False
        if self.estimated is None:
            self.estimate_at, self._repaced = step + 64, True

    def lr_ratio(self, step: int) -> float:
        r = self.cfg.final_lr_ratio
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * step / self.total))

    def hard(self, step: int) -> bool:
        return step >= self.total - int(round(self.total * self.cfg.ste_fraction))

    def temperature(self, step: int) -> float:
        """Soft rounding's temperature (cfg.soft_rounding): from soft_start to soft_end,
        geometric over the steps before the rounding phase."""
        soft = max(1, self.total - int(round(self.total * self.cfg.ste_fraction)))
        a = min(1.0, step / soft)
        return self.cfg.soft_start * (self.cfg.soft_end / self.cfg.soft_start) ** a

    def steer(self, step: int, bits: float, aim: float = 1.0, every: int = 1) -> None:
        """With true rounding the bit estimate is what the coder will spend: steer lam so
        the file lands on the rate (rescaling latents afterwards costs ~3 dB); `aim` x the
        target when the rate will still fall after this; `every`: called every this many
        steps (the moving average forgets as much per call as it would over as many steps)."""
        if not self.cfg.target_bits:
            return
        memory = getattr(self.cfg, "steer_memory", None)
        if memory is not None:
            memory **= every
        if self.rate is None:
            self.rate = bits
        elif memory is None:
            self.rate = 0.8 * self.rate + 0.2 * bits
        else:  # window steps: a window's rate is a noisy estimate of the image's
            self.rate = memory * self.rate + (1 - memory) * bits
        if step % 5 == 0:
            self.lam *= float(np.clip(self.rate / (aim * self.cfg.target_bits), 0.9, 1.11))
            if self.cfg.steer_range:
                r = self.cfg.steer_range
                self.lam = float(np.clip(self.lam, self.anchor / r, self.anchor * r))

    def steer_distortion(self, step: int, mse: float) -> None:
        """--psnr, in the rounding phase: steer lam so the step's (sampled) MSE lands on
        cfg.target_mse (a lower lam where the error is above it)."""
        target = getattr(self.cfg, "target_mse", None)
        if not target:
            return
        memory = getattr(self.cfg, "steer_memory", None)
        if self.mse is None:
            self.mse = mse
        elif memory is None:
            self.mse = 0.8 * self.mse + 0.2 * mse
        else:  # window steps: a window's error is a noisy estimate of the image's
            self.mse = memory * self.mse + (1 - memory) * mse
        if step % 5 == 0:
            self.lam *= float(np.clip(target / self.mse, *DISTORTION_STEP))

    def post_steps(self) -> int:
        """The work after the fit, in steps' worth of time (0 until a step is timed)."""
        return int(round(self.after / self.per_step)) if self.after and self.per_step else 0

    def report(self, step: int, mse, progress: Progress | None) -> None:
        """Progress every 10 steps, at the first estimate and at the last: (step, total
        with the work after the fit in steps' worth, PSNR of the step's sample)."""
        if progress and (step % 10 == 0 or step == self.total or step == self.estimate_at):
            total = self.total if self.planned is None else max(step, self.planned)
            progress(step, total + self.post_steps(), 10 * math.log10(1 / max(float(mse.detach()), 1e-12)))

    def finished(self, step: int) -> bool:
        """After `step` steps: whether to stop. The time per step is measured at step 10
        (the estimate) and again at steps 16, 32, 64, ... (every 32 with cfg.keep_finish) until
        the rounding phase, so the plan fills the cap even when the first steps were slow."""
        now = time.perf_counter()
        limit = self.cfg.time_limit
        keep = getattr(self.cfg, "keep_finish", False)
        due = step & (step - 1) == 0 or (keep and step % 32 == 0)  # keep_finish: every 32 steps too
        replan = step == 10 or (step >= 16 and due and not self.hard(step))
        if replan or step == self.estimate_at:
            per_step = (now - self.loop_start) / step
            if (keep and replan and step > 10) or (self._repaced and step == self.estimate_at):
                per_step = (now - self._paced[1]) / max(1, step - self._paced[0])  # the pace since then
            self.per_step = per_step
            self.after = self.after_for(per_step)
            total = self.total
            if limit:
                fit_in = step + int(max(0.0, limit - (now - self.loop_start)) * 0.95 / per_step)
                total = max(step + 1, min(max(1, self.cfg.iters), fit_in))
                if keep and replan:  # the finish starts here at the latest, and has its share
                    total = max(total, math.ceil((step + 1) / (1 - self.cfg.ste_fraction)))
            if keep and replan:
                self._paced = (step, now)
            if replan:
                self.total = total
            self.planned = total
            self.latest = (now - self.start) + per_step * (total - step) + self.after
            if self.estimated is None and not self.waiting:
                self.estimated = self.latest
        return step >= self.total or bool(limit and now - self.loop_start > limit)
