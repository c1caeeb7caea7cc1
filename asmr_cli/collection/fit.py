"""Training a collection (format 5): one synthesis and one context network shared by all
members, each member its own latent pyramid; latent/fit.py's model, loss and schedule.

Members are kept in buckets of one size, their latents stacked along a member axis (as
a clip's frames are, clip/fit.py), so a step renders a batch of same-size members at once.
A step trains one bucket's random batch of about BATCH_PIXELS pixels: the networks with
Adam, the batch's latents with Adam kept per member (bias-corrected by each member's own
visit count), so memory is the members' latents and pixels plus one batch, and a step's
cost does not grow with the number of members. With `frozen` networks (adding a member
to an existing collection) only the latents train."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..latent.fit import (
    TORCH,
    LatentFitConfig,
    add_synthesis,
    bisect_lambda,
    context_parameters,
    grid_bits,
    level_gains,
    residual_pyramid,
    rounded_entropy,
    sampled_planes,
    trained_rate_ratio,
)
from ..latent.latents import Layout, colour_transform, features, mlp
from ..latent.schedule import Progress, Schedule

BATCH_PIXELS = 1 << 16  # pixels a step trains (at least one member)
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
LAMBDA_SAMPLE = 48  # members the choice of lam looks at


@dataclass
class CollectionFit:
    synthesis: dict[str, np.ndarray]
    context: dict[str, np.ndarray]
    latents: list[list[np.ndarray]]  # per member, float grids in Layout.grids() order
    iterations: int
    lam: float
    seconds: float


def choose_lambda(ref: Layout, layouts: list[Layout], images: list[np.ndarray], target_bits: float) -> float:
    """latent/fit.choose_lambda over a sample of the members, scaled to all of them."""
    n = sum(lay.height * lay.width for lay in layouts)
    ratio = trained_rate_ratio(target_bits / n)
    pick = np.unique(np.linspace(0, len(images) - 1, min(LAMBDA_SAMPLE, len(images))).astype(int))
    weight = n / sum(layouts[i].height * layouts[i].width for i in pick)
    unit = level_gains(ref, 1.0)
    gen = torch.Generator().manual_seed(0)
    planes = [p for i in pick
              for p in sampled_planes(residual_pyramid(layouts[i], torch.from_numpy(images[i])), gen)]
    return bisect_lambda(lambda lam: rounded_entropy(planes, unit, lam) * ratio * weight, target_bits)


def frozen_gains(ref: Layout, synthesis: dict[str, np.ndarray], inv: torch.Tensor) -> list[float]:
    """The per-level steps trained networks work in: the scale of each level's linear
    path (its first C rows) against the inverse colour transform, so that a new member's
    starting pyramid decodes as the members' did."""
    out = []
    for lv in range(ref.levels):
        base = inv[:, list(ref.planes(lv))].numpy().astype(np.float64)
        lin = np.asarray(synthesis[f"mod{lv}"][:ref.channels], np.float64)
        out.append(float(max(1e-6, (lin * base).sum() / max(1e-12, (base * base).sum()))))
    return out


class CollectionModel(nn.Module):
    def __init__(self, ref: Layout, layouts: list[Layout], images: list[np.ndarray], lam: float,
                 frozen: tuple[dict, dict] | None = None):
        super().__init__()
        self.ref = ref
        c = ref.channels
        inv = torch.from_numpy(np.linalg.inv(colour_transform(c))).float()
        self.gains = level_gains(ref, lam) if frozen is None else frozen_gains(ref, frozen[0], inv)
        add_synthesis(self, ref, inv)
        self.ctx = nn.ParameterDict(context_parameters(ref))
        # buckets of one size: (layout, member indices, target (C, N, H, W), latents per level (planes, N, h, w))
        sizes: dict[tuple[int, int], list[int]] = {}
        for i, lay in enumerate(layouts):
            sizes.setdefault((lay.height, lay.width), []).append(i)
        self.buckets = []
        for idx in sizes.values():
            lay = layouts[idx[0]]
            target = torch.from_numpy(np.stack([images[i] for i in idx], 1))
            pyramids = [residual_pyramid(lay, torch.from_numpy(images[i])) for i in idx]
            lat = [torch.stack([p[lv] for p in pyramids], 1) / self.gains[lv] for lv in range(ref.levels)]
            self.buckets.append((lay, idx, target, lat))
        if frozen is not None:
            syn, ctx_values = frozen
            with torch.no_grad():
                for lv in range(ref.levels):
                    self.mods[lv].copy_(torch.from_numpy(syn[f"mod{lv}"]) / self.gains[lv])
                for name in ("b1", "w2", "b2", "head_w", "head_b"):
                    getattr(self, name).copy_(torch.from_numpy(syn[name]))
                for name, v in ctx_values.items():
                    self.ctx[name].copy_(torch.from_numpy(np.asarray(v, np.float32)))
            return
        with torch.no_grad():  # each grid's Laplace starts at the members' centre and spread
            for k, (lv, p, _) in enumerate(ref.grids()):
                pi = ref.planes(lv).index(p)
                z = torch.cat([b[3][lv][pi].reshape(-1) for b in self.buckets])
                centre = float(z.mean()) if lv == ref.levels - 1 else 0.0
                self.ctx["c_grid"][k, 0] = centre
                self.ctx["c_grid"][k, 1] = math.log(max(0.1, float((z - centre).abs().mean())))

    def synthesis_params(self) -> dict[str, torch.Tensor]:
        p = {f"mod{lv}": self.mods[lv] * self.gains[lv] for lv in range(self.ref.levels)}
        p.update(b1=self.b1, w2=self.w2, b2=self.b2, head_w=self.head_w, head_b=self.head_b)
        return p

    def networks(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        with torch.no_grad():
            syn = {k: v.detach().numpy().astype(np.float32) for k, v in self.synthesis_params().items()}
            ctx = {k: v.detach().numpy().astype(np.float32) for k, v in self.ctx.items()}
        return syn, ctx

    def render(self, lay: Layout, latents: list[torch.Tensor]) -> torch.Tensor:
        """(C, m * H * W) for latents per level (planes, m, h, w)."""
        p = self.synthesis_params()
        a = features(TORCH, lay, p, latents)  # (F * m, H, W)
        return mlp(TORCH, lay, p, a.reshape(lay.features, -1))

    def bits(self, lay: Layout, latents: list[torch.Tensor], fraction: float,
             generator: torch.Generator) -> torch.Tensor:
        """Estimated bits per member (m,)."""
        total = torch.zeros(latents[0].shape[1])
        for k, (lv, plane, _) in enumerate(lay.grids()):
            z = latents[lv][lay.planes(lv).index(plane)]
            parent = latents[lv + 1][lay.planes(lv + 1).index(plane)] if lv + 1 < lay.levels else None
            total = total + grid_bits(self.ctx, k, z, parent, fraction, generator)
        return total


def fit_collection(ref: Layout, layouts: list[Layout], images: list[np.ndarray], cfg: LatentFitConfig,
                   progress: Progress | None = None, frozen: tuple[dict, dict] | None = None) -> CollectionFit:
    """images: per member (C, H, W) float32 on [0, 1]; layouts: per member (ref's networks)."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = CollectionModel(ref, layouts, images, cfg.lam, frozen)
    nets = [p for p in model.parameters()]
    opt = None if frozen is not None else torch.optim.Adam(nets, lr=cfg.net_lr)
    if frozen is not None:
        for p in nets:
            p.requires_grad_(False)
    count = len(images)
    pixels = torch.tensor([lay.height * lay.width for lay in layouts], dtype=torch.float64)
    bucket_pixels = np.array([float(pixels[idx].sum()) for _, idx, _, _ in model.buckets])
    share = bucket_pixels / bucket_pixels.sum()
    moments = [[(torch.zeros_like(z), torch.zeros_like(z)) for z in b[3]] for b in model.buckets]
    visits = [torch.zeros(len(b[1])) for b in model.buckets]
    member_bits = torch.zeros(count, dtype=torch.float64)
    seen = torch.zeros(count, dtype=torch.bool)
    sched = Schedule(cfg, start)
    b1, b2 = ADAM_BETAS
    rng = np.random.default_rng(cfg.seed)
    step = 0
    while step < sched.total:
        ratio = sched.lr_ratio(step)
        if opt is not None:
            opt.param_groups[0]["lr"] = cfg.net_lr * ratio
        hard = sched.hard(step)
        bi = int(rng.choice(len(model.buckets), p=share)) if len(model.buckets) > 1 else 0
        lay, idx, target, lat = model.buckets[bi]
        per = lay.height * lay.width
        m = max(1, min(len(idx), BATCH_PIXELS // per))
        pick = torch.from_numpy(rng.permutation(len(idx))[:m])
        win = [z[:, pick].clone().requires_grad_(True) for z in lat]
        if hard:
            zs = [z + (torch.round(z) - z).detach() for z in win]
        else:
            zs = [z + torch.rand(z.shape, generator=gen) - 0.5 for z in win]
        out = model.render(lay, zs)
        ref_px = target[:, pick].reshape(lay.channels, -1)
        mse = ((out - ref_px) ** 2).mean()
        bits = model.bits(lay, zs, cfg.rate_fraction, gen)
        loss = mse + sched.lam * bits.sum() / (m * per)
        if hard:
            members = torch.tensor([idx[j] for j in pick.tolist()])
            member_bits[members] = bits.detach().double()
            seen[members] = True
            bpp = float(member_bits[seen].sum() / pixels[seen].sum())
            sched.steer(step, bpp * float(pixels.sum()))
        if opt is not None:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if opt is not None:
            torch.nn.utils.clip_grad_norm_(nets, 1.0)
            opt.step()
        with torch.no_grad():  # Adam on the batch's latents, bias-corrected per member
            v = visits[bi]
            v[pick] += 1
            shape = (1, m, 1, 1)
            c1 = (1 - b1 ** v[pick]).view(shape)
            c2 = (1 - b2 ** v[pick]).view(shape)
            lr = cfg.latent_lr * ratio
            for z, w, (mo, ve) in zip(lat, win, moments[bi]):
                g = w.grad
                ms = mo[:, pick] * b1 + g * (1 - b1)
                vs = ve[:, pick] * b2 + g * g * (1 - b2)
                mo[:, pick] = ms
                ve[:, pick] = vs
                z[:, pick] -= lr * (ms / c1) / ((vs / c2).sqrt() + ADAM_EPS)
        step += 1
        sched.report(step, mse, progress)
        if sched.finished(step):
            break
    syn, ctx = model.networks()
    out_latents: list[list[np.ndarray]] = [[] for _ in range(count)]
    for lay, idx, _, lat in model.buckets:
        for j, i in enumerate(idx):
            out_latents[i] = [lat[lv][lay.planes(lv).index(p), j].numpy().astype(np.float32)
                              for lv, p, _ in lay.grids()]
    return CollectionFit(syn, ctx, out_latents, step, sched.lam, time.perf_counter() - start)
