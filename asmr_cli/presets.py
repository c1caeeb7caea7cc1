"""Encoder presets: data, not code paths. A preset sets the effort and the network's
shape; the rate (and with it the width) comes from -q / --bpp / --size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    iters: int
    latent_dim: int = 0  # latent grids did not pay on Kodak at equal rate (docs/rate-distortion.md)
    levels: int = 7
    lr: float = 1e-3


PRESETS: dict[str, Preset] = {
    "fast": Preset(iters=600),
    "default": Preset(iters=1800),
    "high": Preset(iters=5000),
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
