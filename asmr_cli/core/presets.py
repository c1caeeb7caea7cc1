"""Encoder presets: data, not code paths. A preset sets the effort and the network's
shape; the rate (and with it the width) comes from -q / --bpp / --size."""

from __future__ import annotations

from dataclasses import dataclass

# Latent grids (one value per coarse cell and layer) pay from about this rate up and cost
# at lower rates, where their bits are better spent on the weights (docs/rate-distortion.md).
LATENT_MIN_BPP = 0.4
# Wider networks need a smaller step since the last level starts with frequencies up to
# Nyquist (docs/architecture.md#measured-constants).
WIDE_HIDDEN = 64


@dataclass(frozen=True)
class Preset:
    iters: int
    latent_dim: int | None = None  # None: 1 at LATENT_MIN_BPP and above, 0 below
    levels: int = 7
    # 4e-3 diverges on Kodak; 2e-3 beats 1e-3 (docs/architecture.md#measured-constants)
    lr: float = 2e-3

    def lr_for(self, hidden: int) -> float:
        return self.lr if hidden <= WIDE_HIDDEN else self.lr / 2

    def latents_for(self, bpp: float) -> int:
        if self.latent_dim is not None:
            return self.latent_dim
        return 1 if bpp >= LATENT_MIN_BPP else 0


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


@dataclass(frozen=True)
class LatentPreset:
    """An image preset of format version 3 (latent pyramid): training steps, a wall-clock
    cap on the training (the schedule shrinks to fit it; --time-limit overrides), the
    per-pixel synthesis width and the most pyramid levels."""

    iters: int
    time_limit: float | None
    hidden: int = 16
    levels: int = 7


# window steps (issue 22) cost 15-50 ms on a Kodak image at one thread: the caps, not the
# step counts, set the effort; fast's cap leaves a Kodak encode under 30 s with its rate fit
LATENT_PRESETS: dict[str, LatentPreset] = {
    "fast": LatentPreset(iters=4000, time_limit=20),
    "default": LatentPreset(iters=20000, time_limit=150),
    "high": LatentPreset(iters=80000, time_limit=840),
}


# Clips (format version 4): the whole clip's training time; a step trains a window of
# frames (clip_fit.WINDOW_PIXELS), so the steps a clip needs grow with its length.
CLIP_PRESETS: dict[str, LatentPreset] = {
    "fast": LatentPreset(iters=600, time_limit=120),
    "default": LatentPreset(iters=4000, time_limit=480),
    "high": LatentPreset(iters=16000, time_limit=1800),
}
