"""Multi-resolution coordinate decomposition: sizes -> per-axis bases, digits, padding.

Each axis of size N is written in mixed radix with bases B_0..B_{L-1} (coarsest first).
Every axis has the same number of levels L; a base of 1 means "no split at this level".
The product of an axis' bases may exceed N: the extra samples are padding, excluded from
the loss and cropped on decode. Pure functions; no torch.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.errors import AsmrError

DEFAULT_LEVELS = 7
DEFAULT_LAST_BASE = 8
MAX_BASE = 64


@dataclass(frozen=True)
class Decomposition:
    """Per-axis bases (axes in signal order: H, W, or T, H, W) and the true sizes."""

    sizes: tuple[int, ...]
    bases: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.bases) or not self.bases:
            raise AsmrError("bases must give one list per axis")
        levels = {len(b) for b in self.bases}
        if len(levels) != 1:
            raise AsmrError("every axis must have the same number of levels")
        if self.levels < 2:
            raise AsmrError("at least 2 levels are needed")
        for n, b in zip(self.sizes, self.bases):
            if any(x < 1 or x > MAX_BASE for x in b):
                raise AsmrError(f"bases must lie in 1..{MAX_BASE}")
            if math.prod(b) < n:
                raise AsmrError(f"bases {list(b)} cover {math.prod(b)} < axis size {n}")

    @property
    def levels(self) -> int:
        return len(self.bases[0])

    @property
    def dims(self) -> int:
        return len(self.sizes)

    @property
    def padded(self) -> tuple[int, ...]:
        return tuple(math.prod(b) for b in self.bases)

    def grid(self, level: int) -> tuple[int, ...]:
        """Cells per axis after levels 0..level (level -1 gives a single cell)."""
        return tuple(math.prod(b[: level + 1]) for b in self.bases)

    def cells(self, level: int) -> int:
        """C_level: number of distinct coarse cells at that level."""
        return math.prod(self.grid(level))

    def level_bases(self, level: int) -> tuple[int, ...]:
        return tuple(b[level] for b in self.bases)

    def level_coords(self, level: int) -> np.ndarray:
        """Normalised digits of one level, shape (*level_bases, dims), values in [-1, 1]."""
        axes = [normalised_digits(b[level]) for b in self.bases]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack(mesh, axis=-1).astype(np.float32)


def normalised_digits(base: int) -> np.ndarray:
    """Digits 0..base-1 mapped to [-1, 1]; a base of 1 maps to 0."""
    if base == 1:
        return np.zeros(1, dtype=np.float32)
    return (2.0 * np.arange(base, dtype=np.float32) / (base - 1) - 1.0).astype(np.float32)


def digits(x: np.ndarray | int, bases: tuple[int, ...] | list[int]) -> np.ndarray:
    """Mixed-radix digits of sample index x, coarsest level first: shape (..., L)."""
    x = np.asarray(x, dtype=np.int64)
    out = []
    cum = math.prod(bases)
    for b in bases:
        cum //= b
        out.append((x // cum) % b)
    return np.stack(out, axis=-1)


PAD_SLACK = 1.05  # accept up to 5% more padding than the minimum to avoid wasted (base-1) levels


@lru_cache(maxsize=4096)
def _axis_bases(n: int, levels: int, last: int) -> tuple[int, ...]:
    """Bases for one axis: a last base near `last`, then coarser bases with little padding,
    few wasted levels (base 1), balanced, sorted ascending (coarse levels small)."""
    if n <= 1:
        return (1,) * levels
    lasts = sorted({min(last, n)} | {x for x in range(max(2, last - 2), last + 3) if x <= n})
    candidates = []
    for f in lasts:
        need = -(-n // f)
        top = min(MAX_BASE, max(2, math.ceil(need ** (1.0 / (levels - 1))) + 4))
        for combo in itertools.combinations_with_replacement(range(1, top + 1), levels - 1):
            p = math.prod(combo)
            if p >= need:
                candidates.append((p * f, combo.count(1), max(combo), abs(f - last), combo + (f,)))
    if not candidates:
        raise AsmrError(f"an axis of {n} samples cannot be split into {levels} levels")
    least = min(c[0] for c in candidates)
    ok = [c for c in candidates if c[0] <= least * PAD_SLACK]
    return min(ok, key=lambda c: (c[1], c[0], c[2], c[3]))[4]


def levels_for(sizes: tuple[int, ...], most: int = DEFAULT_LEVELS, last: int = DEFAULT_LAST_BASE) -> int:
    """Enough levels to split the longest axis into bases of about 2 above a last base
    near `last`, at most `most`: small images get fewer, shallower levels."""
    n = max(sizes)
    return int(min(most, max(2, math.ceil(math.log2(max(1.0, n / last))) + 1)))


def auto_bases(sizes: tuple[int, ...], levels: int = DEFAULT_LEVELS,
               last: int = DEFAULT_LAST_BASE) -> Decomposition:
    """Choose bases for every axis with the same level count."""
    if any(s < 1 for s in sizes):
        raise AsmrError("every axis needs at least one sample")
    if levels < 2:
        raise AsmrError("at least 2 levels are needed")
    bases = tuple(_axis_bases(int(s), levels, last) for s in sizes)
    return Decomposition(tuple(int(s) for s in sizes), bases)


def parse_bases(text: str, sizes: tuple[int, ...]) -> Decomposition:
    """Parse `4,4,4,8x4,4,6,8` (axes separated by x, levels by commas, coarsest first)."""
    try:
        bases = tuple(tuple(int(v) for v in axis.split(",")) for axis in text.lower().split("x"))
    except ValueError:
        raise AsmrError(f"--bases {text!r}: expected e.g. 4,4,4,8x4,4,6,8") from None
    if len(bases) != len(sizes):
        raise AsmrError(f"--bases gives {len(bases)} axes, the input has {len(sizes)}")
    return Decomposition(tuple(sizes), bases)


def video_bases(sizes: tuple[int, int, int], levels: int, time_last: int, space_last: int) -> Decomposition:
    """(T, H, W) bases: the last time base fixed at `time_last` (so the finest latent grid
    has that many frames per cell), the coarser time levels and both space axes automatic."""
    t = sizes[0]
    if t <= 1:
        tb: tuple[int, ...] = (1,) * levels
    else:
        f = max(1, min(time_last, t))
        rest = -(-t // f)
        tb = (auto_bases((rest,), levels=levels - 1).bases[0] if rest > 1 else (1,) * (levels - 1)) + (f,)
    return Decomposition(tuple(sizes), (tb, *auto_bases(tuple(sizes[1:]), levels, space_last).bases))
