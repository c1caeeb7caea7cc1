"""Format version 9: a clip as intra frames and hierarchical B frames (random access).

Header: version 7's fields (intra period u16 | motion block u8 | filter u8), the same caps.
A group's intra frames (anchors) are every `period`-th frame from its start and its last
frame; a segment is an anchor and the frames before the next anchor. Those frames are B
frames, coded in bisection order: the middle frame of (a, b) predicted from a and b, then
the middles of (a, middle) and (middle, b), and so on, so that no frame is more than
log2(period) predictions away from an intra frame (a chain of P frames drifts with every
link: docs/video.md). Each B frame has two motion slots, one per reference (the earlier
first), each none / global / field as in version 7 or UNUSED; a frame that uses both is
predicted by the integer mean of the two warps.

Payload: version 7's, with the motion tensors over the slots of every B frame in coding
order, and each segment's latent stream in coding order (its anchor first). Decoding a
segment's B frames needs the next segment's anchor, the first frame of the next stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..container.file import AsmrFile
from ..container.records import check
from . import format7, motion

VERSION = 9


def bisection(a: int, b: int) -> list[tuple[int, tuple[int, int]]]:
    """The frames strictly between a and b in coding order, each with its references."""
    if b - a < 2:
        return []
    m = (a + b) // 2
    return [(m, (a, b))] + bisection(a, m) + bisection(m, b)


@dataclass
class BHeader(format7.MotionHeader):
    version = VERSION
    modes = (*motion.MODES, motion.UNUSED)

    def anchors(self, start: int, end: int) -> list[int]:
        """A group's intra frames: every period-th frame from its start, and its last."""
        return sorted(set(range(start, end, self.period)) | {end - 1})

    def segment_spans(self) -> list[tuple[int, int]]:
        out = []
        for gs, ge in self.group_spans():
            a = self.anchors(gs, ge)
            out += list(zip(a, a[1:] + [ge]))
        return out

    def plan(self, start: int, end: int) -> list[tuple[int, tuple[int, ...]]]:
        out: list[tuple[int, tuple[int, ...]]] = []
        for s, e in self.segment_spans():
            if start <= s < end:
                out += [(s, ())] + bisection(s, e)  # e: the next anchor (the group's last segment is one frame)
        return out

    def check_modes(self, modes: np.ndarray, start: int, end: int) -> None:
        pairs = modes.reshape(-1, 2)
        check(not np.any(np.all(pairs == motion.UNUSED, axis=1)), "a B frame with no reference")


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    return format7.parse(version, header, payload, BHeader)
