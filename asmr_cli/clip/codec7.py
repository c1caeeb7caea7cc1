"""Format versions 7 (clips with motion-compensated P frames) and 9 (hierarchical B
frames) as bytes and back to frames. numpy and constriction only: no torch.

A frame is decoded as clip(rint(prediction + 255 * synthesis), 0, 255) in 8 bits: the
prediction is 0 for an intra frame, and for a P or B frame its decoded references warped
by its motion (motion.py, integers only; a B frame's two warps averaged); the synthesis is
the frame's latent pyramid through its group's networks (format 3's image model). A frame
depends on its segment alone (and, in format 9, the next segment's intra frame):
`--frames A:B` entropy-decodes and synthesises the segments of A..B in coding order, each
from its intra frame to the last frame asked for (format 7: to B)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..container.file import AsmrFile
from ..latent import context_model as cm
from ..latent.codec import LatentImage, context_tensors, quantise_synthesis, render_native
from ..latent.latents import Layout
from . import motion
from .codec import group_networks
from .format7 import GroupMotion, MotionHeader, dumps


def compose(synth: np.ndarray, pred: np.ndarray | None) -> np.ndarray:
    """synth (C, H, W) float32 on [0, 1] (the residual for a P frame), pred (H, W, C) uint8 or
    None -> the decoded (H, W, C) uint8 frame."""
    out = np.moveaxis(synth, 0, -1) * np.float32(255.0)
    if pred is not None:
        out = out + pred.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class Group7:
    start: int
    end: int
    synthesis: dict[str, np.ndarray]
    context: dict[str, np.ndarray]
    motion: GroupMotion
    refs: dict[int, tuple[tuple[int, ...], int]]  # frame -> (its references, its first motion slot)


class MotionClip:
    """A parsed format-7 or -9 file: frames decoded on demand, a segment at a time, each
    segment in coding order as far as the frame asked for (and no further)."""

    def __init__(self, f: AsmrFile):
        h: MotionHeader = f.header
        self.header = h
        self.groups = []
        for (s, e), (syn, ctx), mot in zip(h.group_spans(), group_networks(f), f.motion):
            first = h.first_slots(s, e)
            self.groups.append(Group7(s, e, syn, ctx, mot, {t: (r, first[t]) for t, r in h.plan(s, e)}))
        self.segments = h.segment_spans()
        self.order = [[t for t, _ in h.plan(s, e)] for s, e in self.segments]  # each segment's coding order
        self.last_use = []  # per segment: frame -> the last position (in coding order) that predicts from it
        for k, order in enumerate(self.order):
            g = self._group(self.segments[k][0])
            self.last_use.append({r: i for i, u in enumerate(order) for r in g.refs[u][0]})
        self.streams = f.grids
        self._state: tuple | None = None  # (segment index, frames decoded, decoder, last latents)
        self._frames: dict[int, np.ndarray] = {}  # frames of this segment (and the next anchor) still referred to
        self._anchor: tuple[int, np.ndarray] | None = None  # the latest anchor decoded from the stream after
        self._wanted: set[int] | None = None  # frames(): the frames asked for and those they predict from

    @property
    def layout(self) -> Layout:
        return self.header.layout

    def _group(self, t: int) -> Group7:
        return next(g for g in self.groups if g.start <= t < g.end)

    def _compose(self, g: Group7, t: int, latents: list[np.ndarray], threads: int) -> np.ndarray:
        synth = render_native(LatentImage(self.layout, g.synthesis, g.context, latents), threads)
        refs, slot = g.refs[t]
        pred = None
        if refs:
            motions = [g.motion.of(slot + i) for i in range(len(refs))]
            pred = motion.predict_from([self._frames[r] for r in refs], motions, self.header.block, self.header.filt)
        return compose(synth, pred)

    def _next_anchor(self, k: int, threads: int) -> None:
        """Segment k's B frames predict from the next segment's anchor: its stream's first frame."""
        s = self.segments[k + 1][0]
        if self._anchor is None or self._anchor[0] != s:
            g = self._group(s)
            latents = cm.StreamDecoder(self.streams[k + 1], self.layout.grids(), g.context).next_frame(None)
            self._anchor = (s, self._compose(g, s, latents, threads))
        self._frames[s] = self._anchor[1]

    def frame(self, t: int, threads: int = 1) -> np.ndarray:
        """Frame t as (H, W, C) uint8, decoding its segment in coding order from the intra
        frame (or from where the last call stopped, when t is there or on the way); only the
        frames later ones predict from are kept."""
        k = next(i for i, (s, e) in enumerate(self.segments) if s <= t < e)
        g = self._group(t)
        order, pos = self.order[k], self.order[k].index(t)
        if self._state is None or self._state[0] != k or (pos < self._state[1] and t not in self._frames):
            self._frames = {}
            if any(r >= self.segments[k][1] for u in order for r in g.refs[u][0]):
                self._next_anchor(k, threads)
            self._state = (k, 0, cm.StreamDecoder(self.streams[k], self.layout.grids(), g.context), None)
        _, done, dec, last = self._state
        out = self._frames.get(t)
        while done <= pos:
            u = order[done]
            last = dec.next_frame(last)
            if u == t or self._wanted is None or u in self._wanted:  # others: entropy-decoded only
                out = self._frames[u] = self._compose(g, u, last, threads)
            done += 1
            for r in [r for r in self._frames if self.last_use[k].get(r, -1) < done]:
                del self._frames[r]  # no frame after this one predicts from r
        self._state = (k, done, dec, last)
        return out

    def frames(self, start: int, end: int, threads: int = 1):
        """Frames [start, end): the frames of their segments that none of them predicts from
        are entropy-decoded (the stream is sequential) but not synthesised."""
        wanted, todo = set(), list(range(start, end))
        while todo:
            t = todo.pop()
            if t not in wanted:
                wanted.add(t)
                todo += self._group(t).refs[t][0]
        self._wanted = wanted
        try:
            for t in range(start, end):
                yield self.frame(t, threads)
        finally:
            self._wanted = None


def unpack(f: AsmrFile) -> MotionClip:
    return MotionClip(f)


def frames_uint8(clip: MotionClip, start: int, end: int, threads: int = 1) -> np.ndarray:
    lay = clip.layout
    out = np.empty((end - start, lay.height, lay.width, lay.channels), np.uint8)
    for i, fr in enumerate(clip.frames(start, end, threads)):
        out[i] = fr
    return out


def pack(header: MotionHeader, groups: list[tuple[dict, dict, GroupMotion, list[list[np.ndarray]]]],
         bits: int) -> bytes:
    """The whole file: per group (synthesis weights, float context weights, its motion, per
    frame in coding order (header.plan) the float latent grids in Layout.grids() order)."""
    lay = header.layout
    grids = lay.grids()
    tensors, motions, streams = [], [], []
    spans = header.group_spans()
    for (gs, ge), (synthesis, context, mot, frames) in zip(spans, groups):
        syn_tensors, _ = quantise_synthesis(lay, synthesis, bits)
        q = cm.to_fixed(context)
        tensors += syn_tensors + context_tensors(q, len(grids), lay.context_hidden, True)
        motions.append(mot)
        for s, e in header.segment_spans():
            if gs <= s < ge:
                ints = [[np.rint(z).astype(np.int64) for z in frames[i - gs]] for i in range(s, e)]
                streams.append(cm.encode_stream(ints, grids, q))
    return dumps(header, tensors, motions, streams)
