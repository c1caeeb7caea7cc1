"""A clip as data: (T, H, W, C) uint8 RGB frames and a frame rate; a range of frames;
what the readers share (the collector that keeps a range within the sample limit)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError

DEFAULT_FPS = Fraction(25)
DEFAULT_MAX_SAMPLES = 1_000_000_000  # T * H * W


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, C) uint8, C = 3
    fps: Fraction

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    @property
    def channels(self) -> int:
        return self.frames.shape[3]

    def as_float(self) -> np.ndarray:
        """(C, T, H, W) float32 in [0, 1]."""
        return np.ascontiguousarray(np.moveaxis(self.frames, -1, 0), dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, end) of a clip; end None means to the last frame."""

    start: int = 0
    end: int | None = None

    def resolve(self, count: int) -> tuple[int, int]:
        end = count if self.end is None else min(self.end, count)
        if self.start >= end:
            raise AsmrError(f"--frames {self.start}:{self.end if self.end is not None else ''}: "
                            f"no frames selected (the clip has {count})")
        return self.start, end


def parse_frames(text: str | None) -> FrameRange | None:
    """`START:END` (0-based, END excluded, either side may be empty) or one frame `N`."""
    if text is None:
        return None
    first, sep, last = text.strip().partition(":")
    try:
        start = int(first) if first.strip() else 0
        end = int(last) if last.strip() else None
        if not sep:
            end = start + 1
    except ValueError:
        raise AsmrError(f"--frames {text!r}: expected START:END, e.g. 0:60") from None
    if start < 0 or (end is not None and end <= start):
        raise AsmrError(f"--frames {text!r}: expected 0 <= START < END")
    return FrameRange(start, end)


class Collector:
    """Keeps frames [start, end) of a stream, checks size and the sample limit."""

    def __init__(self, path: Path, rng: FrameRange, max_samples: int, max_pixels: int | None = None):
        self.path, self.rng, self.max_samples, self.max_pixels = path, rng, max_samples, max_pixels
        self.index, self.frames = 0, []

    @property
    def done(self) -> bool:
        return self.rng.end is not None and self.index >= self.rng.end

    def add(self, frame: np.ndarray) -> None:
        if self.max_pixels is not None and frame.shape[0] * frame.shape[1] > self.max_pixels:
            raise AsmrError(f"{self.path}: frames of {frame.shape[1]}x{frame.shape[0]} are over the "
                            f"{self.max_pixels}-pixel limit (raise it with --max-pixels)")
        if self.rng.start <= self.index and not self.done:
            if self.frames and frame.shape != self.frames[0].shape:
                raise AsmrError(f"{self.path}: frame {self.index} is {frame.shape[1]}x{frame.shape[0]}, "
                                f"earlier frames are {self.frames[0].shape[1]}x{self.frames[0].shape[0]}")
            if (len(self.frames) + 1) * frame.shape[0] * frame.shape[1] > self.max_samples:
                raise AsmrError(f"{self.path}: more than {self.max_samples} samples "
                                "(select fewer with --frames)")
            self.frames.append(frame)
        self.index += 1

    def clip(self, fps: Fraction) -> Clip:
        if not self.frames:
            return Clip(np.zeros((0, 1, 1, 3), np.uint8), fps)
        return Clip(np.stack(self.frames), fps)


def frame_psnr(ref: np.ndarray, test: np.ndarray) -> list[float]:
    """PSNR in dB of each frame (8-bit RGB)."""
    from ..core.metrics import psnr

    return [psnr(a, b, 255.0) for a, b in zip(ref, test)]


def fps_pair(fps) -> tuple[int, int]:
    """A frame rate as the (numerator, denominator) a header stores; (0, 1) when unknown."""
    f = Fraction(fps).limit_denominator(1 << 20) if fps else Fraction(0)
    return (int(f.numerator), int(f.denominator)) if f > 0 else (0, 1)
