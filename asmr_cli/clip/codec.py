"""Format version 4 (clips): a latent pyramid per frame, coded under a context model
that also sees the previous frame's grids, as bytes and back to frames. numpy and
constriction only: no torch.

Frames come in groups (the header's `group`); each group has its own synthesis and
context networks, and its first frame is coded without temporal context, so a range of
frames costs the entropy decoding of its groups up to the range's end and the synthesis
of the range alone. Every frame is then an image of format version 3 (latent_codec), so
any-size and region decoding are the image's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..container.file import AsmrFile
from ..container.tensors import CodedStream
from ..core.errors import AsmrError
from ..latent import context_model as cm
from ..latent.codec import LatentImage, context_tensors, quantise_synthesis
from ..latent.format import LatentHeader
from ..latent.latents import Layout
from .format import dumps


@dataclass
class GroupModel:
    """One group's networks and its coded latents (decoded on demand, frame after frame)."""

    start: int
    end: int
    synthesis: dict[str, np.ndarray]
    context: dict[str, np.ndarray]
    stream: CodedStream
    decoder: cm.StreamDecoder | None = None
    next: int = 0  # the frame (within the group) the decoder reads next
    last: list[np.ndarray] | None = None  # the latents of frame next - 1


@dataclass
class LatentClip:
    header: LatentHeader
    groups: list[GroupModel]

    @property
    def layout(self) -> Layout:
        return self.header.layout

    def frame(self, t: int) -> LatentImage:
        """Frame t as an image: its group's stream decoded up to t (from the group's start
        again if t is behind the decoder; only the last frame's latents are kept)."""
        g = next(g for g in self.groups if g.start <= t < g.end)
        k = t - g.start
        if g.decoder is None or k < g.next - 1:
            g.decoder, g.next, g.last = cm.StreamDecoder(g.stream, self.layout.grids(), g.context), 0, None
        while g.next <= k:
            g.last = g.decoder.next_frame(g.last)
            g.next += 1
        return LatentImage(self.layout, g.synthesis, g.context, g.last)

    def frames(self, start: int, end: int) -> Iterator[LatentImage]:
        for t in range(start, end):
            yield self.frame(t)


def pack_clip(header: LatentHeader, groups: list[tuple[dict, dict, list[list[np.ndarray]]]],
              bits: int) -> bytes:
    """The whole file: per group (synthesis weights, float context weights, per frame the
    float latent grids in Layout.grids() order), synthesis weights at `bits` per-row; the
    networks of every group, then each group's latents as one stream."""
    lay = header.layout
    grids = lay.grids()
    tensors, streams = [], []
    for synthesis, context, frames in groups:
        syn_tensors, _ = quantise_synthesis(lay, synthesis, bits)
        q = cm.to_fixed(context)
        tensors += syn_tensors + context_tensors(q, len(grids), lay.context_hidden, True)
        streams.append(cm.encode_stream([[np.rint(z).astype(np.int64) for z in f] for f in frames], grids, q))
    return dumps(header, tensors, streams)


def group_networks(f: AsmrFile) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Every group's (synthesis, context) networks of a clip file (formats 4 and 7), the
    tensor count checked against the groups first."""
    from ..latent.codec import unpack_networks

    lay = f.header.layout
    per_group = len(lay.synthesis_shapes()) + len(cm.parameter_shapes(len(lay.grids()), lay.context_hidden, True))
    count = len(f.header.group_spans())
    if len(f.tensors) != per_group * count:
        raise AsmrError("corrupt file: network count does not match the groups")
    return [unpack_networks(lay, f.tensors[i * per_group:(i + 1) * per_group], temporal=True) for i in range(count)]


def unpack_clip(f: AsmrFile) -> LatentClip:
    """The networks of every group; latents stay coded until a frame asks for them."""
    groups = [GroupModel(start, end, syn, ctx, f.grids[i])
              for i, ((start, end), (syn, ctx)) in enumerate(zip(f.header.group_spans(), group_networks(f)))]
    return LatentClip(f.header, groups)


PIPELINE = 4  # frames decoded ahead of the synthesis thread


def frames_uint8(clip: LatentClip, start: int, end: int) -> np.ndarray:
    """Frames [start, end) at the native size as (n, H, W, C) uint8. The latents are
    entropy-decoded here, frame after frame, while a second thread synthesises the frames
    already decoded (numpy releases the GIL in its array work)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..latent.codec import render_native

    lay = clip.layout
    out = np.empty((end - start, lay.height, lay.width, lay.channels), np.uint8)

    def draw(i: int, img: LatentImage) -> None:
        out[i] = np.moveaxis(np.clip(np.rint(render_native(img) * 255.0), 0, 255).astype(np.uint8), 0, -1)

    pending = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for i, img in enumerate(clip.frames(start, end)):
            pending.append(pool.submit(draw, i, img))
            if len(pending) > PIPELINE:
                pending.pop(0).result()
        for f in pending:
            f.result()
    return out
