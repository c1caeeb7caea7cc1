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


@dataclass(frozen=True)
class VideoPreset:
    """A video network: width, latent size, levels, the last level's bases along time and
    space (the last level is the one evaluated at every sample), the default rate, and a
    wall-clock cap on the fit (the schedule shrinks to fit it; --time-limit overrides)."""

    iters: int
    hidden: int
    latent_dim: int = 4
    levels: int = 6
    time_last: int = 1
    space_last: int = 8
    bpp: float = 0.2
    lr: float = 1e-3
    time_limit: float | None = None


VIDEO_PRESETS: dict[str, VideoPreset] = {
    "fast": VideoPreset(iters=400, hidden=32, latent_dim=2, time_limit=150),
    "default": VideoPreset(iters=1200, hidden=48, time_limit=540),
    "high": VideoPreset(iters=3000, hidden=64),
}
