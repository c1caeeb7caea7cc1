"""Format version 7 (clips with motion-compensated P frames) as bytes and back to frames.
numpy and constriction only: no torch.

A frame is decoded as clip(rint(prediction + 255 * synthesis), 0, 255) in 8 bits: the
prediction is 0 for an intra frame and the decoded frame before it warped by the frame's
motion (motion.py, integers only) for a P frame; the synthesis is the frame's latent
pyramid through its group's networks (format 3's image model). A frame depends on its
segment alone: `--frames A:B` entropy-decodes and synthesises from the intra frame of A's
segment to B."""

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
    p_index: dict[int, int]  # frame -> its index among the group's P frames


class MotionClip:
    """A parsed format-7 file: frames decoded on demand, segment by segment."""

    def __init__(self, f: AsmrFile):
        h: MotionHeader = f.header
        self.header = h
        self.groups = []
        for (s, e), (syn, ctx), mot in zip(h.group_spans(), group_networks(f), f.motion):
            pf = h.p_frames(s, e)
            self.groups.append(Group7(s, e, syn, ctx, mot, {t: j for j, t in enumerate(pf)}))
        self.segments = h.segment_spans()
        self.streams = f.grids
        self._state: tuple | None = None  # (segment index, next frame, decoder, last latents, last frame)

    @property
    def layout(self) -> Layout:
        return self.header.layout

    def _group(self, t: int) -> Group7:
        return next(g for g in self.groups if g.start <= t < g.end)

    def frame(self, t: int, threads: int = 1) -> np.ndarray:
        """Frame t as (H, W, C) uint8, decoding its segment from the intra frame (or from
        where the last call stopped, when that is on the way)."""
        k = next(i for i, (s, e) in enumerate(self.segments) if s <= t < e)
        s, _ = self.segments[k]
        g = self._group(t)
        if self._state is None or self._state[0] != k or self._state[1] > t + 1:
            dec = cm.StreamDecoder(self.streams[k], self.layout.grids(), g.context)
            self._state = (k, s, dec, None, None)
        _, nxt, dec, last, frame = self._state
        while nxt <= t:
            last = dec.next_frame(last)
            synth = render_native(LatentImage(self.layout, g.synthesis, g.context, last), threads)
            pred = None
            if nxt in g.p_index:
                mode, vec, field = g.motion.of(g.p_index[nxt])
                pred = motion.predict(frame, mode, vec, field, self.header.block, self.header.filt)
            frame = compose(synth, pred)
            nxt += 1
        self._state = (k, nxt, dec, last, frame)
        return frame

    def frames(self, start: int, end: int, threads: int = 1):
        for t in range(start, end):
            yield self.frame(t, threads)


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
    frame the float latent grids in Layout.grids() order)."""
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
                ints = [[np.rint(z).astype(np.int64) for z in frames[t - gs]] for t in range(s, e)]
                streams.append(cm.encode_stream(ints, grids, q))
    return dumps(header, tensors, motions, streams)
