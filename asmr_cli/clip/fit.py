"""Training a group of frames (format version 4) for rate and distortion.

Each frame has its own latent pyramid (the image model of latent_fit); the frames of a
group share the synthesis and the context model, and the context model also sees the
previous frame's grids, so what does not change costs next to nothing. A step trains a
window of consecutive frames (about WINDOW_PIXELS pixels, sampled as for an image), and
only the window's latents move: their Adam state is kept per frame and updated for the
window alone, so a step's cost follows the window, not the clip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..latent import context_model as cm
from ..latent.fit import (
    MAX_SAMPLED_PIXELS,
    SAMPLE_ABOVE,
    TORCH,
    LatentFitConfig,
    LatentModel,
    bisect_lambda,
    grid_bits,
    level_gains,
    residual_pyramid,
    rounded_entropy,
    sampled_planes,
)
from ..latent.latents import Layout, features, mlp, up2_at
from ..latent.schedule import Progress, Schedule

WINDOW_PIXELS = 1 << 19  # pixels of the frames a step trains (at least one frame)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
PAIRS = 6  # frame pairs choose_clip_lambda looks at
STEER_FROM = 0.1  # lam is steered from this share of the steps on (by the rounded rate)
NOISE_PHASE_AIM = 1.05  # ... towards this x the target before the rounding phase, which lowers it


@dataclass
class ClipFitResult:
    synthesis: dict[str, np.ndarray]
    context: dict[str, np.ndarray]
    latents: list[list[np.ndarray]]  # per frame: float32 grids in Layout.grids() order
    iterations: int
    lam: float
    seconds: float
    estimated_seconds: float | None
    # formats 7/9: the last refreshed prediction (C, T, H, W) uint8 (warped 8-bit frames: a
    # quarter of the float32's memory, kept for every group until the weights' check)
    prediction: np.ndarray | None = None


@dataclass
class Prediction:
    """Format 7: frames predicted from the decoded frame before them. `start` (C, T, H, W)
    the first prediction (0 on intra frames), `starts[t]` whether frame t starts a segment
    (no temporal context), `weights` the distortion weight of each frame, and `refresh`,
    given the synthesis weights and every frame's rounded latents, the prediction of every
    frame as the decoder would make it (closed loop, from the frames decoded so far)."""

    start: np.ndarray
    starts: list[bool]
    weights: list[float]
    refresh: Callable[[dict, list[list[np.ndarray]]], np.ndarray]


INTRA_VISITS = 0.5  # format 7: this share of the steps train an intra frame alone (everything depends on it)
REFRESH_COST = 0.1  # the prediction is refreshed when that keeps its share of the time below this
# ... and at these shares of the steps whatever it costs, so that the rounding phase (the
# second half) trains against frames made from nearly final latents: on a large clip a
# refresh costs seconds, and the P frames trained against predictions made from nearly
# untrained latents (docs/video.md, bikes)
FORCED_REFRESH = (0.5, 0.75, 0.9)
# fit_clip(rate_model=...): lam is re-anchored only up (the group's rate over its aim when
# the steering starts), at most this factor. On carphone every move up was neutral or
# better (a start cut to a fifth: +4.5 dB), and moves down cost 0.9 / 3.6 dB at 0.1 / 0.25
# bpp at the default preset (docs/video.md)
REANCHOR_RANGE = 16.0


KEEP_BELOW = 0.75  # warm start: a latent this close (in steps) to the previous frame's takes its value


def clip_pyramid(layout: Layout, clip: torch.Tensor, gains: list[float]) -> list[torch.Tensor]:
    """The starting latents of every frame, per level (planes, T, h, w), in lam's steps:
    each frame's residual pyramid, except that a latent within KEEP_BELOW steps of the
    previous frame's (rounded) value takes that value, so what does not change starts
    out free to code under the temporal context."""
    per_frame = [residual_pyramid(layout, clip[:, t]) for t in range(clip.shape[1])]
    out = [torch.stack([f[lv] for f in per_frame], 1) / gains[lv] for lv in range(layout.levels)]
    for z in out:
        for t in range(1, z.shape[1]):
            prev = torch.round(z[:, t - 1])
            z[:, t] = torch.where((z[:, t] - prev).abs() < KEEP_BELOW, prev, z[:, t])
    return out


def trained_clip_ratio(bpp: float) -> float:
    """What trained latents cost as a share of the starting pyramid's entropy (the first
    frame's, plus the frame-to-frame differences' for the others) at the same lam, as a
    function of the rate: measured on carphone at fixed lam (0.28 at 0.056 bpp, 0.39-0.41
    at 0.19-0.20 bpp, 360-390 steps); bikes is the check (docs/video.md)."""
    return 0.40 * (max(bpp, 0.005) / 0.2) ** 0.27


def choose_clip_lambda(layout: Layout, clip: np.ndarray, target_bits: float) -> float:
    """The lam at which the starting pyramid's entropy (the first frame coded alone, the
    others as differences to the frame before, from PAIRS sampled pairs) times
    trained_clip_ratio meets target_bits."""
    return bisect_lambda(clip_rate_model(layout, clip, target_bits), target_bits)


def clip_rate_model(layout: Layout, clip: np.ndarray, target_bits: float) -> Callable[[float], float]:
    """The bits choose_clip_lambda expects the group to cost at a lam (a function of lam)."""
    frames = clip.shape[1]
    ratio = trained_clip_ratio(target_bits / (frames * layout.height * layout.width))
    unit = level_gains(layout, 1.0)
    gen = torch.Generator().manual_seed(0)

    def pyramid(t: int) -> list[torch.Tensor]:
        return residual_pyramid(layout, torch.from_numpy(np.ascontiguousarray(clip[:, t], np.float32)))

    first = sampled_planes(pyramid(0), gen)
    picks = sorted({int(t) for t in np.linspace(1, frames - 1, min(PAIRS, frames - 1))}) if frames > 1 else []
    pairs = [(pyramid(t - 1), pyramid(t)) for t in picks]

    def bits(lam: float) -> float:
        total = rounded_entropy(first, unit, lam)
        if pairs:
            diff = 0.0
            for a, b in pairs:
                steps = [u * math.sqrt(lam) for u in unit]
                d = [torch.round(y / s) - torch.round(x / s) for x, y, s in zip(a, b, steps)]
                diff += rounded_entropy(sampled_planes(d, torch.Generator().manual_seed(1)), [1.0] * len(d), 1.0)
            total += (frames - 1) * diff / len(pairs)
        return total * ratio

    return bits


class ClipModel(LatentModel):
    """LatentModel over a group of frames: latents per level (planes, T, h, w), a context
    model with temporal inputs."""

    temporal = True
    warm_start = True  # format 7 codes residuals: each frame starts from its own pyramid

    def __init__(self, layout: Layout, clip: torch.Tensor, lam: float):
        super().__init__(layout, clip, lam)
        if layout.context_hidden < 2:  # a one-frame group: nothing before any frame
            return
        with torch.no_grad():  # start from "same as the previous frame" (a +x / -x ReLU pair)
            c = self.ctx
            prev = cm.CTX_INPUTS
            for unit, sign in ((0, 1.0), (1, -1.0)):
                c["c_w1"][unit].zero_()
                c["c_w1"][unit, prev] = sign
                c["c_b1"][unit] = 0.0
                c["c_w2"][unit].zero_()
                c["c_w2"][unit, unit] = 1.0
                c["c_b2"][unit] = 0.0
            c["c_w3"][0, 0], c["c_w3"][0, 1] = 1.0, -1.0

    def _pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        if not self.warm_start:
            per_frame = [residual_pyramid(self.layout, image[:, t]) for t in range(image.shape[1])]
            return [torch.stack([f[lv] for f in per_frame], 1) / self.gains[lv] for lv in range(self.layout.levels)]
        return clip_pyramid(self.layout, image, self.gains)

    def render_window(self, latents: list[torch.Tensor], pixels: torch.Tensor) -> torch.Tensor:
        """(C, n) output at flat indices into the window's (frames, H, W) pixels."""
        lay = self.layout
        p = self.synthesis_params()
        per = lay.height * lay.width
        if lay.levels < 2:
            a = features(TORCH, lay, p, latents)
            return mlp(TORCH, lay, p, a.reshape(lay.features, -1)[:, pixels])
        a1 = features(TORCH, lay, p, latents, stop=1)  # (F * frames, h1, w1)
        a1 = a1.reshape(lay.features, -1, *a1.shape[1:])
        t, rest = pixels // per, pixels % per
        z0 = latents[0].reshape(latents[0].shape[0], -1)[:, pixels]
        return mlp(TORCH, lay, p, up2_at(a1, rest // lay.width, rest % lay.width, t) + p["mod0"] @ z0)

    def window_bits(self, latents: list[torch.Tensor], before: list[torch.Tensor] | None, fraction: float,
                    generator: torch.Generator, starts: list[bool] | None = None) -> torch.Tensor:
        """Estimated bits per frame of a window (frames,), `before` the rounded latents of
        the frame before the window (None when the window starts the group); `starts`
        (format 7): per frame of the window, whether it starts a segment (no temporal
        context)."""
        lay = self.layout
        frames = latents[0].shape[1]
        has = torch.ones(frames) if starts is None else 1.0 - torch.tensor(starts, dtype=torch.float32)
        if before is None:
            has[0] = 0.0
        total = torch.zeros(frames)
        for k, (lv, plane, (h, w)) in enumerate(lay.grids()):
            pi = lay.planes(lv).index(plane)
            z = latents[lv][pi]
            first = torch.zeros(1, h, w) if before is None else before[lv][pi]
            values = torch.cat([first, z[:-1]])
            if starts is not None:
                values = values * has.view(-1, 1, 1)
            parent = latents[lv + 1][lay.planes(lv + 1).index(plane)] if lv + 1 < lay.levels else None
            total = total + grid_bits(self.ctx, k, z, parent, fraction, generator, (values, has))
        return total


class ResidualClipModel(ClipModel):
    """Format 7: the latents code what the prediction misses, each frame from its own pyramid."""

    warm_start = False


def fit_clip(layout: Layout, clip: np.ndarray, cfg: LatentFitConfig,
             progress: Progress | None = None, prediction: Prediction | None = None,
             rate_model: Callable[[float], float] | None = None, early_rate: float = 1.0) -> ClipFitResult:
    """clip: (C, T, H, W) float32 in [0, 1], one group of frames. With `prediction` (format
    7), each frame's output is its prediction plus the synthesis, the prediction refreshed
    from the frames as decoded now and then (its inputs are held fixed in between). With
    `rate_model` (the bits expected at a lam, as cfg.lam was chosen from) and a target,
    lam is re-anchored once, when the steering starts, on the whole group's rounded rate
    and the quantisation step moved with it (_restep), aiming at `early_rate` x the target
    (what the rate is when the steering starts, as a share of the trained file's)."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    target = torch.from_numpy(np.ascontiguousarray(clip, np.float32))
    c, frames = layout.channels, clip.shape[1]
    pred = starts = weights = None
    refreshed, refresh_cost = start, 0.0
    forced = 0  # the forced refreshes done
    if prediction is None:
        model = ClipModel(layout, target, cfg.lam)
    else:
        pred = torch.from_numpy(np.ascontiguousarray(prediction.start, np.float32))
        starts = prediction.starts
        weights = torch.tensor(prediction.weights, dtype=torch.float32)
        model = ResidualClipModel(layout, target - pred, cfg.lam)
    per = layout.height * layout.width
    window = max(1, min(frames, WINDOW_PIXELS // per))
    nets = model.network_params()
    opt = torch.optim.Adam(nets, lr=cfg.net_lr)
    lat = [z.data for z in model.latents]
    moments = [(torch.zeros_like(z), torch.zeros_like(z)) for z in lat]
    visits = torch.zeros(frames)
    frame_bits = torch.zeros(frames)  # latest rounded-phase bit estimate of each frame (lam steering)
    seen = torch.zeros(frames, dtype=torch.bool)
    sched = Schedule(cfg, start)
    b1, b2 = ADAM_BETAS
    step = 0
    anchored = rate_model is None or not cfg.target_bits
    while step < sched.total:
        if not anchored and step >= STEER_FROM * sched.total:
            anchored = True
            with torch.no_grad():
                measured = _group_rate(model, lat, window, starts, cfg.rate_fraction, cfg.seed)
            was = sched.lam
            sched.lam, expected = reanchored(rate_model, sched.lam, float(measured.sum()),
                                             NOISE_PHASE_AIM * early_rate * cfg.target_bits)
            if sched.lam != was:  # otherwise the fit goes on exactly as it would have
                sched.anchor = sched.lam
                _restep(model, lat, moments, math.sqrt(was / sched.lam))
                frame_bits = measured * expected  # what the rate should come to at the new lam
                seen[:] = True
        ratio = sched.lr_ratio(step)
        opt.param_groups[0]["lr"] = cfg.net_lr * ratio
        hard = sched.hard(step)
        span = window
        if prediction is None:
            t0 = int(torch.randint(0, frames - window + 1, (1,), generator=gen))
        elif float(torch.rand(1, generator=gen)) < INTRA_VISITS:  # an intra frame alone: a cheap step
            firsts = [t for t in range(frames) if starts[t]]
            t0, span = firsts[int(torch.randint(0, len(firsts), (1,), generator=gen))], 1
        else:  # every frame in as many windows: the intra frame at the edge as often as the rest
            t0 = min(max(0, int(torch.randint(1 - window, frames, (1,), generator=gen))), frames - window)
        t1 = t0 + span
        win = [z[:, t0:t1].clone().requires_grad_(True) for z in lat]
        if hard:
            zs = [z + (torch.round(z) - z).detach() for z in win]
        else:
            zs = [z + torch.rand(z.shape, generator=gen) - 0.5 for z in win]
        before = _before(lat, t0, starts)
        win_starts = None if starts is None else starts[t0:t1]
        n = span * per
        if n > SAMPLE_ABOVE and cfg.pixel_fraction < 1:
            pixels = torch.randint(0, n, (max(1, min(int(n * cfg.pixel_fraction), MAX_SAMPLED_PIXELS)),),
                                   generator=gen)
        else:
            pixels = torch.arange(n)
        out = model.render_window(zs, pixels)
        ref = target[:, t0:t1].reshape(c, -1)[:, pixels]
        if pred is None:
            mse = ((out - ref) ** 2).mean()
        else:
            out = out + pred[:, t0:t1].reshape(c, -1)[:, pixels]
            mse = (((out - ref) ** 2).mean(0) * weights[t0 + pixels // per]).mean()
        bits = model.window_bits(zs, before, cfg.rate_fraction, gen, win_starts)
        loss = mse + sched.lam * bits.sum() / n
        if hard:  # rounded latents: the estimate is what the coder will spend
            frame_bits[t0:t1] = bits.detach()
            seen[t0:t1] = True
            sched.steer(step, float(frame_bits[seen].mean()) * frames)
        elif step >= STEER_FROM * sched.total and step % 10 == 0:
            # the noisy estimate is no guide (see clip_encoder.STEER_RANGE): the rate of the
            # rounded window, while lam can still move it
            with torch.no_grad():
                rounded = model.window_bits([torch.round(z) for z in win], before, cfg.rate_fraction, gen,
                                            win_starts)
            frame_bits[t0:t1] = rounded
            seen[t0:t1] = True
            sched.steer(step, float(frame_bits[seen].mean()) * frames, NOISE_PHASE_AIM)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets, 1.0)
        opt.step()
        with torch.no_grad():  # Adam on the window's latents alone, bias-corrected per frame
            visits[t0:t1] += 1
            shape = (1, span, 1, 1)
            c1 = (1 - b1 ** visits[t0:t1]).view(shape)
            c2 = (1 - b2 ** visits[t0:t1]).view(shape)
            lr = cfg.latent_lr * ratio
            for z, w, (m, v) in zip(lat, win, moments):
                g = w.grad
                ms, vs = m[:, t0:t1], v[:, t0:t1]
                ms.mul_(b1).add_(g, alpha=1 - b1)
                vs.mul_(b2).addcmul_(g, g, value=1 - b2)
                z[:, t0:t1] -= lr * (ms / c1) / ((vs / c2).sqrt() + ADAM_EPS)
        step += 1
        passed = sum(step >= share * sched.total for share in FORCED_REFRESH)  # forced refreshes due so far
        too_soon = time.perf_counter() - refreshed <= refresh_cost / REFRESH_COST
        if prediction is not None and (passed > forced or not too_soon):
            t_r = time.perf_counter()
            pred = torch.from_numpy(prediction.refresh(model.networks()[0], _rounded_frames(layout, lat)))
            refreshed, refresh_cost, forced = time.perf_counter(), time.perf_counter() - t_r, passed
        sched.report(step, mse, progress)
        if sched.finished(step):
            break
    syn, ctx = model.networks()
    out_latents = [[lat[lv][layout.planes(lv).index(p), t].numpy().astype(np.float32)
                    for lv, p, _ in layout.grids()] for t in range(frames)]
    return ClipFitResult(syn, ctx, out_latents, step, sched.lam, time.perf_counter() - start, sched.estimated,
                         None if pred is None else np.rint(pred.numpy() * 255.0).astype(np.uint8))


def reanchored(rate_model: Callable[[float], float], lam: float, measured: float, aim: float) -> tuple[float, float]:
    """(lam, factor): where the measured rate is over `aim`, the lam at which it, scaled as
    rate_model says the rate scales with lam, meets `aim`, and the factor the rate is
    expected to change by; at most REANCHOR_RANGE x `lam` (the model is of the starting
    pyramid). Otherwise `lam` as it is and 1."""
    at = rate_model(lam)
    if not (measured > aim and at > 0):
        return lam, 1.0
    new = bisect_lambda(rate_model, at * aim / measured)
    new = float(np.clip(new, lam / REANCHOR_RANGE, lam * REANCHOR_RANGE))
    return new, rate_model(new) / at


def _restep(model: ClipModel, lat: list[torch.Tensor], moments: list[tuple[torch.Tensor, torch.Tensor]],
            s: float) -> None:
    """The quantisation step of every level times 1/s (lam's steps scale as its square root):
    the latents (and their Adam moments) times s, the synthesis' gains times 1/s, so that
    the output is as it was, and each grid's starting Laplace moved with its latents. The
    steps are chosen with the starting lam: steering lam alone barely moves the rate once
    the latents have trained in them (carphone started at a fifth of its lam ended at 2.6x
    its budget, docs/video.md)."""
    if s == 1.0:
        return
    with torch.no_grad():
        for z, (m, v) in zip(lat, moments):
            z.mul_(s)
            m.mul_(s)
            v.mul_(s * s)
        model.gains = [g / s for g in model.gains]
        grid = model.ctx["c_grid"]
        grid[:, 0] *= s
        grid[:, 1] += math.log(s)


def _before(lat: list[torch.Tensor], t0: int, starts: list[bool] | None) -> list[torch.Tensor] | None:
    """The rounded latents of the frame before a window starting at t0, its temporal context
    (None at the group's start or a segment's)."""
    return [torch.round(z[:, t0 - 1:t0]) for z in lat] if t0 and not (starts and starts[t0]) else None


def _group_rate(model: ClipModel, lat: list[torch.Tensor], window: int, starts: list[bool] | None,
                fraction: float, seed: int) -> torch.Tensor:
    """Every frame's estimated bits with its latents rounded (frames,), window by window (a
    generator of its own: the training's random stream is left as it was)."""
    gen = torch.Generator().manual_seed(seed + 1)
    frames = lat[0].shape[1]
    out = torch.zeros(frames)
    for t0 in range(0, frames, window):
        t1 = min(frames, t0 + window)
        before = _before(lat, t0, starts)
        out[t0:t1] = model.window_bits([torch.round(z[:, t0:t1]) for z in lat], before, fraction, gen,
                                       None if starts is None else starts[t0:t1])
    return out


def _rounded_frames(layout: Layout, lat: list[torch.Tensor]) -> list[list[np.ndarray]]:
    """Every frame's rounded latents, per level (planes, h, w) as the synthesis reads them."""
    return [[torch.round(z[:, t]).numpy().astype(np.float32) for z in lat] for t in range(lat[0].shape[1])]

