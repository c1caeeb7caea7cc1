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
