"""Format version 3: an image as a latent pyramid under a context model; version 8: the
same with the synthesis's refine stage (latents.py).

Header: the image's size, channels and bit depth, the pyramid's levels and the two
networks' widths (version 8: and the refine stage's). Payload: the synthesis and context
networks' tensors (container/tensors.py records), then one coded stream per latent grid.
Clips (version 4, clip/format.py) extend the header and group the streams."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..container.file import KIND_IMAGE, KIND_VIDEO, MAX_AXIS, MAX_CHANNELS, AsmrFile, frame
from ..container.records import Reader, check
from ..container.tensors import CodedStream, Tensor, pack_stream, pack_tensor, parse_stream, parse_tensor
from .context_model import parameter_shapes
from .latents import MAX_LEVELS, Layout

VERSION = 3
VERSION_REFINE = 8  # an image whose synthesis has the refine stage
VERSIONS = (VERSION, VERSION_REFINE)
MAX_SYNTH_HIDDEN = 64
MAX_REFINE = 8


@dataclass
class LatentHeader:
    """Version 3: an image held by a latent pyramid; version 4: a clip, one pyramid per
    frame, frames in groups that share the networks (sizes (T, H, W))."""

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
    # images: the refine stage's width (version 8), 0 none (version 3); keyword-only, so
    # that a clip header's own fields (clip/format7.py) keep their positions
    refine: int = field(default=0, kw_only=True)

    @property
    def layout(self) -> Layout:
        """The layout of one image (of one frame of a clip)."""
        return Layout(self.sizes[-2], self.sizes[-1], self.channels, self.levels, self.hidden, self.context_hidden,
                      self.refine)

    @property
    def version(self) -> int:
        """The format version an image with this header is written as."""
        return VERSION_REFINE if self.refine else VERSION

    @property
    def frames(self) -> int:
        return self.sizes[0] if self.kind == KIND_VIDEO else 1

    def group_spans(self) -> list[tuple[int, int]]:
        """[start, end) frames of each group."""
        return [(s, min(self.frames, s + self.group)) for s in range(0, self.frames, self.group)]


def pack_header(h: LatentHeader) -> bytes:
    """The fields every latent format shares (a clip's header appends its own)."""
    return struct.pack("<BBBBIIBB", h.kind, h.channels, h.bit_depth, h.levels, *h.sizes[-2:], h.hidden,
                       h.context_hidden)


def pack_payload(tensors: list[Tensor], streams: list[CodedStream]) -> bytes:
    return b"".join(pack_tensor(t) for t in tensors) + b"".join(pack_stream(g) for g in streams)


def pack_image_header(h: LatentHeader) -> bytes:
    """An image's header: version 3's fields, and version 8's refine width after them."""
    return pack_header(h) + (struct.pack("<B", h.refine) if h.refine else b"")


def dumps(h: LatentHeader, tensors: list[Tensor], streams: list[CodedStream]) -> bytes:
    """An image's file: version 3, or 8 (with the refine stage)."""
    return frame(h.version, pack_image_header(h), pack_payload(tensors, streams))


def overhead(h: LatentHeader) -> int:
    """Bytes of a file with this header and an empty payload."""
    return len(dumps(h, [], []))


def read_header(r: Reader, kind: int, version: int) -> LatentHeader:
    """The shared fields of a version-3 or -4 header, checked; sizes (height, width)."""
    got, channels, bit_depth, levels, height, width, hidden, context_hidden = r.unpack("BBBBIIBB")
    check(got == kind, f"kind {got} in a version-{version} file")
    check(1 <= channels <= MAX_CHANNELS, f"{channels} channels")
    check(bit_depth in (8, 16), f"bit depth {bit_depth}")
    check(1 <= height <= MAX_AXIS and 1 <= width <= MAX_AXIS, f"size {width}x{height}")
    check(1 <= levels <= MAX_LEVELS and max(height, width) >= 1 << (levels - 1), f"{levels} levels")
    check(0 <= hidden <= MAX_SYNTH_HIDDEN, f"hidden width {hidden}")
    check(0 <= context_hidden <= MAX_SYNTH_HIDDEN, f"context width {context_hidden}")
    return LatentHeader((height, width), channels, bit_depth, levels, hidden, context_hidden, kind)


def read_networks(r: Reader, layout: Layout, temporal: bool) -> list[Tensor]:
    """The synthesis and context networks' tensors of one image (or one group of frames)."""
    tensors = [parse_tensor(r, name, shape, shape[0] if len(shape) > 1 else 1, False)
               for name, shape in layout.synthesis_shapes()]
    return tensors + [parse_tensor(r, name, shape, 1, False)
                      for name, shape in parameter_shapes(len(layout.grids()), layout.context_hidden, temporal)]


def parse_header(data: bytes, version: int = VERSION) -> LatentHeader:
    r = Reader(data, "header")
    h = read_header(r, KIND_IMAGE, version)
    if version == VERSION_REFINE:
        h.refine, = r.unpack("B")
        check(1 <= h.refine <= MAX_REFINE, f"refine width {h.refine}")
    check(r.done(), "header has trailing bytes")
    return h


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    h = parse_header(header, version)
    layout = h.layout
    r = Reader(payload, "payload")
    tensors = read_networks(r, layout, False)
    streams = [parse_stream(r, gh * gw, f"latent grid {level}/{plane}") for level, plane, (gh, gw) in layout.grids()]
    check(r.done(), "payload has trailing bytes")
    return AsmrFile(h, tensors, version, streams)
