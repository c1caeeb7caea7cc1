"""Weight quantisation: uniform steps per output row (weights) or per tensor (biases,
latent grids), the integers the bitstream stores, and the straight-through fake
quantisation that lets training adapt to them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuantConfig:
    weight_bits: int = 8
    latent_bits: int = 6


def step_groups(name: str, shape: tuple[int, ...]) -> int:
    """How many step sizes a tensor has: one per output row for weight matrices."""
    return shape[0] if name.endswith(".weight") else 1


def choose_steps(name: str, values: np.ndarray, cfg: QuantConfig) -> np.ndarray:
    """float32 step per group so that the largest magnitude maps to 2^(bits-1) - 1."""
    bits = cfg.latent_bits if name.startswith("latent") else cfg.weight_bits
    groups = step_groups(name, values.shape)
    peak = np.abs(values.reshape(groups, -1)).max(axis=1)
    qmax = 2 ** (bits - 1) - 1
    steps = np.where(peak > 0, peak / qmax, 1.0)
    return steps.astype(np.float32)


def _expand(steps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return steps.reshape(len(steps), *([1] * (len(shape) - 1))) if len(steps) > 1 else steps[:1]


def quantize(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    return np.rint(values / _expand(steps, values.shape)).astype(np.int32)


def dequantize(q: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The decoder's float32 weights; the encoder measures quality with these too."""
    return (q.astype(np.float32) * _expand(steps.astype(np.float32), q.shape)).astype(np.float32)


def fake_quant(t, steps):
    """Straight-through rounding of a torch tensor onto the step grid."""
    import torch

    s = torch.as_tensor(_expand(steps, tuple(t.shape)), dtype=t.dtype, device=t.device)
    return t + (torch.round(t / s) * s - t).detach()
