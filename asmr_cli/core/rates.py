"""Rate targets: --bpp, --size and -q become a byte budget (every format family's
encoder fills it its own way)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AsmrError

DEFAULT_QUALITY = 75
FILE_OVERHEAD = 64  # magic, version, lengths, checksums, header (upper bound for 2-D/3-D)


def quality_to_bpp(quality: float) -> float:
    """-q 0..100 -> bits per pixel, monotonic: 0.05 bpp at 0, doubling every 16 steps
    (0.44 at 50, 1.28 at 75, 3.2 at 96)."""
    if not 0 <= quality <= 100:
        raise AsmrError(f"-q {quality}: expected 0..100")
    return 0.05 * 2.0 ** (quality / 16.0)


@dataclass(frozen=True)
class Target:
    budget_bytes: int
    bpp: float | None = None  # the requested rate, when given as one
    cap: bool = False         # --size: a hard limit, never exceeded


def target_for(samples: int, bpp: float | None, size: int | None, quality: float | None) -> Target:
    given = [x is not None for x in (bpp, size, quality)]
    if sum(given) > 1:
        raise AsmrError("give only one of --bpp, --size and -q/--quality")
    if size is not None:
        if size < FILE_OVERHEAD + 256:
            raise AsmrError(f"--size {size}: too small for any file (at least {FILE_OVERHEAD + 256} bytes)")
        return Target(size, cap=True)
    if bpp is None:
        bpp = quality_to_bpp(DEFAULT_QUALITY if quality is None else quality)
        explicit = None
    else:
        if not 0 < bpp <= 64:
            raise AsmrError(f"--bpp {bpp}: expected a positive rate up to 64")
        explicit = bpp
    budget = int(bpp * samples / 8)
    if budget < FILE_OVERHEAD + 256:
        budget = FILE_OVERHEAD + 256
    return Target(budget, bpp=explicit)


VIDEO_QUALITY_SCALE = 1 / 8  # -q for a clip: a video needs far fewer bits per sample than an image


def clip_target(samples: int, opts, default_bpp: float) -> Target:
    """A clip's budget from EncodeOptions: -q maps to VIDEO_QUALITY_SCALE times an image's
    rate; no rate at all is `default_bpp` (the preset's)."""
    quality_bpp = None if opts.quality is None else quality_to_bpp(opts.quality) * VIDEO_QUALITY_SCALE
    bpp = opts.bpp if opts.bpp is not None else quality_bpp
    if bpp is None and opts.size is None:
        bpp = default_bpp
    return target_for(samples, bpp, opts.size, None)
