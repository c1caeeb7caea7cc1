"""Format version 7: a clip as intra frames and motion-compensated P frames.

Header: version 4's fields, then intra period u16 | motion block u8 | filter u8.
Frames come in groups that share the networks (as in version 4); a group is cut into
segments of `period` frames, each starting with an intra frame. Every other frame is
predicted from the decoded frame before it, warped by its motion (clip/motion.py), and
its latent pyramid codes what the prediction misses.

Payload: each group's networks (synthesis, temporal context model), then per group its
motion: three coded tensors (the modes of its P frames, one global vector per GLOBAL
frame, one block field per FIELD frame), then one coded latent stream per segment (the
temporal context restarts at every intra frame, so a frame depends only on its
segment)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..container import entropy
from ..container.file import KIND_VIDEO, MAX_AXIS, MAX_SAMPLES, AsmrFile, frame
from ..container.records import Reader, check
from ..container.tensors import CodedStream, Tensor, code_tensor, pack_stream, pack_tensor, parse_stream, parse_tensor
from ..core.errors import AsmrError
from ..latent.format import LatentHeader, read_header
from ..latent.format import pack_header as pack_image_fields
from . import motion
from .format import MAX_GROUP, read_group_networks

VERSION = 7
MAX_PERIOD = 1 << 12
MAX_MOTION_VALUES = 1 << 24  # vector components a group may hold (decoded when the file is parsed)


@dataclass
class MotionHeader(LatentHeader):
    period: int = 1  # frames from one intra frame to the next (within a group)
    block: int = 8  # motion block side, pixels
    filt: int = motion.BILINEAR

    version = VERSION
    modes = motion.MODES  # the motion modes a slot may hold (format 9 adds UNUSED)

    def segment_spans(self) -> list[tuple[int, int]]:
        """[start, end) of every segment: an intra frame and the P frames predicted from it."""
        return [(s, min(e, s + self.period)) for gs, e in self.group_spans() for s in range(gs, e, self.period)]

    def plan(self, start: int, end: int) -> list[tuple[int, tuple[int, ...]]]:
        """A group's frames in coding order, each with its references: () for an intra frame,
        (t - 1,) for a P frame. Each reference is one motion slot, in this order."""
        firsts = {s for s, _ in self.segment_spans()}
        return [(t, () if t in firsts else (t - 1,)) for t in range(start, end)]

    def first_slots(self, start: int, end: int) -> dict[int, int]:
        """Each frame of a group -> the index of its first motion slot (its references' slots
        follow in order; an intra frame has none)."""
        out, k = {}, 0
        for t, refs in self.plan(start, end):
            out[t] = k
            k += len(refs)
        return out

    def slots(self, start: int, end: int) -> int:
        """A group's motion slots (one per reference of every predicted frame)."""
        return sum(len(refs) for _, refs in self.plan(start, end))

    def check_modes(self, modes: np.ndarray, start: int, end: int) -> None:
        """Format 9 refuses a B frame that uses neither reference; every mode is allowed here."""


@dataclass
class GroupMotion:
    """A group's motion: per slot (MotionHeader.plan's references, in order) its mode, and
    the vectors it uses."""

    modes: np.ndarray  # (slots,) int
    vectors: np.ndarray  # (n_global, 2) int, quarter pixels
    fields: np.ndarray  # (n_field, by, bx, 2) int

    def of(self, i: int) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """The i-th slot's (mode, global vector, field)."""
        mode = int(self.modes[i])
        if mode == motion.GLOBAL:
            return mode, self.vectors[int(np.count_nonzero(self.modes[:i] == motion.GLOBAL))], None
        if mode == motion.FIELD:
            return mode, None, self.fields[int(np.count_nonzero(self.modes[:i] == motion.FIELD))]
        return mode, None, None


def pack_header(h: MotionHeader) -> bytes:
    return pack_image_fields(h) + struct.pack("<IIIIHBB", h.sizes[0], h.group, h.fps_num, h.fps_den, h.period,
                                              h.block, h.filt)


def motion_tensors(m: GroupMotion) -> list[Tensor]:
    one = np.ones(1, np.float32)
    return [code_tensor("modes", np.asarray(m.modes, np.int32), one),
            Tensor(one, entropy.encode(np.asarray(m.vectors, np.int32).reshape(-1, 2), (0,))),
            Tensor(one, entropy.encode(np.asarray(m.fields, np.int32), (0, 1, 2)))]


def dumps(h: MotionHeader, tensors: list[Tensor], motions: list[GroupMotion], streams: list[CodedStream]) -> bytes:
    payload = b"".join(pack_tensor(t) for t in tensors)
    payload += b"".join(pack_tensor(t) for m in motions for t in motion_tensors(m))
    return frame(h.version, pack_header(h), payload + b"".join(pack_stream(g) for g in streams))


def overhead(h: MotionHeader) -> int:
    return len(dumps(h, [], [], []))


def parse_header(data: bytes, cls: type[MotionHeader] = MotionHeader) -> MotionHeader:
    r = Reader(data, "header")
    image = read_header(r, KIND_VIDEO, cls.version)
    height, width = image.sizes
    frames, group, fps_num, fps_den, period, block, filt = r.unpack("IIIIHBB")
    check(1 <= frames <= MAX_AXIS and frames * height * width <= MAX_SAMPLES, f"{frames} frames")
    check(1 <= group <= min(frames, MAX_GROUP), f"group of {group} frames")
    check(fps_den >= 1, "frame rate")
    check(1 <= period <= min(group, MAX_PERIOD), f"intra period {period}")
    check(block in motion.BLOCKS, f"motion block {block}")
    check(filt in motion.FILTERS, f"interpolation filter {filt}")
    check(r.done(), "header has trailing bytes")
    return cls((frames, height, width), image.channels, image.bit_depth, image.levels, image.hidden,
                        image.context_hidden, KIND_VIDEO, fps_num, fps_den, group, period, block, filt)


def _decoded(t: Tensor, shape: tuple[int, ...], lo: int, hi: int, what: str) -> np.ndarray:
    values = entropy.decode(t.coded, shape)
    if values.size and (values.min() < lo or values.max() > hi):
        raise AsmrError(f"corrupt file: {what} out of range")
    return values


def read_motion(r: Reader, h: MotionHeader, start: int, end: int) -> GroupMotion:
    """A group's motion tensors, decoded and checked (small: a few values per block)."""
    n_p = h.slots(start, end)
    by, bx = motion.blocks_of(h.sizes[1], h.sizes[2], h.block)
    check(n_p * by * bx * 2 <= MAX_MOTION_VALUES, f"motion of {n_p} frames of {by}x{bx} blocks")
    modes = _decoded(parse_tensor(r, "modes", (n_p,), 1, False), (n_p,), 0, max(h.modes), "motion mode")
    h.check_modes(modes, start, end)
    n_global = int(np.count_nonzero(modes == motion.GLOBAL))
    n_field = int(np.count_nonzero(modes == motion.FIELD))
    lim = motion.MAX_VECTOR
    vectors = _decoded(parse_tensor(r, "latent vectors", (n_global, 2), 1, True), (n_global, 2), -lim, lim,
                       "motion vector")
    fields = _decoded(parse_tensor(r, "latent fields", (n_field, by, bx, 2), 1, True), (n_field, by, bx, 2),
                      -lim, lim, "motion vector")
    return GroupMotion(modes, vectors, fields)


def parse(version: int, header: bytes, payload: bytes, cls: type[MotionHeader] = MotionHeader) -> AsmrFile:
    h = parse_header(header, cls)
    layout = h.layout
    r = Reader(payload, "payload")
    tensors = read_group_networks(r, h)
    motions = [read_motion(r, h, s, e) for s, e in h.group_spans()]
    streams = [parse_stream(r, (e - s) * layout.latent_count(), f"frames {s}-{e - 1}") for s, e in h.segment_spans()]
    check(r.done(), "payload has trailing bytes")
    f = AsmrFile(h, tensors, version, streams)
    f.motion = motions  # type: ignore[attr-defined]
    return f
