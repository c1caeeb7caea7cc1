"""The ASMR network as a torch module, for training. The forward pass itself is the
shared one in `synthesis` (the decoder runs the same code on numpy arrays)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .architecture import Architecture
from .synthesis import Ops, coarse, render_padded

TORCH = Ops(sin=torch.sin, cos=torch.cos, permute=lambda x, dims: x.permute(*dims),
            cat=lambda xs, dim: torch.cat(xs, dim=dim), sin_temp=torch.sin,
            sincos=lambda x: torch.cat([torch.sin(x), torch.cos(x)], dim=-1))

MOD_INIT = 0.1
ParamFn = Callable[[str, torch.Tensor], torch.Tensor]


def last_level_frequencies(bases: tuple[int, ...], hidden: int) -> np.ndarray:
    """Per hidden unit, the last level's phase step per pixel along each axis: a DCT-like
    grid k * pi / B (k = 0 .. B-1, up to the Nyquist limit), lowest first, each frequency
    given to two units. One unit alone adds its sinusoid at a fixed amplitude to every
    block (its head weight); two at the same frequency can cancel or add, so a block sets
    each frequency's amplitude and phase through the pair's pre-activations. Adding the
    other diagonal of each 2-D frequency measured the same (docs/architecture.md#measured-constants).
    Returns (hidden, dims)."""
    combos = sorted(itertools.product(*[range(b) for b in bases]),
                    key=lambda k: (sum((v / b) ** 2 for v, b in zip(k, bases)), k))
    return np.array([[v * math.pi / b for v, b in zip(combos[(h // 2) % len(combos)], bases)]
                     for h in range(hidden)], dtype=np.float64).reshape(hidden, len(bases))


class ASMR(nn.Module):
    def __init__(self, arch: Architecture):
        super().__init__()
        self.arch = arch
        self.params = nn.ParameterDict()
        w0 = arch.w0
        for name, shape in arch.param_shapes():
            t = torch.empty(shape)
            if name.startswith("latent"):
                nn.init.zeros_(t)
            elif name == "layer0.weight":
                nn.init.uniform_(t, -1.0 / arch.dims, 1.0 / arch.dims)
            elif name == f"mod{arch.levels - 2}.weight":
                # the last level: a DCT-like basis of paired frequencies up to Nyquist
                # (better than the small random range: docs/architecture.md#measured-constants)
                bases = arch.decomposition.level_bases(arch.levels - 1)
                steps = last_level_frequencies(bases, shape[0])
                # the phase step per pixel is w0 * W * 2 / (B - 1) (digits span [-1, 1])
                scale = np.array([(b - 1) / (2.0 * w0) if b > 1 else 0.0 for b in bases])
                t = torch.from_numpy((steps * scale).astype(np.float32))
            elif name.startswith("mod"):
                # a tenth of SIREN's first-layer range: the full range makes the fine
                # levels start as random per-digit phases and training seed-fragile
                nn.init.uniform_(t, -MOD_INIT / arch.dims, MOD_INIT / arch.dims)
            elif name.endswith(".weight"):
                # SIREN's range for every later layer, the head included: a head 30x wider
                # starts with output noise of about +-1 and trains worse
                # (docs/architecture.md#measured-constants)
                bound = math.sqrt(6.0 / shape[1]) / w0
                nn.init.uniform_(t, -bound, bound)
            elif name == "head.bias":
                nn.init.constant_(t, 0.5)
            else:
                bound = 1.0 / math.sqrt(shape[0]) / w0
                nn.init.uniform_(t, -bound, bound)
            self.params[name.replace(".", "_")] = nn.Parameter(t)
        dec = arch.decomposition
        for level in range(dec.levels):
            self.register_buffer(f"coords{level}", torch.from_numpy(dec.level_coords(level)),
                                 persistent=False)

    def named_tensors(self) -> dict[str, nn.Parameter]:
        return {name: self.params[name.replace(".", "_")] for name, _ in self.arch.param_shapes()}

    def _inputs(self, transform: ParamFn | None):
        p = self.named_tensors()
        if transform is not None:
            p = {k: transform(k, v) for k, v in p.items()}
        return p, [getattr(self, f"coords{i}") for i in range(self.arch.levels)]

    def forward(self, transform: ParamFn | None = None) -> torch.Tensor:
        """Render the padded grid: (channels, *padded sizes). `transform` maps each
        parameter before use (fake quantisation during quantisation-aware training)."""
        return render_padded(TORCH, self.arch, *self._inputs(transform))

    def forward_coarse(self, transform: ParamFn | None = None) -> tuple[torch.Tensor, ...]:
        """The last level's inputs (a, m, head.weight, head.bias), for `synthesis.last_level`:
        training on huge grids runs the last level in chunks of coarse cells."""
        p, coords = self._inputs(transform)
        return (*coarse(TORCH, self.arch, p, coords), p["head.weight"], p["head.bias"])
