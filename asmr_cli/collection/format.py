"""Format version 5: a collection, many images (of any sizes) in one file sharing one
synthesis and one context network (format 3's), each member only its latents, coded in
its own range-coder stream so that any member decodes alone.

Header (little-endian): kind u8 (2) | channels u8 | bit depth u8 | levels u8 | hidden u8
| context hidden u8 | network source (container/networks.py: carried, or by reference)
| members varint | lo zigzag-varint | hi - lo varint | index bytes varint | index bytes
inflated varint.

Payload: the networks' tensor records (when carried; latent/format.py's, non-temporal)
| the member index, raw deflate | the members' streams, u32 words, member after member.

The index (inflated): every name (UTF-8 relative path) followed by a NUL byte; then per
member its height and width as zigzag varints of the difference from the member before
(tiles of one size cost two zero bytes before deflate); then per member its stream's word
count as a varint. A member's stream starts where the word counts before it end. The
symbol range [lo, hi] is shared by all members. Every field is capped below."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from ..container.file import KIND_COLLECTION, MAX_CHANNELS, MAX_SAMPLES, AsmrFile, frame
from ..container.networks import NetworkSource, pack_source, read_source
from ..container.records import Reader, check, unzigzag, varint, zigzag
from ..container.tensors import MAX_PARAMS, Tensor, pack_tensor
from ..latent.format import MAX_SYNTH_HIDDEN, read_networks
from ..latent.latents import MAX_LEVELS, Layout

VERSION = 5
MAX_MEMBERS = 1 << 20
MAX_MEMBER_AXIS = 1 << 14  # a member's height or width
MAX_NAME = 1024  # bytes of a member's name (UTF-8)
MAX_INDEX = 1 << 26  # bytes of the inflated index
MAX_LATENT_RANGE = 1 << 14


@dataclass
class Member:
    name: str
    height: int
    width: int
    words: int = 0  # its stream's length in u32 words
    offset: int = 0  # where its stream starts, in words from the first member's


@dataclass
class CollectionHeader:
    channels: int
    bit_depth: int
    levels: int
    hidden: int
    context_hidden: int
    lo: int = 0
    hi: int = 0
    source: NetworkSource = field(default_factory=NetworkSource)
    members: list[Member] = field(default_factory=list)
    count: int = 0  # members declared by the header (the index lists them)
    index_bytes: int = 0
    index_raw: int = 0
    kind: int = KIND_COLLECTION

    def layout(self, height: int, width: int) -> Layout:
        return Layout(height, width, self.channels, self.levels, self.hidden, self.context_hidden)

    @property
    def net_layout(self) -> Layout:
        """A layout with the networks' shapes (they do not depend on the size)."""
        side = 1 << (self.levels - 1)
        return self.layout(side, side)

    def find(self, name: str) -> int:
        for i, m in enumerate(self.members):
            if m.name == name:
                return i
        raise KeyError(name)


def pack_index(members: list[Member]) -> bytes:
    """The index, inflated (pack_header's index fields count this and its deflate)."""
    out = bytearray(b"".join(m.name.encode() + b"\0" for m in members))
    ph = pw = 0
    for m in members:
        out += varint(zigzag(m.height - ph)) + varint(zigzag(m.width - pw))
        ph, pw = m.height, m.width
    for m in members:
        out += varint(m.words)
    return bytes(out)


def deflate(raw: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return c.compress(raw) + c.flush()


def pack_header(h: CollectionHeader, index: bytes, raw_len: int) -> bytes:
    return (bytes([KIND_COLLECTION, h.channels, h.bit_depth, h.levels, h.hidden, h.context_hidden])
            + pack_source(h.source) + varint(len(h.members)) + varint(zigzag(h.lo)) + varint(h.hi - h.lo)
            + varint(len(index)) + varint(raw_len))


def network_records(tensors: list[Tensor]) -> bytes:
    return b"".join(pack_tensor(t) for t in tensors)


def dumps(h: CollectionHeader, records: bytes, words: list) -> bytes:
    """records: the networks' tensor records (empty when the source is by reference);
    words: per member its u32 words (numpy), in the order of h.members."""
    import numpy as np

    for m, w in zip(h.members, words):
        m.words = int(w.size)
    raw = pack_index(h.members)
    index = deflate(raw)
    body = b"".join(np.ascontiguousarray(w, "<u4").tobytes() for w in words)
    return frame(VERSION, pack_header(h, index, len(raw)), (records if h.source.carried else b"") + index + body)


def parse_header(data: bytes) -> CollectionHeader:
    r = Reader(data, "header")
    kind, channels, bit_depth, levels, hidden, context_hidden = r.unpack("BBBBBB")
    check(kind == KIND_COLLECTION, f"kind {kind} in a version-{VERSION} file")
    check(1 <= channels <= MAX_CHANNELS, f"{channels} channels")
    check(bit_depth in (8, 16), f"bit depth {bit_depth}")
    check(1 <= levels <= MAX_LEVELS, f"{levels} levels")
    check(hidden <= MAX_SYNTH_HIDDEN, f"hidden width {hidden}")
    check(context_hidden <= MAX_SYNTH_HIDDEN, f"context width {context_hidden}")
    source = read_source(r)
    count = r.varint()
    check(1 <= count <= MAX_MEMBERS, f"{count} members")
    lo = unzigzag(r.varint())
    span = r.varint()
    check(abs(lo) < MAX_LATENT_RANGE and abs(lo + span) < MAX_LATENT_RANGE, "latent range")
    index_bytes, index_raw = r.varint(), r.varint()
    check(index_raw <= min(MAX_INDEX, count * (MAX_NAME + 1 + 3 * 10)), f"index of {index_raw} bytes")
    check(index_bytes <= MAX_INDEX, f"index of {index_bytes} coded bytes")
    check(r.done(), "header has trailing bytes")
    return CollectionHeader(channels, bit_depth, levels, hidden, context_hidden, lo, lo + span, source, [], count,
                            index_bytes, index_raw)


def check_name(raw: bytes) -> str:
    """A member's name: a relative path of plain components, as UTF-8 (it becomes a path
    under the output folder of `asmr decode set.asmr -o out/`)."""
    check(1 <= len(raw) <= MAX_NAME, "member name length")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        check(False, "member name is not UTF-8")
    check(all(ord(c) >= 0x20 and c not in "\\:" for c in name), f"member name {name[:40]!r}")
    parts = name.split("/")
    check(all(p not in ("", ".", "..") for p in parts), f"member name {name[:40]!r}")
    return name


def read_index(data: bytes, h: CollectionHeader) -> list[Member]:
    d = zlib.decompressobj(-15)
    try:
        raw = d.decompress(data, h.index_raw + 1)
    except zlib.error:
        check(False, "member index does not inflate")
    check(len(raw) == h.index_raw and d.eof and not d.unconsumed_tail and not d.unused_data, "member index length")
    parts = raw.split(b"\0", h.count)
    check(len(parts) == h.count + 1, "member names")
    names = [check_name(p) for p in parts[:-1]]
    check(len(set(names)) == len(names), "two members share a name")
    r = Reader(parts[-1], "member index")
    members, ph, pw, pixels = [], 0, 0, 0
    side = 1 << (h.levels - 1)
    for name in names:
        ph, pw = ph + unzigzag(r.varint()), pw + unzigzag(r.varint())
        check(1 <= ph <= MAX_MEMBER_AXIS and 1 <= pw <= MAX_MEMBER_AXIS and max(ph, pw) >= side,
              f"member {name[:40]!r}: size {pw}x{ph}")
        pixels += ph * pw
        members.append(Member(name, ph, pw))
    check(pixels * h.channels <= MAX_SAMPLES, f"{pixels} pixels in the collection")
    offset = 0
    for m in members:
        m.words = r.varint()
        check(m.words <= 4 * h.layout(m.height, m.width).latent_count() + 4 and (h.lo < h.hi or m.words == 0),
              f"member {m.name[:40]!r}: {m.words} words")
        m.offset = offset
        offset += m.words
    check(r.done(), "member index has trailing bytes")
    return members


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    """-> AsmrFile(header with its members, networks' tensors, version, [all words, the
    network records' bytes]). The streams stay coded: a member decodes its own words."""
    import numpy as np

    h = parse_header(header)
    r = Reader(payload, "payload")
    tensors = read_networks(r, h.net_layout, False) if h.source.carried else []
    records = payload[:r.pos]
    h.members = read_index(r.take(h.index_bytes), h)
    total = sum(m.words for m in h.members)
    check(total <= MAX_PARAMS and len(payload) - r.pos == 4 * total, "member streams' length")
    words = np.frombuffer(r.take(4 * total), "<u4").astype(np.uint32)
    return AsmrFile(h, tensors, version, [words, records])
