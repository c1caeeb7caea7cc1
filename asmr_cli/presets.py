"""Encoder presets: data, not code paths. Each names an architecture and an effort."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    hidden: int
    latent_dim: int
    levels: int
    iters: int
    weight_bits: int
    latent_bits: int
    lr: float = 1e-3


PRESETS: dict[str, Preset] = {
    "fast": Preset(hidden=48, latent_dim=2, levels=7, iters=800, weight_bits=7, latent_bits=5),
    "default": Preset(hidden=64, latent_dim=2, levels=7, iters=2500, weight_bits=8, latent_bits=6),
    "high": Preset(hidden=96, latent_dim=2, levels=7, iters=3500, weight_bits=8, latent_bits=6),
}
DEFAULT_PRESET = "default"
