"""What an ASMR network is made of: the decomposition, widths and the named parameter
shapes. Shared by the torch model, the numpy renderer, the bitstream and the MAC count,
so that none of them can disagree about a shape. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .decomposition import Decomposition

W0 = 30.0


@dataclass(frozen=True)
class Architecture:
    """An ASMR network: L-1 sine layers of width `hidden`, a linear head to `channels`.

    Layer i (0..L-2) reads h_i on the level-i grid; level i+1 enters through the linear
    modulator `mod{i}`; with `latent_dim > 0` each layer also gets a learnable latent
    grid (one vector per level-i cell) projected by `proj{i}` -- spatially varying
    modulation that stays on the shared grid.
    """

    decomposition: Decomposition
    hidden: int
    channels: int
    latent_dim: int = 0
    w0: float = W0

    @property
    def levels(self) -> int:
        return self.decomposition.levels

    @property
    def dims(self) -> int:
        return self.decomposition.dims

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every parameter, in bitstream order."""
        dec, hid, k = self.decomposition, self.hidden, self.latent_dim
        shapes: list[tuple[str, tuple[int, ...]]] = []
        for i in range(self.levels - 1):
            fan_in = self.dims if i == 0 else hid
            shapes.append((f"layer{i}.weight", (hid, fan_in)))
            shapes.append((f"layer{i}.bias", (hid,)))
            shapes.append((f"mod{i}.weight", (hid, self.dims)))
            if k:
                shapes.append((f"latent{i}", (*dec.grid(i), k)))
                shapes.append((f"proj{i}.weight", (hid, k)))
        shapes.append(("head.weight", (self.channels, hid)))
        shapes.append(("head.bias", (self.channels,)))
        return shapes

    def param_count(self) -> int:
        return sum(math.prod(s) for _, s in self.param_shapes())


def macs_per_pixel(arch: Architecture) -> float:
    """The paper's count (method note, section 3): every layer costs (fan_in*fan_out +
    fan_out) on the C_i cells it runs on; modulators cost dim_in*hidden per table row;
    modulation adds cost hidden per C_i. Latent projections (our addition) cost
    latent_dim*hidden on C_i cells. Divided by the padded sample count N."""
    dec = arch.decomposition
    n = math.prod(dec.padded)
    hid, d, k = arch.hidden, arch.dims, arch.latent_dim
    total = 0.0
    for i in range(arch.levels - 1):
        fan_in = d if i == 0 else hid
        cells = dec.cells(i)
        total += (fan_in * hid + hid) * cells
        total += d * hid * math.prod(dec.level_bases(i + 1))
        total += hid * cells
        total += k * hid * cells
    total += (hid * arch.channels + arch.channels) * n  # head, per sample
    return total / n


def siren_macs_per_pixel(arch: Architecture) -> float:
    """The per-pixel SIREN of the same widths and depth: every layer at every sample."""
    hid, d = arch.hidden, arch.dims
    total = d * hid + hid
    total += (arch.levels - 2) * (hid * hid + hid)
    total += hid * arch.channels + arch.channels
    return float(total)
