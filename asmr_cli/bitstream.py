"""The .asmr container: magic, version, header, payload, crc32 on each part.

Layout (all integers little-endian; docs/format.md lists every field):

    magic "ASMR" | version u8 | header_len u32 | header | header_crc u32
    | payload_len u32 | payload | payload_crc u32

The header holds everything needed to rebuild the architecture; the payload holds, for
every parameter tensor in `Architecture.param_shapes()` order, its step sizes and its
entropy-coded integers. Parsing never trusts a length: each one is checked against the
bytes that remain and against fixed caps before anything is allocated.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import entropy
from .architecture import Architecture
from .decomposition import MAX_BASE, Decomposition
from .errors import AsmrError
from .quantize import step_codes, step_groups, step_values

MAGIC = b"ASMR"
# 4: clips as latent pyramids per frame under a context model with temporal context
# 3: images as a latent pyramid under a context model (LatentHeader; docs/format.md)
# 2: a tensor may be coded as residuals along an axis (latent grids); clips are written so
# 1: version 2 without prediction
VERSION = 2  # coordinate networks (clips, and images encoded with --model coordinate)
LATENT_VERSION = 3
CLIP_VERSION = 4
READ_VERSIONS = (1, 2, 3, 4)
MAX_GROUP = 1 << 12  # frames in a group of a version-4 clip

KIND_IMAGE, KIND_VIDEO = 0, 1
MAX_DIMS = 3
MAX_LEVELS = 16
MAX_AXIS = 1 << 20
MAX_SAMPLES = 1 << 34  # T*H*W declared by a header
MAX_HIDDEN = 1024
MAX_LATENT_DIM = 16
MAX_CHANNELS = 4
MAX_PARAMS = 1 << 26
MAX_HEADER = 4096
MAX_SYNTH_HIDDEN = 64


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


@dataclass
class LatentHeader:
    """Version 3: an image held by a latent pyramid (asmr_cli.latents); version 4: a clip,
    one pyramid per frame, frames in groups that share the networks (sizes (T, H, W))."""

    sizes: tuple[int, ...]
    channels: int
    bit_depth: int
    levels: int
    hidden: int
    context_hidden: int
    kind: int = KIND_IMAGE
    fps_num: int = 0
    fps_den: int = 1
    group: int = 1  # clips: frames per group (the last group may be shorter)

    @property
    def layout(self):
        """The layout of one image (of one frame of a clip)."""
        from .latents import Layout

        return Layout(self.sizes[-2], self.sizes[-1], self.channels, self.levels, self.hidden, self.context_hidden)

    @property
    def frames(self) -> int:
        return self.sizes[0] if self.kind == KIND_VIDEO else 1

    def group_spans(self) -> list[tuple[int, int]]:
        """[start, end) frames of each group."""
        return [(s, min(self.frames, s + self.group)) for s in range(0, self.frames, self.group)]


@dataclass
class Tensor:
    """One parameter tensor as stored: float32 step sizes and the coded integers."""

    steps: np.ndarray
    coded: entropy.CodedTensor


def prediction_axes(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axes a tensor may be predicted along: the grid axes of a latent grid (not its
    channel axis). Every other tensor is coded as is."""
    return tuple(range(len(shape) - 1)) if name.startswith("latent") else ()


def code_tensor(name: str, q: np.ndarray, steps: np.ndarray) -> Tensor:
    """A quantised tensor as the file stores it (the encoder's one way to code one)."""
    return Tensor(steps, entropy.encode(q, prediction_axes(name, q.shape)))


@dataclass
class AsmrFile:
    header: Header | LatentHeader
    tensors: list[Tensor] = field(default_factory=list)
    version: int = VERSION  # as read; written at VERSION, or LATENT_VERSION / CLIP_VERSION for a LatentHeader
    grids: list = field(default_factory=list)  # version 3: context_model.CodedGrid per latent grid


# -- writing -----------------------------------------------------------------------------

def _pack_latent_header(h: LatentHeader) -> bytes:
    out = struct.pack("<BBBBIIBB", h.kind, h.channels, h.bit_depth, h.levels, *h.sizes[-2:], h.hidden,
                      h.context_hidden)
    if h.kind == KIND_VIDEO:
        out += struct.pack("<IIII", h.sizes[0], h.group, h.fps_num, h.fps_den)
    return out


def _pack_grid(g) -> bytes:
    """lo zigzag-varint | hi-lo varint | word count varint | words u32."""
    words = np.ascontiguousarray(g.words, dtype="<u4")
    return _varint(_zigzag(g.lo)) + _varint(g.hi - g.lo) + _varint(words.size) + words.tobytes()


def _pack_header(h: Header) -> bytes:
    dims = len(h.sizes)
    levels = len(h.bases[0])
    out = struct.pack("<BBBBB", h.kind, dims, h.channels, h.bit_depth, levels)
    out += struct.pack(f"<{dims}I", *h.sizes)
    for axis in h.bases:
        out += struct.pack(f"<{levels}B", *axis)
    out += struct.pack("<HBf", h.hidden, h.latent_dim, h.w0)
    out += struct.pack("<II", h.fps_num, h.fps_den)
    return out


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def _unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2


def pack_tensor(t: Tensor) -> bytes:
    """step codes (u8 per group) | model u8 (low 4 bits: the model, high 4: prediction)
    | lo zigzag-varint | hi-lo varint | [2*mean zigzag-varint | scale f16]
    | word count varint | words u32."""
    c = t.coded
    out = step_codes(t.steps).tobytes() + struct.pack("<B", c.model | c.predict << 4)
    out += _varint(_zigzag(c.lo)) + _varint(c.hi - c.lo)
    if c.model != entropy.CONSTANT:
        out += _varint(_zigzag(int(round(2 * c.mean)))) + struct.pack("<e", c.scale)
    words = np.ascontiguousarray(c.words, dtype="<u4")
    return out + _varint(words.size) + words.tobytes()


def dumps(f: AsmrFile) -> bytes:
    latent = isinstance(f.header, LatentHeader)
    header = _pack_latent_header(f.header) if latent else _pack_header(f.header)
    payload = b"".join(pack_tensor(t) for t in f.tensors) + b"".join(_pack_grid(g) for g in f.grids)
    version = (CLIP_VERSION if f.header.kind == KIND_VIDEO else LATENT_VERSION) if latent else VERSION
    return (MAGIC + struct.pack("<BI", version, len(header)) + header
            + struct.pack("<I", zlib.crc32(header)) + struct.pack("<I", len(payload)) + payload
            + struct.pack("<I", zlib.crc32(payload)))


def overhead(header: Header | LatentHeader) -> int:
    """Bytes of a file with this header and an empty payload."""
    return len(dumps(AsmrFile(header, [])))


# -- reading -----------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise AsmrError(f"corrupt or truncated file: {self.what} ends early")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def varint(self) -> int:
        v, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            v |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise AsmrError(f"corrupt file: over-long number in {self.what}")

    def array(self, dtype: str, count: int, cap: int) -> np.ndarray:
        if count > cap:
            raise AsmrError(f"corrupt file: {self.what} declares {count} values (cap {cap})")
        size = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * size), dtype=dtype).copy()


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise AsmrError(f"corrupt file: {msg}")


def _parse_header(data: bytes) -> Header:
    r = _Reader(data, "header")
    kind, dims, channels, bit_depth, levels = r.unpack("BBBBB")
    _check(kind in (KIND_IMAGE, KIND_VIDEO), f"unknown kind {kind}")
    _check(1 <= dims <= MAX_DIMS, f"{dims} axes")
    _check(dims == (2 if kind == KIND_IMAGE else 3),
           f"{dims} axes for {'an image' if kind == KIND_IMAGE else 'a video'}")
    _check(1 <= channels <= MAX_CHANNELS, f"{channels} channels")
    _check(bit_depth in (8, 16), f"bit depth {bit_depth}")
    _check(2 <= levels <= MAX_LEVELS, f"{levels} levels")
    sizes = r.unpack(f"{dims}I")
    _check(all(1 <= s <= MAX_AXIS for s in sizes), f"axis sizes {sizes}")
    bases = tuple(tuple(r.unpack(f"{levels}B")) for _ in range(dims))
    for n, b in zip(sizes, bases):
        _check(all(1 <= x <= MAX_BASE for x in b) and math.prod(b) >= n, f"bases {b} for axis {n}")
        _check(math.prod(b) <= 2 * MAX_AXIS, "padded axis too large")
    _check(math.prod(math.prod(b) for b in bases) <= MAX_SAMPLES, "too many samples")
    hidden, latent_dim, w0 = r.unpack("HBf")
    _check(1 <= hidden <= MAX_HIDDEN, f"hidden width {hidden}")
    _check(latent_dim <= MAX_LATENT_DIM, f"latent size {latent_dim}")
    _check(math.isfinite(w0) and 0 < w0 < 1e4, f"w0 {w0}")
    fps_num, fps_den = r.unpack("II")
    _check(fps_den > 0, "frame rate denominator 0")
    _check(r.pos == len(data), "header has trailing bytes")
    h = Header(kind, tuple(sizes), channels, bit_depth, bases, hidden, latent_dim, w0,
               fps_num, fps_den)
    _check(h.architecture.param_count() <= MAX_PARAMS, "too many parameters")
    return h


def _parse_latent_header(data: bytes, version: int) -> LatentHeader:
    from .latents import MAX_LEVELS

    r = _Reader(data, "header")
    kind, channels, bit_depth, levels, height, width, hidden, context_hidden = r.unpack("BBBBIIBB")
    want = KIND_VIDEO if version == CLIP_VERSION else KIND_IMAGE
    _check(kind == want, f"kind {kind} in a version-{version} file")
    _check(1 <= channels <= MAX_CHANNELS, f"{channels} channels")
    _check(bit_depth in (8, 16), f"bit depth {bit_depth}")
    _check(1 <= height <= MAX_AXIS and 1 <= width <= MAX_AXIS, f"size {width}x{height}")
    _check(1 <= levels <= MAX_LEVELS and max(height, width) >= 1 << (levels - 1), f"{levels} levels")
    _check(0 <= hidden <= MAX_SYNTH_HIDDEN, f"hidden width {hidden}")
    _check(0 <= context_hidden <= MAX_SYNTH_HIDDEN, f"context width {context_hidden}")
    if kind == KIND_IMAGE:
        _check(r.pos == len(data), "header has trailing bytes")
        return LatentHeader((height, width), channels, bit_depth, levels, hidden, context_hidden)
    frames, group, fps_num, fps_den = r.unpack("IIII")
    _check(1 <= frames <= MAX_AXIS and frames * height * width <= MAX_SAMPLES, f"{frames} frames")
    _check(1 <= group <= min(frames, MAX_GROUP), f"group of {group} frames")
    _check(fps_den >= 1, "frame rate")
    _check(r.pos == len(data), "header has trailing bytes")
    return LatentHeader((frames, height, width), channels, bit_depth, levels, hidden, context_hidden,
                        KIND_VIDEO, fps_num, fps_den, group)


def _parse_latent_payload(data: bytes, h: LatentHeader) -> tuple[list[Tensor], list]:
    from .context_model import CodedGrid, parameter_shapes

    layout = h.layout
    grids = layout.grids()
    video = h.kind == KIND_VIDEO
    r = _Reader(data, "payload")
    tensors = []
    for _ in h.group_spans() if video else [None]:
        tensors += [_parse_tensor(r, name, shape, shape[0] if len(shape) > 1 else 1, 0)
                    for name, shape in layout.synthesis_shapes()]
        tensors += [_parse_tensor(r, name, shape, 1, 0)
                    for name, shape in parameter_shapes(len(grids), layout.context_hidden, video)]
    if video:  # one stream per group of frames
        parts = [((e - s) * layout.latent_count(), f"frames {s}-{e - 1}") for s, e in h.group_spans()]
    else:  # one per latent grid
        parts = [(gh * gw, f"latent grid {level}/{plane}") for level, plane, (gh, gw) in grids]
    coded = [CodedGrid(*_parse_coded(r, symbols, what)) for symbols, what in parts]
    _check(r.pos == len(data), "payload has trailing bytes")
    return tensors, coded


def _parse_coded(r: _Reader, symbols: int, what: str) -> tuple[int, int, np.ndarray]:
    """A coded latent grid (or a clip group's stream): lo, span, words."""
    lo = _unzigzag(r.varint())
    span = r.varint()
    _check(abs(lo) < 1 << 14 and abs(lo + span) < 1 << 14, f"{what}: range")
    n_words = r.varint()
    _check(n_words <= 4 * symbols + 4 and (span > 0 or n_words == 0), f"{what}: words")
    return lo, lo + span, r.array("<u4", n_words, MAX_PARAMS).astype(np.uint32)


def _parse_payload(data: bytes, arch: Architecture, version: int) -> list[Tensor]:
    r = _Reader(data, "payload")
    tensors = [_parse_tensor(r, name, shape, step_groups(name, shape), version) for name, shape in arch.param_shapes()]
    _check(r.pos == len(data), "payload has trailing bytes")
    return tensors


def _parse_tensor(r: _Reader, name: str, shape: tuple[int, ...], groups: int, version: int) -> Tensor:
    steps = step_values(r.array("u1", groups, MAX_PARAMS))
    byte, = r.unpack("B")
    model, predict = byte & 0x0F, byte >> 4
    _check(model in (entropy.CONSTANT, entropy.LAPLACE, entropy.GAUSSIAN), f"{name}: entropy model {model}")
    _check(predict == 0 or (version == 2 and predict - 1 in prediction_axes(name, shape)),
           f"{name}: prediction {predict}")
    lo = _unzigzag(r.varint())
    span = r.varint()
    _check(abs(lo) < 2**31 and span <= entropy.MAX_SYMBOL_RANGE, f"{name}: symbol range")
    mean, scale = 0.0, 0.0
    if model != entropy.CONSTANT:
        mean = _unzigzag(r.varint()) / 2
        scale, = r.unpack("e")
    n_words = r.varint()
    # a range coder needs at most a few words per symbol: anything more is corrupt
    _check(n_words <= 4 * math.prod(shape) + 4, f"{name}: {n_words} words")
    words = r.array("<u4", n_words, MAX_PARAMS)
    return Tensor(steps, entropy.CodedTensor(model, lo, lo + span, float(mean), float(scale),
                                             words.astype(np.uint32), predict))


def loads(data: bytes) -> AsmrFile:
    """Parse and validate a whole file; every failure is an AsmrError."""
    r = _Reader(data, "file")
    if len(data) < 4 or data[:4] != MAGIC:
        raise AsmrError("not an .asmr file (bad magic bytes)")
    r.take(4)
    version, header_len = r.unpack("BI")
    if version not in READ_VERSIONS:
        raise AsmrError(f"unsupported .asmr format version {version} (this build reads "
                        f"{', '.join(map(str, READ_VERSIONS))})")
    _check(header_len <= MAX_HEADER, f"header length {header_len}")
    header_bytes = r.take(header_len)
    crc, = r.unpack("I")
    _check(zlib.crc32(header_bytes) == crc, "header checksum mismatch")
    latent = version in (LATENT_VERSION, CLIP_VERSION)
    header = _parse_latent_header(header_bytes, version) if latent else _parse_header(header_bytes)
    payload_len, = r.unpack("I")
    payload = r.take(payload_len)
    crc, = r.unpack("I")
    _check(zlib.crc32(payload) == crc, "payload checksum mismatch")
    _check(r.pos == len(data), "trailing bytes after the payload")
    if latent:
        tensors, grids = _parse_latent_payload(payload, header)
        return AsmrFile(header, tensors, version, grids)
    return AsmrFile(header, _parse_payload(payload, header.architecture, version), version)
