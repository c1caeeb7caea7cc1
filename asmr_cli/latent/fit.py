"""Training the latent pyramid (format version 3) for rate and distortion.

loss = MSE(image, synthesis) + lam * (latent bits per pixel under the context model).
Latents start as a closed-loop Laplacian pyramid of the image in YCbCr, quantised with
per-level steps chosen for lam, so the first step already decodes to a usable image;
training then spends the budget where it pays. Rounding is replaced by uniform noise,
then by straight-through rounding for the last part. Each step samples a share of the
pixels for the distortion and of the latents for the rate (unbiased estimates of both),
which is what makes a step cheap on a CPU. lam is chosen before training from the
starting pyramid (choose_lambda); the encoder fits the exact rate afterwards.
Images (encoder.IMAGE_RECIPE, not the clip and collection fits) train on windows instead
(window steps: a step's cost does not grow with the photo), with soft rounding before a
short rounding finish and lam steered from earlier on.
docs/rate-distortion.md has the measurements behind the defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import context_model as cm
from .latents import REFINE_MARGIN, Layout, colour_transform, features, mlp, up2, up2_at
from .schedule import Progress, Schedule
from .window_fit import fit_windows, helper_allowed
from .windows import TORCH, soft_round, window_inputs


@dataclass(frozen=True)
class LatentFitConfig:
    iters: int = 500
    lam: float = 1e-3             # starting lambda (MSE on [0, 1] + lam * bpp)
    latent_lr: float = 1e-2
    net_lr: float = 2e-3
    final_lr_ratio: float = 0.05
    ste_fraction: float = 0.5     # last share of the steps with true rounding (docs/rate-distortion.md)
    target_bits: float | None = None  # steer lam towards this many latent bits while rounding
    pixel_fraction: float = 0.25  # pixels sampled per step (images above SAMPLE_ABOVE pixels)
    rate_fraction: float = 0.25   # latents sampled per step for the rate (large grids)
    time_limit: float | None = None
    seed: int = 0
    steer_range: float | None = None  # lam steered at most this factor away from its start
    target_mse: float | None = None   # --psnr: steer lam towards this MSE (on [0, 1]) while rounding
    # the image recipe (issue 22; the clip and collection fits keep the defaults, so their
    # bytes stay as they were): soft rounding with an annealed temperature instead of plain
    # noise before the rounding phase (temperature from soft_start to soft_end)
    soft_rounding: bool = False
    soft_start: float = 0.3
    soft_end: float = 0.1
    noise: float = 1.0            # the noise's width (in steps) added between the two soft roundings
    # window steps (issue 22, photo size): each step trains a random window of about this
    # many pixels (whole, no sampling) and the latents under it, so a step's cost does not
    # grow with the photo; 0: the sampled whole-image step
    window_pixels: int = 0
    # 2: window steps in pairs whose gradients come from the same weights (the second one
    # update late), the second computed by a helper process on a second core where there is
    # one (window_fit.py: the same floats either way)
    windows: int = 1
    steer_memory: float | None = None  # the rate estimate's moving average while steering lam (None: 0.8)
    # from this share of the steps on, lam is steered before the rounding phase too, on the
    # rate of the rounded latents (a pass without gradients); None: in the rounding phase only
    steer_from: float | None = None
    steer_every: int = 1          # that pass every this many steps only (lam moves every 5th step)
    steer_aim: float = 1.0        # lam steered towards this x target_bits (over: the rate fit prunes)
    # re-plans under the time cap count on the latest steps' pace (not the mean since the
    # start: steps slow down once the rounded rate is computed) and never cut into the
    # rounding finish (without it a late re-plan could end the fit before its finish)
    keep_finish: bool = False
    # the networks start from the learned start where it fits the layout (start.py; issue 22)
    learned_start: bool = False


SAMPLE_ABOVE = 1 << 16  # below this many pixels (or latents in a grid) every step sees all
# at most this many pixels (latents per grid) a step: a large photo's step costs about
# what a Kodak image's does, apart from the pyramid's coarse levels (issue: encode time)
MAX_SAMPLED_PIXELS = 1 << 17
MAX_SAMPLED_LATENTS = 1 << 17


@dataclass
class LatentFitResult:
    synthesis: dict[str, np.ndarray]  # float32, gains folded into the modulators
    context: dict[str, np.ndarray]    # float32 context-model weights
    latents: list[np.ndarray]         # float32 grids in Layout.grids() order (to be rounded)
    iterations: int
    lam: float
    seconds: float
    estimated_seconds: float | None
    post_steps: int = 0  # the work after the fit, in steps' worth of time (the progress's share)


def level_gains(layout: Layout, lam: float) -> list[float]:
    """Per-level quantisation step of the linear path for lam: the step at which a
    uniform quantiser's distortion-rate slope (2 ln 2 * s^2 / 12 * energy) meets lam,
    where energy is that of the level's upsampling kernel on the pixel grid."""
    out = []
    for lv, (h, w) in enumerate(layout.shapes):
        d = torch.zeros(1, h, w)
        d[0, h // 2, w // 2] = 1.0
        for k in range(lv - 1, -1, -1):
            d = up2(TORCH, d, layout.shapes[k])
        energy = float((d**2).sum())
        out.append(math.sqrt(6.0 * lam / (math.log(2) * energy)))
    return out


def residual_pyramid(layout: Layout, image: torch.Tensor) -> list[torch.Tensor]:
    """Closed-loop Laplacian pyramid in the latent colour space, level 0 first: each level
    holds the area average of what the coarser levels leave (in signal units)."""
    t = torch.from_numpy(colour_transform(layout.channels)).float()
    target = (t @ image.reshape(layout.channels, -1)).reshape(image.shape)
    recon = torch.zeros_like(target)
    out: list[torch.Tensor] = [torch.empty(0)] * layout.levels
    for lv in range(layout.levels - 1, -1, -1):
        h, w = layout.shapes[lv]
        planes = list(layout.planes(lv))
        resid = (target - recon)[planes]
        if lv:
            scale = 1 << lv
            resid = F.pad(resid[None], (0, w * scale - layout.width, 0, h * scale - layout.height), mode="replicate")
            resid = F.avg_pool2d(resid, scale)[0]
        out[lv] = resid
        full = torch.zeros(layout.channels, h, w)
        full[planes] = resid
        for k in range(lv - 1, -1, -1):
            full = up2(TORCH, full, layout.shapes[k])
        recon = recon + full
    return out


def trained_rate_ratio(bpp: float) -> float:
    """What trained latents cost as a share of the empirical entropy of the rounded
    starting pyramid at the same lam (the context model and the rate term's pruning save
    more at low rates): fitted on tuning images only (docs/rate-distortion.md)."""
    return 0.66 * (max(bpp, 0.01) / 0.5) ** 0.2


# --psnr: what a fit's error is as a share of its starting pyramid's rounded error at the
# same lam (choose_lambda_for_psnr): 0.81-1.05 on three tuning crops (kodim04, 19, 23 at
# 384x256, --preset fast, q 50-90), geometric mean 0.91 at 31.65 dB, falling by about 2.2%
# a dB within each image (docs/rate-distortion.md). The fit then steers lam on the
# rounding phase's error.
TRAINED_MSE_RATIO, RATIO_AT_DB, RATIO_PER_DB = 0.91, 31.65, -0.022
# ... at RATIO_STEPS steps (the crops' 150); a fit with fewer steps removes less of the
# starting error: x (RATIO_STEPS / steps) ** RATIO_STEP_EXPONENT, from kodim04 (512x768,
# 62-74 steps: 1.05-1.07x) and a 2.46 MP upscale of kodim19 (19 steps: 1.17x) at --psnr 33.
RATIO_STEPS, RATIO_STEP_EXPONENT = 150, 0.075


def trained_mse_ratio(psnr: float, steps: int = RATIO_STEPS) -> float:
    few = (RATIO_STEPS / max(1, min(steps, RATIO_STEPS))) ** RATIO_STEP_EXPONENT
    return TRAINED_MSE_RATIO * math.exp(RATIO_PER_DB * (psnr - RATIO_AT_DB)) * few
PSNR_AIM = 0.15  # dB above the target that the fit aims at (the encoder prunes what lands above)


def training_mse(psnr: float, bit_depth: int = 8) -> float:
    """The MSE on [0, 1] a fit aims at for a PSNR target: the file's error less what
    rounding the output to bit_depth bits adds (1/12 of a level squared)."""
    peak = (1 << bit_depth) - 1
    mse = 10 ** (-(psnr + PSNR_AIM) / 10)
    return max(mse - 1 / (12 * peak**2), mse / 4)


def choose_lambda_for_psnr(layout: Layout, image: np.ndarray, target_mse: float, steps: int = RATIO_STEPS) -> float:
    """The lam whose starting pyramid, rounded in that lam's steps and synthesised by the
    linear path (what training starts from), has an MSE of target_mse / trained_mse_ratio:
    bisection on log(lam). Where the image is smooth more latents round to 0 and the error
    is below a uniform quantiser's, which is what a fixed lam(PSNR) relation misses.
    steps: how many the fit is expected to get."""
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    pyramid = residual_pyramid(layout, x)
    unit = level_gains(layout, 1.0)
    inv = torch.from_numpy(np.linalg.inv(colour_transform(layout.channels))).float()
    c = layout.channels

    def mse(lam: float) -> float:
        acc = None
        for lv in range(layout.levels - 1, -1, -1):
            step = unit[lv] * math.sqrt(lam)
            term = torch.zeros(c, *layout.shapes[lv])
            term[list(layout.planes(lv))] = torch.round(pyramid[lv] / step) * step
            acc = term if acc is None else up2(TORCH, acc, layout.shapes[lv]) + term
        out = (inv @ acc.reshape(c, -1)).reshape(x.shape).clamp(0, 1)
        return float(((out - x) ** 2).mean())

    goal = target_mse / trained_mse_ratio(-10 * math.log10(target_mse), steps)
    return log_bisect(mse, goal, 1e-7, 1.0, 16, increasing=True)  # mse(lam) increases with lam


def log_bisect(f: Callable[[float], float], goal: float, lo: float, hi: float, steps: int,
               increasing: bool) -> float:
    """The lam in [lo, hi] where the monotonic f(lam) meets goal: bisection on log(lam)."""
    lo, hi = math.log(lo), math.log(hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (f(math.exp(mid)) > goal) == increasing:
            hi = mid
        else:
            lo = mid
    return math.exp((lo + hi) / 2)


ENTROPY_SAMPLE = 1 << 20  # values per plane that choose_lambda's entropy estimate looks at


def choose_lambda(layout: Layout, image: np.ndarray, target_bits: float) -> float:
    """The lam whose starting pyramid, rounded in that lam's steps, has an empirical
    entropy of target_bits / trained_rate_ratio: bisection on log(lam)."""
    ratio = trained_rate_ratio(target_bits / (layout.height * layout.width))
    pyramid = residual_pyramid(layout, torch.from_numpy(np.ascontiguousarray(image, np.float32)))
    unit = level_gains(layout, 1.0)  # gains scale as sqrt(lam)
    planes = sampled_planes(pyramid, torch.Generator().manual_seed(0))
    return bisect_lambda(lambda lam: rounded_entropy(planes, unit, lam) * ratio, target_bits)


def sampled_planes(pyramid: list[torch.Tensor], gen: torch.Generator) -> list[tuple[int, torch.Tensor, float]]:
    """(level, values, weight) per plane of a pyramid: large planes through a fixed sample
    of ENTROPY_SAMPLE values, weighted back to the plane's size."""
    planes = []
    for lv, r in enumerate(pyramid):
        for plane in r.reshape(r.shape[0], -1):
            size = plane.numel()
            if size > ENTROPY_SAMPLE:
                plane = plane[torch.randint(0, size, (ENTROPY_SAMPLE,), generator=gen)]
            planes.append((lv, plane, size / plane.numel()))
    return planes


def rounded_entropy(planes: list[tuple[int, torch.Tensor, float]], unit: list[float], lam: float) -> float:
    """Empirical entropy in bits of the planes rounded in lam's per-level steps."""
    total = 0.0
    for lv, plane, weight in planes:
        q = torch.round(plane / (unit[lv] * math.sqrt(lam)))
        _, counts = torch.unique(q, return_counts=True)
        p = counts.double() / q.numel()
        total += weight * float(-(counts.double() * torch.log2(p)).sum())
    return total


def bisect_lambda(bits: Callable[[float], float], target_bits: float) -> float:
    """The lam at which the decreasing bits(lam) meets target_bits (bisection on log)."""
    return log_bisect(bits, target_bits, 1e-6, 10.0, 20, increasing=False)


def add_synthesis(model: nn.Module, layout: Layout, inv: torch.Tensor) -> None:
    """The synthesis networks' parameters of a layout, on `model`: per level the modulator
    (its first C rows start as the inverse colour transform, the rest small), the hidden
    layer and the head (zero: the linear path alone at first). Shared by the image, clip
    and collection fits, so that they start alike."""
    c, f = layout.channels, layout.features
    mods = []
    for lv in range(layout.levels):
        planes = layout.planes(lv)
        m = torch.zeros(f, len(planes))
        nn.init.uniform_(m[c:], -0.05, 0.05)
        m[:c] = inv[:, list(planes)]
        mods.append(nn.Parameter(m))
    model.mods = nn.ParameterList(mods)
    h = layout.hidden
    model.b1 = nn.Parameter(torch.zeros(h))
    model.w2 = nn.Parameter(torch.empty(h, h).uniform_(-1 / math.sqrt(max(h, 1)), 1 / math.sqrt(max(h, 1))))
    model.b2 = nn.Parameter(torch.zeros(h))
    model.head_w = nn.Parameter(torch.zeros(c, h))
    model.head_b = nn.Parameter(torch.zeros(c))
    if layout.refine:  # format 8's refine stage: the second convolution zero, so it starts as none
        k, bound = layout.refine, 1 / math.sqrt(9 * c)
        model.conv1 = nn.Parameter(torch.empty(k, c, 3, 3).uniform_(-bound, bound))
        model.c1 = nn.Parameter(torch.zeros(k))
        model.conv2 = nn.Parameter(torch.zeros(c, k, 3, 3))
        model.c2 = nn.Parameter(torch.zeros(c))


def context_parameters(layout: Layout, temporal: bool = False) -> dict[str, nn.Parameter]:
    """The context model's parameters, initialised (each grid's Laplace is set by the caller)."""
    ctx = {}
    for name, shape in cm.parameter_shapes(len(layout.grids()), layout.context_hidden, temporal):
        t = torch.zeros(shape)
        if name in ("c_w1", "c_w2"):
            nn.init.uniform_(t, -1 / math.sqrt(max(1, shape[1])), 1 / math.sqrt(max(1, shape[1])))
        elif name == "c_w3":
            nn.init.uniform_(t, -0.1 / math.sqrt(max(1, shape[1])), 0.1 / math.sqrt(max(1, shape[1])))
        ctx[name] = nn.Parameter(t)
    return ctx


class LatentModel(nn.Module):
    temporal = False  # a clip's context model also sees the previous frame (clip_fit)

    def __init__(self, layout: Layout, image: torch.Tensor, lam: float, start: dict[str, np.ndarray] | None = None):
        super().__init__()
        self.layout = layout
        c = layout.channels
        self.gains = level_gains(layout, lam)
        inv = torch.from_numpy(np.linalg.inv(colour_transform(c))).float()
        add_synthesis(self, layout, inv)  # mods raw: the synthesis uses gains[l] * mods[l]
        self.latents = nn.ParameterList([nn.Parameter(z) for z in self._pyramid(image)])
        grids = layout.grids()
        ctx = context_parameters(layout, self.temporal)
        with torch.no_grad():  # each grid's Laplace starts at its own centre and spread
            for k, (lv, p, _) in enumerate(grids):
                z = self.latents[lv][layout.planes(lv).index(p)]
                centre = float(z.mean()) if lv == layout.levels - 1 else 0.0
                ctx["c_grid"][k, 0] = centre
                ctx["c_grid"][k, 1] = math.log(max(0.1, float((z - centre).abs().mean())))
        self.ctx = nn.ParameterDict(ctx)
        if start is not None:  # the learned start (start.py): its arrays replace the usual first values
            with torch.no_grad():
                for name, value in start.items():
                    if name.startswith("mod"):
                        self.mods[int(name[3:])].copy_(torch.from_numpy(value))
                    elif name.startswith("c_"):
                        self.ctx[name].copy_(torch.from_numpy(value))
                    else:
                        getattr(self, name).copy_(torch.from_numpy(value))

    def _pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The starting latents: the residual pyramid in each level's steps."""
        return [r / g for r, g in zip(residual_pyramid(self.layout, image), self.gains)]

    def network_params(self) -> list[nn.Parameter]:
        """Every parameter but the latents (the synthesis and context networks), in one order."""
        return [p for name, p in self.named_parameters() if not name.startswith("latents")]

    def networks(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The synthesis (gains folded in) and context weights as float32 arrays."""
        with torch.no_grad():
            syn = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.synthesis_params().items()}
            ctx = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.ctx.items()}
        return syn, ctx

    def synthesis_params(self) -> dict[str, torch.Tensor]:
        p = {f"mod{lv}": self.mods[lv] * self.gains[lv] for lv in range(self.layout.levels)}
        p.update(b1=self.b1, w2=self.w2, b2=self.b2, head_w=self.head_w, head_b=self.head_b)
        if self.layout.refine:
            p.update(conv1=self.conv1, c1=self.c1, conv2=self.conv2, c2=self.c2)
        return p

    def render(self, latents: list[torch.Tensor], pixels: torch.Tensor | None = None) -> torch.Tensor:
        """(C, n) output at the flat pixel indices `pixels` (all when None)."""
        p = self.synthesis_params()
        lay = self.layout
        if lay.refine and pixels is not None:
            raise ValueError("the refine stage needs whole images or windows, not sampled pixels")
        if pixels is None or lay.levels < 2:
            a = features(TORCH, lay, p, latents)
            a = a.reshape(a.shape[0], -1)
            out = mlp(TORCH, lay, p, a if pixels is None else a[:, pixels])
            if lay.refine:
                m = REFINE_MARGIN
                x = F.pad(out.reshape(1, lay.channels, lay.height, lay.width), (m, m, m, m), mode="replicate")
                out = refine_torch(p, x[0]).reshape(lay.channels, -1)
            return out
        # a sample of pixels: the pyramid down to level 1 (a quarter of the pixels), then the
        # last upsampling and level 0's term at the sampled pixels only
        rows, cols = pixels // self.layout.width, pixels % self.layout.width
        a1 = features(TORCH, self.layout, p, latents, stop=1)
        z0 = latents[0].reshape(latents[0].shape[0], -1)[:, pixels]
        return mlp(TORCH, self.layout, p, up2_at(a1, rows, cols) + p["mod0"] @ z0)

    def render_window(self, latents: list[torch.Tensor], cells: list[tuple[int, int, int, int]],
                      rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """(C, n) output on the window rows x cols, from the latents' windows on `cells`
        (window_cells): the pyramid summed on the windows alone."""
        p = self.synthesis_params()
        acc = None
        for lv in range(self.layout.levels - 1, -1, -1):
            z = latents[lv]
            r0, _, c0, _ = cells[lv]
            h, w = z.shape[-2:]
            term = (p[f"mod{lv}"] @ z.reshape(z.shape[0], -1)).reshape(-1, h, w)
            if acc is not None:
                pr, pc = cells[lv + 1][0], cells[lv + 1][2]
                up = up2(TORCH, acc, (2 * acc.shape[-2], 2 * acc.shape[-1]))
                term = term + up[:, r0 - 2 * pr:r0 - 2 * pr + h, c0 - 2 * pc:c0 - 2 * pc + w]
            acc = term
        r0, c0 = cells[0][0], cells[0][2]
        lay = self.layout
        if not lay.refine:
            a = acc[:, rows[0] - r0:rows[1] - r0, cols[0] - c0:cols[1] - c0]
            return mlp(TORCH, lay, p, a.reshape(a.shape[0], -1))
        # the refine stage reads REFINE_MARGIN pixels around the window: the output there
        # (window_cells holds their cells), the image's edges repeated where the window meets them
        m = REFINE_MARGIN
        y0, y1 = max(0, rows[0] - m), min(lay.height, rows[1] + m)
        x0, x1 = max(0, cols[0] - m), min(lay.width, cols[1] + m)
        a = acc[:, y0 - r0:y1 - r0, x0 - c0:x1 - c0]
        out = mlp(TORCH, lay, p, a.reshape(a.shape[0], -1)).reshape(1, lay.channels, y1 - y0, x1 - x0)
        pad = (m - (cols[0] - x0), m - (x1 - cols[1]), m - (rows[0] - y0), m - (y1 - rows[1]))
        return refine_torch(p, F.pad(out, pad, mode="replicate")[0]).reshape(lay.channels, -1)

    def window_rate(self, latents: list[torch.Tensor], cells: list[tuple[int, int, int, int]],
                    rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
        """Estimated bits of the latents under the window rows x cols (each level's cells
        that the window's pixels fall in), from the latents' windows on `cells`."""
        lay = self.layout
        xs, feats, grid = [], [], []
        k = 0
        for lv in range(lay.levels - 1, -1, -1):  # grids in coding order: k counts them
            planes = lay.planes(lv)
            core = (rows[0] >> lv, -(-rows[1] // (1 << lv)), cols[0] >> lv, -(-cols[1] // (1 << lv)))
            parent, parent_at = None, (0, 0)
            if lv + 1 < lay.levels:
                up = lay.planes(lv + 1)
                parent = latents[lv + 1][[up.index(p) for p in planes]]
                parent_at = (cells[lv + 1][0], cells[lv + 1][2])
            x, f = window_inputs(latents[lv], (cells[lv][0], cells[lv][2]), core, parent, parent_at)
            xs.append(x.reshape(-1))
            feats.append(f.reshape(-1, f.shape[-1]))
            grid.append(torch.arange(k, k + len(planes), device=x.device).repeat_interleave(x.shape[1]))
            k += len(planes)
        # every grid's cells through the context model at once (a row per cell, its grid's offsets)
        out = context_net(self.ctx, torch.cat(grid), torch.cat(feats))
        return laplace_bits(torch.cat(xs), out[:, 0], out[:, 1]).sum()

    def rate_bits(self, latents: list[torch.Tensor], fraction: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Estimated bits of all latent grids under the context model (float form of
        context_model.predict), from a sample of the positions of large grids."""
        lay = self.layout
        total = torch.zeros((), device=latents[0].device)
        by_plane = {}
        for k, (lv, plane, _) in enumerate(lay.grids()):
            z = latents[lv][lay.planes(lv).index(plane)][None]
            by_plane[(lv, plane)] = z
            total = total + grid_bits(self.ctx, k, z, by_plane.get((lv + 1, plane)), fraction, generator).sum()
        return total


def refine_torch(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """latents.refine_numpy in torch on an output whose edges are already REFINE_MARGIN
    pixels wider: (C, h + 4, w + 4) -> (C, h, w)."""
    m = REFINE_MARGIN
    h = torch.relu(F.conv2d(x[None], p["conv1"], p["c1"]))
    return x[:, m:-m, m:-m] + F.conv2d(h, p["conv2"], p["c2"])[0]


def context_net(c: dict[str, torch.Tensor], k: int | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The context model in floating point: (n, inputs) -> (n, 2) mean and log-scale; k the
    grid, or (n,) a grid per row."""
    hid = torch.relu(x @ c["c_w1"].T + c["c_b1"])
    hid = torch.relu(hid @ c["c_w2"].T + c["c_b2"])
    return hid @ c["c_w3"].T + c["c_b3"] + c["c_grid"][k]


def grid_bits(c: dict[str, torch.Tensor], k: int, z: torch.Tensor, parent: torch.Tensor | None,
              fraction: float, generator: torch.Generator | None,
              prev: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Estimated bits, per frame (W,), of grid k in frames z (W, h, w), parent (W, h', w') its coarser grid,
    prev (clips) the previous frames' same grid (W, h, w) with a (W,) has-previous flag;
    large grids through a sample of positions (an unbiased estimate)."""
    frames, h, w = z.shape
    n = frames * h * w
    if fraction < 1 and n > SAMPLE_ABOVE:
        m = max(1, min(int(n * fraction), MAX_SAMPLED_LATENTS))
        idx = torch.randint(0, n, (m,), generator=generator).to(z.device)  # drawn on the CPU: any device, same draws
        weight = n / m
    else:
        idx = torch.arange(n, device=z.device)
        weight = 1.0
    t, rest = idx // (h * w), idx % (h * w)
    rows, cols = rest // w, rest % w
    anchor = (rows + cols) % 2 == 0
    centre = t * (h + 2) * (w + 2) + (rows + 1) * (w + 2) + cols + 1
    offsets = (-(w + 2), w + 2, -1, 1)
    pz = F.pad(z, (1, 1, 1, 1)).reshape(-1)
    feats = [pz[centre + o] * (~anchor) for o in offsets]
    if parent is None:
        feats += [torch.zeros(idx.shape[0], device=z.device)] * 5
    else:
        pp = F.pad(up2(TORCH, parent, (h, w)), (1, 1, 1, 1)).reshape(-1)
        feats += [pp[centre]] + [pp[centre + o] for o in offsets]
    feats.append(anchor.float())
    if prev is not None:
        values, has = prev
        pv = F.pad(values, (1, 1, 1, 1)).reshape(-1)
        feats += [pv[centre]] + [pv[centre + o] for o in offsets] + [has[t]]
    out = context_net(c, k, torch.stack(feats, -1))
    bits = laplace_bits(pz[centre], out[:, 0], out[:, 1]) * weight
    return torch.zeros(frames, device=z.device).index_add(0, t, bits)  # per frame


def laplace_bits(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """-log2 P(x) for integer-spaced x under a Laplace discretised to unit bins."""
    scale = torch.exp(log_scale.clamp(cm.LOG_SCALE_MIN / 16, cm.LOG_SCALE_MAX / 16))

    def cdf(v):
        d = v - mean
        return 0.5 - 0.5 * torch.sign(d) * torch.expm1(-d.abs() / scale)

    p = (cdf(x + 0.5) - cdf(x - 0.5)).clamp_min(2.0**-30)
    return -torch.log2(p)


def fit_latents(layout: Layout, image: np.ndarray, cfg: LatentFitConfig,
                progress: Progress | None = None, started: float | None = None,
                after: float | Callable[[float], float] = 0.0,
                estimate_at: int = 10, device: str = "cpu") -> LatentFitResult:
    """Window steps on the CPU train on one thread: their operations are small, and torch's
    threads cost more than they save (docs/rate-distortion.md, "Two cores"); torch's thread
    count is restored afterwards."""
    threads = torch.get_num_threads()
    helper = cfg.window_pixels > 0 and cfg.windows > 1 and helper_allowed(threads, device)
    if cfg.window_pixels > 0 and device == "cpu" and threads > 1:
        torch.set_num_threads(1)
    try:
        return _fit_latents(layout, image, cfg, progress, started, after, estimate_at, device, helper)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _fit_latents(layout: Layout, image: np.ndarray, cfg: LatentFitConfig, progress: Progress | None,
                 started: float | None, after: float | Callable[[float], float],
                 estimate_at: int, device: str, helper: bool = False) -> LatentFitResult:
    """image: (C, H, W) float32 in [0, 1]. started: when the encode began (the estimate
    counts from there), after: the seconds the encode will take after the fit (or a function
    of the seconds per step that gives them), estimate_at:
    the step of the first estimate of the whole encode's seconds (Schedule), device: where
    the model trains (the random draws stay on the CPU, so every device draws the same)."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    target = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    first = None
    if cfg.learned_start:
        from .start import start_for

        first = start_for(layout)
    model = LatentModel(layout, target, cfg.lam, first).to(device)
    nets = model.network_params()
    windowed = cfg.window_pixels > 0
    groups = [] if windowed else [{"params": list(model.latents), "lr": cfg.latent_lr, "base": cfg.latent_lr}]
    opt = torch.optim.Adam(groups + [{"params": nets, "lr": cfg.net_lr, "base": cfg.net_lr}])
    sched = Schedule(cfg, start if started is None else started, after, estimate_at)
    if windowed:
        step = fit_windows(model, nets, target, cfg, sched, opt, gen, progress, device, helper)
    else:
        step = _whole_steps(model, nets, target, cfg, sched, opt, gen, progress, device)
    syn, ctx = model.networks()
    with torch.no_grad():
        lat = [model.latents[lv][layout.planes(lv).index(p)].detach().cpu().numpy().astype(np.float32)
               for lv, p, _ in layout.grids()]
    return LatentFitResult(syn, ctx, lat, step, sched.lam, time.perf_counter() - start, sched.estimated,
                           sched.post_steps())


def _whole_steps(model: LatentModel, nets: list[torch.Tensor], target: torch.Tensor, cfg: LatentFitConfig,
                 sched: Schedule, opt: torch.optim.Optimizer, gen: torch.Generator, progress: Progress | None,
                 device: str) -> int:
    """The sampled whole-image steps (cfg.window_pixels 0: the clip and collection fits'
    recipe, and images before v4) until the schedule ends; returns the steps taken."""
    layout = model.layout
    n = layout.height * layout.width
    flat = target.reshape(layout.channels, -1).to(device)
    sample = n > SAMPLE_ABOVE and cfg.pixel_fraction < 1
    leaves = list(model.latents)
    step = 0
    while step < sched.total:
        ratio = sched.lr_ratio(step)
        for g in opt.param_groups:
            g["lr"] = g["base"] * ratio
        hard = sched.hard(step)
        if hard:
            zs = [z + (torch.round(z) - z).detach() for z in leaves]
        elif cfg.soft_rounding:  # C3 / Cool-chic: soft round, noise, soft round again
            t = sched.temperature(step)
            zs = [soft_round(soft_round(z, t) + cfg.noise * (torch.rand(z.shape, generator=gen).to(device) - 0.5), t)
                  for z in leaves]
        else:
            zs = [z + torch.rand(z.shape, generator=gen).to(device) - 0.5 for z in leaves]
        count = max(1, min(int(n * cfg.pixel_fraction), MAX_SAMPLED_PIXELS))
        pixels = torch.randint(0, n, (count,), generator=gen).to(device) if sample else None
        out = model.render(zs, pixels)
        ref = flat if pixels is None else flat[:, pixels]
        mse = ((out - ref) ** 2).mean()
        bits = model.rate_bits(zs, cfg.rate_fraction, gen)
        loss = mse + sched.lam * bits / n
        if hard:
            sched.steer(step, float(bits.detach()), cfg.steer_aim)
            sched.steer_distortion(step, float(mse.detach()))
        elif (cfg.steer_from is not None and step >= cfg.steer_from * sched.total and cfg.target_bits
              and step % cfg.steer_every == 0):
            with torch.no_grad():  # what the coder would spend on the latents as they are now
                now = model.rate_bits([torch.round(z) for z in leaves], cfg.rate_fraction, gen)
            sched.steer(step, float(now), cfg.steer_aim, cfg.steer_every)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(nets, 1.0)
        opt.step()
        step += 1
        done = sched.finished(step)  # before the report, so that it shows the replanned total
        sched.report(step, mse, progress)
        if done:
            break
    return step
