"""Format version 4: a clip as latent pyramids per frame (latent/format.py's header and
records), frames in groups that share the networks.

Header: version 3's fields, then frames u32 | group u32 | fps numerator u32 | fps
denominator u32. Payload: each group's networks, then one coded stream per group."""

from __future__ import annotations

import struct

from ..container.file import KIND_VIDEO, MAX_AXIS, MAX_SAMPLES, AsmrFile, frame
from ..container.records import Reader, check
from ..container.tensors import CodedStream, Tensor, parse_stream
from ..latent.format import LatentHeader, pack_payload, read_header, read_networks
from ..latent.format import pack_header as pack_image_fields

VERSION = 4
MAX_GROUP = 1 << 12  # frames in a group


def pack_header(h: LatentHeader) -> bytes:
    return pack_image_fields(h) + struct.pack("<IIII", h.sizes[0], h.group, h.fps_num, h.fps_den)


def dumps(h: LatentHeader, tensors: list[Tensor], streams: list[CodedStream]) -> bytes:
    return frame(VERSION, pack_header(h), pack_payload(tensors, streams))


def overhead(h: LatentHeader) -> int:
    """Bytes of a file with this header and an empty payload."""
    return len(dumps(h, [], []))


def parse_header(data: bytes) -> LatentHeader:
    r = Reader(data, "header")
    image = read_header(r, KIND_VIDEO, VERSION)
    height, width = image.sizes
    frames, group, fps_num, fps_den = r.unpack("IIII")
    check(1 <= frames <= MAX_AXIS and frames * height * width <= MAX_SAMPLES, f"{frames} frames")
    check(1 <= group <= min(frames, MAX_GROUP), f"group of {group} frames")
    check(fps_den >= 1, "frame rate")
    check(r.done(), "header has trailing bytes")
    return LatentHeader((frames, height, width), image.channels, image.bit_depth, image.levels, image.hidden,
                        image.context_hidden, KIND_VIDEO, fps_num, fps_den, group)


def read_group_networks(r: Reader, h: LatentHeader) -> list:
    """Every group's network tensors, in file order (formats 4 and 7)."""
    return [t for _ in h.group_spans() for t in read_networks(r, h.layout, True)]


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    h = parse_header(header)
    layout = h.layout
    r = Reader(payload, "payload")
    tensors = read_group_networks(r, h)
    streams = [parse_stream(r, (e - s) * layout.latent_count(), f"frames {s}-{e - 1}") for s, e in h.group_spans()]
    check(r.done(), "payload has trailing bytes")
    return AsmrFile(h, tensors, version, streams)
