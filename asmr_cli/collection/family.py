"""Format version 5 as a family (core/family.py): collections of images sharing networks."""

from __future__ import annotations

import math
import time

import numpy as np

from ..core.errors import AsmrError
from ..core.family import Family
from ..core.metrics import psnr
from ..core.options import EncodeOptions, EncodeResult, check_effort, check_samples
from ..core.rates import target_for
from ..io.media import Raster
from ..latent import context_model as cm
from . import codec
from .format import VERSION, CollectionHeader, Member, parse


def describe(h: CollectionHeader, nbytes: int, version: int) -> dict:
    lay = h.net_layout
    pixels = sum(m.height * m.width for m in h.members)
    params = sum(math.prod(s) for _, s in lay.synthesis_shapes())
    params += sum(math.prod(s) for _, s in cm.parameter_shapes(len(lay.grids()), lay.context_hidden))
    return {"format_version": version, "kind": "collection", "model": "latent", "members": len(h.members),
            "channels": h.channels, "bit_depth": h.bit_depth, "pixels": pixels, "bytes": nbytes,
            "bpp": round(nbytes * 8 / max(1, pixels), 5), "params": params, "levels": h.levels, "hidden": h.hidden,
            "context_hidden": h.context_hidden, "networks": "carried" if h.source.carried else "by reference",
            "stream_bytes": 4 * sum(m.words for m in h.members)}


def check_decodable(h: CollectionHeader, max_pixels: int) -> None:
    """Each member is decoded alone: its pixels against the limit."""
    for m in h.members:
        check_samples((m.height, m.width), max_pixels)


def check_members(rasters: list[Raster]) -> None:
    channels = {r.channels for r in rasters}
    depths = {r.bit_depth for r in rasters}
    if len(channels) > 1 or len(depths) > 1:
        raise AsmrError("a collection's members share their channels and bit depth (found "
                        f"{sorted(channels)} channels, {sorted(depths)}-bit); make separate collections")


def encode_collection(named: list[tuple[str, Raster]], opts: EncodeOptions, progress=None) -> EncodeResult:
    """(name, raster) members -> one file: plan (target over every pixel, layout, header)
    -> encoder.encode -> the check decode of every member -> stats."""
    from ..core.device import resolve_device
    from . import encoder
    from .format import check_name

    start = time.perf_counter()
    if not named:
        raise AsmrError("a collection needs at least one image")
    if opts.preset not in encoder.COLLECTION_PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(encoder.COLLECTION_PRESETS)}")
    if opts.iters is not None or opts.time_limit is not None:
        check_effort(1 if opts.iters is None else opts.iters, opts.time_limit)
    rasters = [r for _, r in named]
    check_members(rasters)
    for name, _ in named:
        try:
            check_name(name.encode())
        except AsmrError:
            raise AsmrError(f"{name!r}: a member's name is a relative path of plain parts") from None
    if len({n for n, _ in named}) != len(named):
        raise AsmrError("two members have the same name")
    sizes = [(r.height, r.width) for r in rasters]
    pixels = sum(h * w for h, w in sizes)
    target = target_for(pixels, opts.bpp, opts.size, opts.quality)
    levels, hidden, ctx = encoder.collection_layout(sizes, rasters[0].channels, opts.preset, opts.hidden,
                                                    opts.levels)
    header = CollectionHeader(rasters[0].channels, rasters[0].bit_depth, levels, hidden, ctx,
                              members=[Member(n, r.height, r.width) for n, r in named])
    check_decodable(header, opts.max_pixels)
    resolve_device(opts.device)
    enc = encoder.encode([r.as_float() for r in rasters], header, target, opts.preset, opts.iters, opts.time_limit,
                         opts.seed, progress)
    c = codec.unpack(parse(*_unframe(enc.data)))
    scores = [_psnr(r, member_raster(c, i)) for i, r in enumerate(rasters)]
    stats = describe(c.header, len(enc.data), VERSION)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(float(np.mean(scores)), 3), target_bytes=target.budget_bytes, target_bpp=target.bpp,
                 lam=enc.lam, weight_bits=enc.weight_bits, latent_scale=round(enc.scale, 4))
    return EncodeResult(enc.data, stats)


def add_member(data: bytes, name: str, raster: Raster, opts: EncodeOptions) -> EncodeResult:
    """The collection in `data` with one more member, its latents fitted against the frozen
    networks (nothing else is retrained or recoded)."""
    from . import encoder
    from .format import check_name

    start = time.perf_counter()
    c = codec.unpack(parse(*_unframe(data)))
    h = c.header
    if any(m.name == name for m in h.members):
        raise AsmrError(f"{name!r} is already a member (decode it, or give another name)")
    try:
        check_name(name.encode())
    except AsmrError:
        raise AsmrError(f"{name!r}: a member's name is a relative path of plain parts") from None
    if (raster.channels, raster.bit_depth) != (h.channels, h.bit_depth):
        raise AsmrError(f"{name}: {raster.channels} channels, {raster.bit_depth}-bit; the collection holds "
                        f"{h.channels} channels, {h.bit_depth}-bit")
    if max(raster.height, raster.width) < 1 << (h.levels - 1):
        raise AsmrError(f"{name}: {raster.width}x{raster.height} is smaller than the collection's pyramid allows")
    check_samples((raster.height, raster.width), opts.max_pixels)
    latents, steps = encoder.fit_member(c, raster.as_float(), opts.seed, opts.iters, opts.time_limit, opts.preset)
    out = codec.with_member(c, Member(name, raster.height, raster.width), latents)
    c2 = codec.unpack(parse(*_unframe(out)))
    i = len(c2.members) - 1
    m = c2.members[i]
    stats = {"member": name, "members": len(c2.members), "bytes": len(out), "added_bytes": len(out) - len(data),
             "member_bpp": round(32.0 * m.words / (m.height * m.width), 4),
             "psnr": round(_psnr(raster, member_raster(c2, i)), 3), "iterations": steps,
             "encode_seconds": round(time.perf_counter() - start, 3)}
    return EncodeResult(out, stats)


def member_raster(c: codec.Collection, i: int, out_size=None, top_left=(0, 0), bottom_right=None) -> Raster:
    from ..io.media import float_raster

    m = c.members[i]
    out_size = out_size or (m.height, m.width)
    bottom_right = bottom_right or out_size
    out = codec.render_member(c, i, out_size, top_left, bottom_right)
    return float_raster(out, (bottom_right[0] - top_left[0], bottom_right[1] - top_left[1]), c.header.bit_depth)


def _psnr(ref: Raster, test: Raster) -> float:
    return psnr(ref.pixels, test.pixels, 65535.0 if ref.bit_depth == 16 else 255.0)


def _unframe(data: bytes):
    from ..container.file import unframe

    return unframe(data, (VERSION,))


FAMILY = Family("collection", (VERSION,), parse, describe, check_decodable, encode_collection=encode_collection)
