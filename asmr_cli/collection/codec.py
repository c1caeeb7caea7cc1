"""Format version 5 (collections) as bytes and back to pixels: numpy and constriction
only, no torch. The shared networks are format 3's (latent/codec.py), each member is an
image of format 3 whose latents are its own stream, so any-size and region decoding are
the image's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..container.file import AsmrFile
from ..container.networks import BY_REFERENCE, NetworkSource, digest, resolve
from ..container.records import Reader, check
from ..core.errors import AsmrError
from ..latent import context_model as cm
from ..latent.codec import LatentImage, context_tensors, quantise_synthesis, render, unpack_networks
from ..latent.format import read_networks
from .format import CollectionHeader, Member, dumps, network_records


@dataclass
class Collection:
    header: CollectionHeader
    synthesis: dict[str, np.ndarray]  # dequantised
    context: dict[str, np.ndarray]  # fixed-point integers
    words: np.ndarray  # every member's stream, member after member
    records: bytes  # the networks' records (as a carrying file holds them)

    @property
    def members(self) -> list[Member]:
        return self.header.members

    def image(self, i: int) -> LatentImage:
        """Member i as a format-3 image: its stream alone is entropy-decoded."""
        h = self.header
        m = h.members[i]
        lay = h.layout(m.height, m.width)
        words = self.words[m.offset:m.offset + m.words]
        return LatentImage(lay, self.synthesis, self.context, cm.decode_member(words, lay.grids(), self.context,
                                                                               h.lo, h.hi))


def unpack(f: AsmrFile, store=None) -> Collection:
    """The shared networks (from the file, or, for a file that refers to networks it does
    not carry, from `store`: digest -> records) and the members' coded streams."""
    h = f.header
    words, records = f.grids
    tensors = f.tensors
    if not h.source.carried:
        records = resolve(h.source, store)
        r = Reader(records, "shared networks")
        tensors = read_networks(r, h.net_layout, False)
        check(r.done(), "shared networks have trailing bytes")
    syn, ctx = unpack_networks(h.net_layout, tensors)
    return Collection(h, syn, ctx, words, records)


def render_member(c: Collection, i: int, out_size: tuple[int, int], top_left: tuple[int, int],
                  bottom_right: tuple[int, int]) -> np.ndarray:
    return render(c.image(i), out_size, top_left, bottom_right)


def network_tensors(header: CollectionHeader, synthesis: dict[str, np.ndarray], context: dict[str, np.ndarray],
                    bits: int):
    """-> (the networks' tensor records, the fixed-point context model)."""
    lay = header.net_layout
    syn_tensors, _ = quantise_synthesis(lay, synthesis, bits)
    q = cm.to_fixed(context)
    return network_records(syn_tensors + context_tensors(q, len(lay.grids()), lay.context_hidden)), q


def member_words(header: CollectionHeader, q: dict[str, np.ndarray], latents: list[list[np.ndarray]]
                 ) -> list[np.ndarray]:
    """Each member's stream under the header's shared symbol range."""
    return [cm.encode_member(z, header.layout(m.height, m.width).grids(), q, header.lo, header.hi)
            for m, z in zip(header.members, latents)]


def symbol_range(latents: list[list[np.ndarray]]) -> tuple[int, int]:
    values = [z for member in latents for z in member if z.size]
    lo = min((int(z.min()) for z in values), default=0)
    hi = max((int(z.max()) for z in values), default=0)
    if max(abs(lo), abs(hi)) >= cm.MAX_LATENT:
        raise AsmrError("latent values too large to code")
    return lo, hi


def pack(header: CollectionHeader, synthesis: dict[str, np.ndarray], context: dict[str, np.ndarray],
         latents: list[list[np.ndarray]], bits: int) -> bytes:
    """The whole file: networks at `bits` per-row precision (carried, or referred to by
    their digest when header.source is by reference), each member's rounded latents in its
    own stream."""
    records, q = network_tensors(header, synthesis, context, bits)
    ints = [[np.rint(z).astype(np.int64) for z in member] for member in latents]
    header.lo, header.hi = symbol_range(ints)
    if not header.source.carried:
        header.source = NetworkSource(BY_REFERENCE, digest(records))
    return dumps(header, records, member_words(header, q, ints))


def with_member(c: Collection, member: Member, latents: list[np.ndarray]) -> bytes:
    """The collection with one more member, coded against its frozen networks: the other
    members' streams, the networks and the symbol range are kept byte for byte (latents
    outside the range are clipped into it)."""
    h = c.header
    ints = [np.clip(np.rint(z), h.lo, h.hi).astype(np.int64) for z in latents]
    words = [c.words[m.offset:m.offset + m.words] for m in h.members]
    words.append(cm.encode_member(ints, h.layout(member.height, member.width).grids(), c.context, h.lo, h.hi))
    new = CollectionHeader(h.channels, h.bit_depth, h.levels, h.hidden, h.context_hidden, h.lo, h.hi, h.source,
                           [Member(m.name, m.height, m.width) for m in h.members] + [member])
    return dumps(new, c.records, words)
