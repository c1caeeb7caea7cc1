"""Format versions 1 and 2: the coordinate network's header and payload.

The header holds everything needed to rebuild the architecture; the payload holds, for
every parameter tensor in `Architecture.param_shapes()` order, its step sizes and its
entropy-coded integers (container/tensors.py). Version 2 lets a latent grid be coded as
residuals along an axis; version 1 is version 2 without that prediction."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from ..container.file import KIND_IMAGE, KIND_VIDEO, MAX_AXIS, MAX_CHANNELS, MAX_SAMPLES, AsmrFile, frame
from ..container.records import Reader, check
from ..container.tensors import MAX_PARAMS, Tensor, pack_tensor, parse_tensor
from ..core.quantize import step_groups
from .architecture import Architecture
from .decomposition import MAX_BASE, Decomposition

VERSION = 2  # written (clips and images encoded with --model coordinate)
READ_VERSIONS = (1, 2)
MAX_DIMS = 3
MAX_LEVELS = 16
MAX_HIDDEN = 1024
MAX_LATENT_DIM = 16


@dataclass
class Header:
    """What the decoder needs besides the weights. Sizes in signal order (T,) H, W."""

    kind: int
    sizes: tuple[int, ...]
    channels: int
    bit_depth: int
    bases: tuple[tuple[int, ...], ...]
    hidden: int
    latent_dim: int
    w0: float
    fps_num: int = 0
    fps_den: int = 1

    @property
    def architecture(self) -> Architecture:
        return Architecture(Decomposition(self.sizes, self.bases), self.hidden, self.channels,
                            self.latent_dim, self.w0)


def pack_header(h: Header) -> bytes:
    dims = len(h.sizes)
    levels = len(h.bases[0])
    out = struct.pack("<BBBBB", h.kind, dims, h.channels, h.bit_depth, levels)
    out += struct.pack(f"<{dims}I", *h.sizes)
    for axis in h.bases:
        out += struct.pack(f"<{levels}B", *axis)
    out += struct.pack("<HBf", h.hidden, h.latent_dim, h.w0)
    out += struct.pack("<II", h.fps_num, h.fps_den)
    return out


def dumps(header: Header, tensors: list[Tensor]) -> bytes:
    return frame(VERSION, pack_header(header), b"".join(pack_tensor(t) for t in tensors))


def overhead(header: Header) -> int:
    """Bytes of a file with this header and an empty payload."""
    return len(dumps(header, []))


def parse_header(data: bytes) -> Header:
    r = Reader(data, "header")
    kind, dims, channels, bit_depth, levels = r.unpack("BBBBB")
    check(kind in (KIND_IMAGE, KIND_VIDEO), f"unknown kind {kind}")
    check(1 <= dims <= MAX_DIMS, f"{dims} axes")
    check(dims == (2 if kind == KIND_IMAGE else 3),
          f"{dims} axes for {'an image' if kind == KIND_IMAGE else 'a video'}")
    check(1 <= channels <= MAX_CHANNELS, f"{channels} channels")
    check(bit_depth in (8, 16), f"bit depth {bit_depth}")
    check(2 <= levels <= MAX_LEVELS, f"{levels} levels")
    sizes = r.unpack(f"{dims}I")
    check(all(1 <= s <= MAX_AXIS for s in sizes), f"axis sizes {sizes}")
    bases = tuple(tuple(r.unpack(f"{levels}B")) for _ in range(dims))
    for n, b in zip(sizes, bases):
        check(all(1 <= x <= MAX_BASE for x in b) and math.prod(b) >= n, f"bases {b} for axis {n}")
        check(math.prod(b) <= 2 * MAX_AXIS, "padded axis too large")
    check(math.prod(math.prod(b) for b in bases) <= MAX_SAMPLES, "too many samples")
    hidden, latent_dim, w0 = r.unpack("HBf")
    check(1 <= hidden <= MAX_HIDDEN, f"hidden width {hidden}")
    check(latent_dim <= MAX_LATENT_DIM, f"latent size {latent_dim}")
    check(math.isfinite(w0) and 0 < w0 < 1e4, f"w0 {w0}")
    fps_num, fps_den = r.unpack("II")
    check(fps_den > 0, "frame rate denominator 0")
    check(r.done(), "header has trailing bytes")
    h = Header(kind, tuple(sizes), channels, bit_depth, bases, hidden, latent_dim, w0, fps_num, fps_den)
    check(h.architecture.param_count() <= MAX_PARAMS, "too many parameters")
    return h


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    h = parse_header(header)
    r = Reader(payload, "payload")
    tensors = [parse_tensor(r, name, shape, step_groups(name, shape), version == 2)
               for name, shape in h.architecture.param_shapes()]
    check(r.done(), "payload has trailing bytes")
    return AsmrFile(h, tensors, version)
