"""Fuzz the .asmr reader: mutate valid files and check that every case ends in an AsmrError
or a decoded raster -- never another exception, a hang, or an allocation past the cap.

Plain bit flips mostly test the CRCs, so half the mutants are re-serialised with correct
lengths and CRCs (header fields set to extremes, payload bytes and numbers overwritten,
parts truncated or extended), and some are whole files built by each format's `dumps` around
headers that declare huge or odd sizes, so the field checks and the entropy decoder
behind the CRCs are reached.

    nice python benchmarks/fuzz_parser.py --cases 100000 --seed 0

Prints the count per outcome (error messages with their numbers blanked) and the
slowest case. tests/test_fuzz.py runs a bounded slice of the same mutants.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import resource
import signal
import struct
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asmr_cli import api as codec  # noqa: E402
from asmr_cli.api import formats  # noqa: E402
from asmr_cli.clip import format as fmt4  # noqa: E402
from asmr_cli.container import (
    entropy,  # noqa: E402
    tensors,  # noqa: E402
)
from asmr_cli.container import file as cfile  # noqa: E402
from asmr_cli.coordinate import format as fmt2  # noqa: E402
from asmr_cli.core.errors import AsmrError  # noqa: E402
from asmr_cli.core.quantize import step_groups  # noqa: E402
from asmr_cli.latent import format as fmt3  # noqa: E402

FUZZ_MAX_PIXELS = 1 << 16  # the decoder's --max-pixels during fuzzing
CASE_SECONDS = 10.0  # a case running longer than this is a hang
SLOW_SECONDS = 1.0
MEMORY_CAP = 3 << 30  # address space on top of what the process holds at start

U32 = [0, 1, 2, 0x7F, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
F32 = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, 1e-45, 1e-30, 1e30, 3.4e38, 65504.0]


# -- seeds -------------------------------------------------------------------------------

def _tensors(header: fmt2.Header, rng: np.random.Generator, spread: float = 4.0,
             constant: bool = False) -> list[tensors.Tensor]:
    out = []
    for name, shape in header.architecture.param_shapes():
        steps = rng.uniform(0.001, 0.1, step_groups(name, shape)).astype(np.float32)
        if constant:
            coded = entropy.CodedTensor(entropy.CONSTANT, 0, 0, 0.0, 0.0, np.zeros(0, np.uint32))
        else:
            coded = entropy.encode(np.rint(rng.laplace(0, spread, size=shape)).astype(np.int32))
        out.append(tensors.Tensor(steps, coded))
    return out


def _file(header: fmt2.Header, rng: np.random.Generator, **kw) -> bytes:
    return fmt2.dumps(header, _tensors(header, rng, **kw))


def seeds() -> list[bytes]:
    """Small valid files covering the header's variants (channels, depth, latents, 1x1)."""
    rng = np.random.default_rng(0)
    H, K = fmt2.Header, cfile.KIND_IMAGE
    headers = [
        H(K, (13, 21), 3, 8, ((1, 2, 7), (1, 3, 7)), 8, 2, 30.0),
        H(K, (9, 5), 1, 16, ((1, 3, 3), (1, 1, 5)), 6, 0, 30.0),
        H(K, (1, 1), 4, 8, ((1, 1), (1, 1)), 4, 1, 30.0),
        H(K, (1, 40), 2, 8, ((1, 1, 1, 1), (2, 2, 2, 5)), 5, 3, 25.0),
    ]
    files = [_file(h, rng) for h in headers]
    files.append(_file(headers[0], rng, spread=400.0))
    if hasattr(codec, "decode_video"):
        files.append(_file(H(cfile.KIND_VIDEO, (3, 6, 7), 3, 8, ((1, 3), (2, 3), (1, 7)), 6, 1, 30.0, 25, 1),
                           rng))
    if True:  # format 3
        L = fmt3.LatentHeader
        files += [_latent_file(L((13, 21), 3, 8, 4, 4, 4), rng), _latent_file(L((9, 5), 1, 16, 2, 2, 0), rng),
                  _latent_file(L((1, 1), 4, 8, 1, 0, 0), rng), _latent_file(L((6, 40), 2, 8, 5, 3, 2), rng)]
    if True:  # format 8: format 3 with the refine stage (widths 1 and the cap, 1x1, two channels)
        L = fmt3.LatentHeader
        files += [_latent_file(L((13, 21), 3, 8, 4, 4, 4, refine=3), rng),
                  _latent_file(L((1, 1), 1, 16, 1, 0, 0, refine=fmt3.MAX_REFINE), rng),
                  _latent_file(L((6, 9), 2, 8, 3, 2, 2, refine=1), rng)]
    if True:  # format 4
        L, V = fmt3.LatentHeader, cfile.KIND_VIDEO
        files += [_clip_file(L((5, 13, 21), 3, 8, 4, 4, 4, V, 25, 1, 2), rng),
                  _clip_file(L((3, 9, 5), 3, 8, 2, 0, 2, V, 30000, 1001, 3), rng),
                  _clip_file(L((1, 1, 1), 3, 8, 1, 0, 0, V, 0, 1, 1), rng)]
    if True:  # format 7: clips with motion (periods, every motion mode, both filters, block sizes)
        from asmr_cli.clip.format7 import MotionHeader

        M, V = MotionHeader, cfile.KIND_VIDEO
        files += [_clip7_file(M((5, 13, 21), 3, 8, 4, 4, 4, V, 25, 1, 5, 2, 8, 0), rng),
                  _clip7_file(M((4, 9, 17), 3, 8, 2, 0, 2, V, 30000, 1001, 2, 2, 4, 1), rng),
                  _clip7_file(M((1, 1, 1), 3, 8, 1, 0, 0, V, 0, 1, 1, 1, 32, 0), rng)]
    if True:  # format 9: hierarchical B frames (two groups, a period that leaves a one-frame segment, 1x1)
        from asmr_cli.clip.format9 import BHeader

        B, V = BHeader, cfile.KIND_VIDEO
        files += [_clip7_file(B((9, 13, 21), 3, 8, 4, 4, 4, V, 25, 1, 5, 4, 8, 0), rng),
                  _clip7_file(B((6, 9, 17), 3, 8, 2, 0, 2, V, 30000, 1001, 6, 4, 4, 1), rng),
                  _clip7_file(B((1, 1, 1), 3, 8, 1, 0, 0, V, 0, 1, 1, 1, 32, 0), rng)]
    if True:  # format 5: collections (members of several sizes, subfolders, one member, 16-bit)
        files += [_collection_file(3, 8, 3, 4, 4, [("a/x.png", 13, 21), ("a/b/y.png", 16, 16), ("z.png", 8, 5)],
                                   rng),
                  _collection_file(1, 16, 2, 0, 0, [("one", 9, 5)], rng),
                  _collection_file(4, 8, 1, 2, 2, [(f"t/{i:03d}.png", 4, 4) for i in range(12)], rng)]
    return files


def _collection_file(channels: int, depth: int, levels: int, hidden: int, ctx: int, members, rng) -> bytes:
    """A valid version-5 file (a collection) with random networks and latents."""
    from asmr_cli.collection.codec import pack
    from asmr_cli.collection.format import CollectionHeader, Member
    from asmr_cli.latent import context_model as cm

    h = CollectionHeader(channels, depth, levels, hidden, ctx, members=[Member(*m) for m in members])
    lay = h.net_layout
    synthesis = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in lay.synthesis_shapes()}
    context = {n: rng.normal(0, 0.5, s) for n, s in cm.parameter_shapes(len(lay.grids()), lay.context_hidden)}
    latents = [[rng.laplace(0, 2, s) for _, _, s in h.layout(m.height, m.width).grids()] for m in h.members]
    return pack(h, synthesis, context, latents, 8)


def _clip7_file(header, rng: np.random.Generator) -> bytes:
    """A valid version-7 or -9 file (a clip with motion) with random weights, latents and
    motion (every slot's mode drawn, GLOBAL first where a B frame drew UNUSED twice,
    vectors within a few pixels)."""
    from asmr_cli.clip import motion
    from asmr_cli.clip.codec7 import pack
    from asmr_cli.clip.format7 import GroupMotion
    from asmr_cli.latent import context_model as cm

    layout = header.layout
    by, bx = motion.blocks_of(header.sizes[1], header.sizes[2], header.block)
    groups = []
    for start, end in header.group_spans():
        synthesis = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in layout.synthesis_shapes()}
        context = {n: rng.normal(0, 0.5, s)
                   for n, s in cm.parameter_shapes(len(layout.grids()), layout.context_hidden, True)}
        frames = [[rng.laplace(0, 2, s) for _, _, s in layout.grids()] for _ in range(start, end)]
        modes = rng.integers(0, max(header.modes) + 1, header.slots(start, end))
        if header.version == 9:
            pairs = modes.reshape(-1, 2)
            pairs[np.all(pairs == motion.UNUSED, axis=1), 0] = motion.GLOBAL
        mot = GroupMotion(modes, rng.integers(-12, 13, (int(np.sum(modes == 1)), 2)),
                          rng.integers(-12, 13, (int(np.sum(modes == 2)), by, bx, 2)))
        groups.append((synthesis, context, mot, frames))
    return pack(header, groups, 8)


def _clip_file(header, rng: np.random.Generator) -> bytes:
    """A valid version-4 file (a clip) with random weights and latents."""
    from asmr_cli.clip.codec import pack_clip
    from asmr_cli.latent import context_model as cm

    layout = header.layout
    groups = []
    for start, end in header.group_spans():
        synthesis = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in layout.synthesis_shapes()}
        context = {n: rng.normal(0, 0.5, s)
                   for n, s in cm.parameter_shapes(len(layout.grids()), layout.context_hidden, True)}
        frames = [[rng.laplace(0, 2, s) for _, _, s in layout.grids()] for _ in range(start, end)]
        groups.append((synthesis, context, frames))
    return pack_clip(header, groups, 8)


def _latent_file(header, rng: np.random.Generator) -> bytes:
    """A valid version-3 file (version 8 with a refine width) with random weights and latents."""
    from asmr_cli.latent import context_model as cm
    from asmr_cli.latent.codec import pack

    layout = header.layout
    synthesis = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in layout.synthesis_shapes()}
    context = {n: rng.normal(0, 0.5, s) for n, s in cm.parameter_shapes(len(layout.grids()), layout.context_hidden)}
    latents = [rng.laplace(0, 2, s) for _, _, s in layout.grids()]
    return pack(header, synthesis, context, latents, 8)


# -- container surgery -------------------------------------------------------------------

def split(data: bytes) -> tuple[bytes, bytes]:
    """(header, payload) of a valid file."""
    hlen, = struct.unpack_from("<I", data, 5)
    header = data[9:9 + hlen]
    plen, = struct.unpack_from("<I", data, 13 + hlen)
    return header, data[17 + hlen:17 + hlen + plen]


def join(header: bytes, payload: bytes, version: int = fmt2.VERSION) -> bytes:
    """A container with correct lengths and CRCs around any header and payload bytes."""
    return (cfile.MAGIC + struct.pack("<BI", version, len(header)) + header
            + struct.pack("<I", zlib.crc32(header)) + struct.pack("<I", len(payload)) + payload
            + struct.pack("<I", zlib.crc32(payload)))


def _bytes_mutate(b: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(b)
    if not out:
        return bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
    for _ in range(int(rng.integers(1, 9))):
        pos = int(rng.integers(0, len(out)))
        op = int(rng.integers(0, 4))
        if op == 0:
            out[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:
            out[pos] = int(rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == 2:
            out[pos] = int(rng.integers(0, 256))
        else:  # overwrite 4 bytes with an extreme u32 or f32
            word = (struct.pack("<I", int(rng.choice(U32))) if rng.random() < 0.5
                    else struct.pack("<f", float(rng.choice(F32))))
            out[pos:pos + 4] = word
    return bytes(out)


def _resize(b: bytes, rng: np.random.Generator) -> bytes:
    if rng.random() < 0.5 and b:
        return b[:int(rng.integers(0, len(b)))]
    extra = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return b + extra if rng.random() < 0.5 else extra + b


def _extreme_latent_header(header: bytes, rng: np.random.Generator, version: int) -> bytes:
    """A version-3, 4, 7, 8 or 9 header with one field set to an extreme value."""
    from asmr_cli.clip import format7, format9

    image = version in fmt3.VERSIONS
    fmt = {fmt3.VERSION: fmt3, fmt3.VERSION_REFINE: fmt3, fmt4.VERSION: fmt4, 7: format7, 9: format7}[version]
    if image:
        h = fmt.parse_header(header, version)
    elif version == 9:
        h = format7.parse_header(header, format9.BHeader)
    else:
        h = fmt.parse_header(header)
    names = ["kind", "sizes", "channels", "bit_depth", "levels", "hidden", "context_hidden"]
    names += ["group", "fps_num", "fps_den"] if not image else []
    names += ["period", "block", "filt"] if version in (7, 9) else []
    names += ["refine"] if version == fmt3.VERSION_REFINE else []
    name = str(rng.choice(names))
    if name == "sizes":
        sizes = list(h.sizes)
        sizes[int(rng.integers(0, len(sizes)))] = int(rng.choice(U32 + [60000, 1 << 20, (1 << 20) + 1]))
        h = dataclasses.replace(h, sizes=tuple(sizes))
    else:
        h = dataclasses.replace(h, **{name: int(rng.choice(U32[:6] + [7, 8, 9, 64, 65]))})
    try:
        return fmt3.pack_image_header(h) if image else fmt.pack_header(h)
    except (struct.error, OverflowError):
        return header


def _extreme_collection_header(header: bytes, rng: np.random.Generator) -> bytes:
    """A version-5 header with one field set to an extreme value (the index and the
    payload unchanged, so counts and lengths disagree with them)."""
    from asmr_cli.collection import format as fmt5
    from asmr_cli.container.networks import BY_REFERENCE, NetworkSource

    h = fmt5.parse_header(header)
    name = str(rng.choice(["channels", "bit_depth", "levels", "hidden", "context_hidden", "count", "lo", "hi",
                           "index_bytes", "index_raw", "source"]))
    value = int(rng.choice(U32[:10] + [7, 8, 9, 64, 65, 1 << 20, (1 << 20) + 1]))
    if name == "source":
        h.source = NetworkSource(BY_REFERENCE, bytes(rng.integers(0, 256, 32, dtype=np.uint8)))
    elif name == "lo":
        h.lo = -value
    else:
        setattr(h, name, value)
    h.members = [fmt5.Member("m", 1, 1)] * h.count if h.count <= 1 << 12 else []
    try:
        out = (bytes([cfile.KIND_COLLECTION, h.channels, h.bit_depth, h.levels, h.hidden, h.context_hidden])
               + fmt5.pack_source(h.source) + fmt5.varint(h.count) + fmt5.varint(fmt5.zigzag(h.lo))
               + fmt5.varint(max(0, h.hi - h.lo)) + fmt5.varint(h.index_bytes) + fmt5.varint(h.index_raw))
    except (ValueError, OverflowError):
        return header
    return out


def _extreme_header(header: bytes, rng: np.random.Generator, version: int = fmt2.VERSION) -> bytes:
    """Re-pack the header with one field set to an extreme value (or a changed axis/level count)."""
    if version == 5:
        return _extreme_collection_header(header, rng)
    if version in (*fmt3.VERSIONS, fmt4.VERSION, 7, 9):
        return _extreme_latent_header(header, rng, version)
    h = fmt2.parse_header(header)
    name = str(rng.choice(["kind", "sizes", "channels", "bit_depth", "bases", "hidden", "latent_dim",
                           "w0", "fps_num", "fps_den", "dims", "levels", "fit"]))
    if name == "w0":
        h = dataclasses.replace(h, w0=float(rng.choice(F32 + [30.0, 9999.0, 1e4])))
    elif name == "sizes":
        sizes = list(h.sizes)
        sizes[int(rng.integers(0, len(sizes)))] = int(rng.choice(U32 + [60000, 1 << 20, (1 << 20) + 1]))
        h = dataclasses.replace(h, sizes=tuple(sizes))
    elif name == "fit":  # a consistent header declaring a huge image: bases grown to cover it
        side = int(rng.choice([60000, 8192, 4096, 1 << 20]))
        levels = len(h.bases[0])
        base = min(64, max(2, math.ceil(side ** (1 / levels))))
        h = dataclasses.replace(h, sizes=(side,) * len(h.sizes),
                                bases=tuple((base,) * levels for _ in h.sizes))
    elif name == "bases":
        bases = [list(b) for b in h.bases]
        a, i = int(rng.integers(0, len(bases))), int(rng.integers(0, len(bases[0])))
        bases[a][i] = int(rng.choice([0, 1, 2, 63, 64, 65, 255]))
        h = dataclasses.replace(h, bases=tuple(tuple(b) for b in bases))
    elif name == "dims":
        if rng.random() < 0.5 and len(h.sizes) > 1:
            h = dataclasses.replace(h, sizes=h.sizes[1:], bases=h.bases[1:])
        else:
            h = dataclasses.replace(h, sizes=(int(rng.choice([1, 2, 7])),) + h.sizes,
                                    bases=((1,) * (len(h.bases[0]) - 1) + (7,),) + h.bases)
    elif name == "levels":
        if rng.random() < 0.5:
            h = dataclasses.replace(h, bases=tuple(b[1:] for b in h.bases))
        else:
            h = dataclasses.replace(h, bases=tuple((1,) * int(rng.integers(1, 20)) + b for b in h.bases))
    else:
        h = dataclasses.replace(h, **{name: int(rng.choice(U32))})
    try:
        return fmt2.pack_header(h)
    except (struct.error, OverflowError):
        return header  # the value does not fit the field: fall back to the valid header


def mutate(data: bytes, rng: np.random.Generator, pool: list[bytes]) -> tuple[str, bytes]:
    """One mutant of a valid file and the name of the mutation."""
    header, payload = split(data)
    version = data[4]
    r = rng.random()
    # -- raw mutations: the CRCs catch most of these
    if r < 0.10:
        return "raw_bytes", _bytes_mutate(data, rng)
    if r < 0.15:
        return "raw_truncate", data[:int(rng.integers(0, len(data)))]
    if r < 0.18:
        return "raw_extend", data + rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    if r < 0.21:
        other = pool[int(rng.integers(0, len(pool)))]
        cut = int(rng.integers(0, min(len(data), len(other))))
        return "raw_splice", data[:cut] + other[cut:]
    if r < 0.25:  # the length fields themselves, CRCs untouched
        out = bytearray(data)
        pos = 5 if rng.random() < 0.5 else 13 + len(header)
        out[pos:pos + 4] = struct.pack("<I", int(rng.choice(U32)))
        return "raw_lengths", bytes(out)
    # -- re-serialised with correct lengths and CRCs: the field checks and the decoder run
    if r < 0.40:
        return "crc_header_field", join(_extreme_header(header, rng, version), payload, version)
    if r < 0.50:
        return "crc_header_bytes", join(_bytes_mutate(header, rng), payload, version)
    if r < 0.53:
        return "crc_header_resize", join(_resize(header, rng), payload, version)
    if r < 0.75:
        return "crc_payload_bytes", join(header, _bytes_mutate(payload, rng), version)
    if r < 0.82:
        return "crc_payload_resize", join(header, _resize(payload, rng), version)
    if r < 0.90:  # a stretch of random bytes: the range decoder sees noise
        out = bytearray(payload)
        if out:
            start = int(rng.integers(0, len(out)))
            n = min(len(out) - start, int(rng.integers(1, 256)))
            out[start:start + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        return "crc_payload_noise", join(header, bytes(out), version)
    if r < 0.92:
        other = [v for v in (0, 1, 2, 3, 4, 5, 7, 8, 255) if v != version]
        return "crc_version", join(header, payload, version=int(rng.choice(other)))
    # -- whole files written by the library around an odd but well-formed header
    return "synth_huge", synth(rng)


def synth(rng: np.random.Generator) -> bytes:
    """A CRC-valid file whose header declares a large or oddly padded signal; the tensors are
    constant (no words) or small, so the file stays tiny."""
    levels = int(rng.integers(2, 8))
    sides = [int(rng.choice([1, 2, 100, 4096, 60000, 1 << 20])) for _ in range(2)]
    bases = []
    for n in sides:
        base = min(64, max(1, math.ceil(n ** (1 / levels))))
        b = [base] * levels
        if rng.random() < 0.3:  # over-padded: a last level of 64 whatever the size
            b[-1] = 64
        if math.prod(b) < n:
            b = [64] * levels
        bases.append(tuple(b))
    hidden = int(rng.choice([1, 4, 64, 1024]))
    latent = int(rng.choice([0, 0, 1, 16]))
    h = fmt2.Header(cfile.KIND_IMAGE, tuple(sides), int(rng.integers(1, 5)), 8, tuple(bases),
                         hidden, latent, 30.0)
    try:
        if h.architecture.param_count() > 200_000:
            return join(fmt2.pack_header(h), b"")  # too big to build: the header alone
        return _file(h, rng, constant=rng.random() < 0.7, spread=1.0)
    except AsmrError:
        return join(fmt2.pack_header(h), b"")


# -- running one case --------------------------------------------------------------------

class _Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise _Hang


def decode_case(data: bytes) -> str:
    """What the reader does with `data`: 'ok', 'AsmrError: <message, digits blanked>', or
    'CRASH ...' / 'HANG' for anything else."""
    try:
        f = formats.loads(data)
        codec.describe(data)  # what `asmr stats` prints
        if f.header.kind == cfile.KIND_VIDEO and hasattr(codec, "decode_video"):
            codec.decode_video(data, max_pixels=FUZZ_MAX_PIXELS)
        elif f.header.kind == getattr(cfile, "KIND_COLLECTION", -1):  # every member, each alone
            c = codec.open_collection(data, max_pixels=FUZZ_MAX_PIXELS)
            for m in c.members:
                codec.decode_member(data, m.name, max_pixels=FUZZ_MAX_PIXELS, collection=c)
        else:
            codec.decode_bytes(data, max_pixels=FUZZ_MAX_PIXELS)  # what encode and stats --ref use
            if hasattr(codec, "render_image"):
                codec.render_image(data, max_pixels=FUZZ_MAX_PIXELS)  # what decode uses
        return "ok"
    except AsmrError as exc:
        return "AsmrError: " + re.sub(r"-?\d[\d.e+-]*", "#", str(exc))[:70]
    except _Hang:
        return "HANG"
    except Exception as exc:  # noqa: BLE001 -- any other exception is the bug we look for
        return f"CRASH {type(exc).__name__}: {str(exc)[:80]}"


def run(cases: int, seed: int, report_every: int = 0, budget_s: float | None = None):
    """Run `cases` mutants; returns (outcomes Counter, mutation Counter, slowest, failures)."""
    import warnings

    warnings.simplefilter("error", RuntimeWarning)  # numpy overflow/NaN warnings count as failures
    pool = seeds()
    rng = np.random.default_rng(seed)
    outcomes: Counter = Counter()
    kinds: Counter = Counter()
    failures: list[tuple[str, str, bytes]] = []
    slowest = (0.0, "", b"")
    old = signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    try:
        for i in range(cases):
            if budget_s is not None and time.perf_counter() - start > budget_s:
                break
            base = pool[int(rng.integers(0, len(pool)))]
            kind, data = mutate(base, rng, pool)
            kinds[kind] += 1
            t0 = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                outcome = decode_case(data)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            dt = time.perf_counter() - t0
            if dt > SLOW_SECONDS and not outcome.startswith(("CRASH", "HANG")):
                outcome = "SLOW " + outcome
            outcomes[outcome] += 1
            if dt > slowest[0]:
                slowest = (dt, f"{kind} -> {outcome}", data)
            if outcome.startswith(("CRASH", "HANG", "SLOW")):
                failures.append((kind, outcome, data))
            if report_every and (i + 1) % report_every == 0:
                print(f"  {i + 1} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGALRM, old)
        warnings.resetwarnings()
    return outcomes, kinds, slowest, failures


def _cap_memory() -> None:
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + MEMORY_CAP, resource.RLIM_INFINITY))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", type=Path, help="write failing inputs to this folder")
    args = ap.parse_args()
    _cap_memory()
    t0 = time.perf_counter()
    outcomes, kinds, slowest, failures = run(args.cases, args.seed, report_every=10_000)
    seconds = time.perf_counter() - t0
    total = sum(outcomes.values())
    print(f"{total} cases in {seconds:.0f} s (seed {args.seed}, max pixels {FUZZ_MAX_PIXELS}, "
          f"address space cap +{MEMORY_CAP >> 30} GiB, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MiB)")
    print("\nmutations:")
    for k, n in sorted(kinds.items()):
        print(f"  {n:7d}  {k}")
    print("\noutcomes:")
    for k, n in outcomes.most_common():
        print(f"  {n:7d}  {k}")
    print(f"\nslowest case: {slowest[0] * 1000:.1f} ms ({slowest[1]}, {len(slowest[2])} bytes)")
    print(f"failures (crash, hang or slow): {len(failures)}")
    if args.save and failures:
        args.save.mkdir(parents=True, exist_ok=True)
        for i, (_kind, _outcome, data) in enumerate(failures[:100]):
            (args.save / f"case{i:03d}.asmr").write_bytes(data)
    sys.exit(1 if any(not o.startswith("SLOW") for _k, o, _d in failures) else 0)


if __name__ == "__main__":
    main()
