"""What an encode is asked for and what it returns: the one options record every format
family reads (each the fields that concern it), and the limits every decoder checks
before any entropy decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import AsmrError
from .presets import DEFAULT_PRESET

DEFAULT_MAX_PIXELS = 64_000_000


@dataclass
class EncodeOptions:
    preset: str = DEFAULT_PRESET
    bases: str | None = None
    hidden: int | None = None
    latent_dim: int | None = None
    levels: int | None = None
    iters: int | None = None
    time_limit: float | None = None
    bpp: float | None = None
    size: int | None = None
    quality: float | None = None
    psnr: float | None = None  # format-3 images: the PSNR (dB) to land on
    seed: int = 0
    device: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    model: str = "auto"  # images: latent (format 3) | coordinate (the ASMR network alone, format 2)
    motion: bool = False  # clips: format 9 (hierarchical B frames, motion-compensated) instead of format 4

    def coordinate_image(self) -> bool:
        """Whether the coordinate-network family encodes: asked for by --model, or implied
        by an option only that network has (--bases, --latent-dim)."""
        if self.model not in ("auto", "latent", "coordinate"):
            raise AsmrError(f"--model {self.model}: expected latent or coordinate")
        implied = self.bases is not None or self.latent_dim is not None
        if self.model == "latent" and implied:
            raise AsmrError("--bases and --latent-dim describe the coordinate network (--model coordinate)")
        return self.model == "coordinate" or (self.model == "auto" and implied)


@dataclass
class EncodeResult:
    data: bytes
    stats: dict


def check_effort(iters: int, time_limit: float | None) -> None:
    if iters < 1:
        raise AsmrError("--iters must be at least 1")
    if time_limit is not None and time_limit <= 0:
        raise AsmrError("--time-limit must be positive")


def check_samples(sizes: tuple[int, ...], max_pixels: int) -> None:
    """Refuse, from the header alone, a file declaring more samples than max_pixels (the
    encoder's limit too). A small network can describe a huge image, so the cap follows
    the declared size, not the file size."""
    samples = math.prod(sizes)
    if samples > max_pixels:
        shape = "x".join(str(s) for s in reversed(sizes[-2:]))
        frames = f"{sizes[0]} frames of " if len(sizes) == 3 else ""
        raise AsmrError(f"the file declares {frames}{shape} = {samples} samples, over the {max_pixels}-pixel "
                        "limit (raise it with --max-pixels)")
