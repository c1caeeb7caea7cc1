"""Format versions 3 and 8 as a family (core/family.py): images as a latent pyramid (8:
with the synthesis's refine stage)."""

from __future__ import annotations

import math
import time

from ..container.file import KIND_VIDEO, AsmrFile, unframe
from ..core.errors import AsmrError
from ..core.family import Family
from ..core.metrics import psnr
from ..core.options import EncodeOptions, EncodeResult, check_effort, check_samples
from ..core.presets import PRESETS
from ..core.rates import image_target
from ..io.media import Raster, float_raster
from . import codec
from . import context_model as cm
from .format import VERSIONS, LatentHeader, parse


def describe(h: LatentHeader, nbytes: int, version: int) -> dict:
    """The stats that follow from the header (an image's, or a clip's of version 4) and
    the file size."""
    lay = h.layout
    video = h.kind == KIND_VIDEO
    groups = len(h.group_spans()) if video else 1
    macs, unshared = codec.decoder_macs(lay, video), codec.unshared_macs(lay, video)
    params = sum(math.prod(s) for _, s in lay.synthesis_shapes())
    params += sum(math.prod(s) for _, s in cm.parameter_shapes(len(lay.grids()), lay.context_hidden, video))
    out = {
        "format_version": version, "kind": "video" if video else "image", "model": "latent",
        "width": lay.width, "height": lay.height, "channels": h.channels, "bit_depth": h.bit_depth,
        "bytes": nbytes, "bpp": round(nbytes * 8 / (lay.width * lay.height * h.frames), 5),
        "params": params * groups, "latents": lay.latent_count() * h.frames, "levels": lay.levels,
        "hidden": lay.hidden, "refine": lay.refine,
        "macs_per_pixel": round(macs, 1), "unshared_macs_per_pixel": round(unshared, 1),
        "mac_reduction": round(unshared / macs, 2),
    }
    if video:
        out.update(frames=h.frames, fps=h.fps_num / h.fps_den, group=h.group, groups=groups)
    return out


def check_decodable(h: LatentHeader, max_pixels: int) -> None:
    """A latent pyramid's work and memory follow its pixel count (latents.py)."""
    check_samples(h.sizes, max_pixels)


def render_image(f: AsmrFile, out_size: tuple[int, int], top_left: tuple[int, int],
                 bottom_right: tuple[int, int]):
    return codec.render(codec.unpack(f), out_size, top_left, bottom_right)


def _psnr(ref: Raster, test: Raster) -> float:
    return psnr(ref.pixels, test.pixels, 65535.0 if ref.bit_depth == 16 else 255.0)


def encode_image(raster: Raster, opts: EncodeOptions, progress=None) -> EncodeResult:
    """plan (target, layout, header) -> encoder.encode (fit, weights' precision, rate fit,
    bytes) -> the check decode -> stats."""
    from ..core.device import resolve_device
    from . import encoder

    start = time.perf_counter()
    if opts.preset not in PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(PRESETS)}")
    if opts.iters is not None or opts.time_limit is not None:
        check_effort(1 if opts.iters is None else opts.iters, opts.time_limit)
    n = raster.height * raster.width
    target = image_target(n, opts.bpp, opts.size, opts.quality, opts.psnr)
    layout = encoder.layout_for(raster.height, raster.width, raster.channels, opts.preset, opts.hidden, opts.levels,
                                refine=encoder.refine_width(n))
    header = LatentHeader((raster.height, raster.width), raster.channels, raster.bit_depth,
                          layout.levels, layout.hidden, layout.context_hidden, refine=layout.refine)
    check_decodable(header, opts.max_pixels)
    device = resolve_device(opts.device)  # the fit trains there; coding and the check decode on the CPU
    enc = encoder.encode(raster.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                         opts.seed, progress, start, device)
    decoded = check_decode(enc.data)
    achieved = _psnr(raster, decoded)
    if progress:
        progress(enc.shown_steps, enc.shown_steps, achieved)
    stats = describe(header, len(enc.data), header.version)
    unquantised = float_raster(enc.unquantised, (raster.height, raster.width), raster.bit_depth)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(achieved, 3), psnr_float_latents=round(_psnr(raster, unquantised), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp, target_psnr=target.psnr,
                 lam=enc.lam, weight_bits=enc.weight_bits,
                 latent_scale=round(enc.scale, 4), device=device,
                 estimated_seconds=None if enc.estimated_seconds is None else round(enc.estimated_seconds, 1))
    # deprecated alias (docs/json.md): this format's float-latent PSNR is no quantisation loss
    stats["psnr_unquantised"] = stats["psnr_float_latents"]
    return EncodeResult(enc.data, stats)


def check_decode(data: bytes) -> Raster:
    """The written bytes parsed and rendered at the native size, as `asmr decode` does."""
    f = parse(*unframe(data, FAMILY.versions))
    h, w = f.header.sizes
    return float_raster(render_image(f, (h, w), (0, 0), (h, w)), (h, w), f.header.bit_depth)


FAMILY = Family("latent", VERSIONS, parse, describe, check_decodable, render_image=render_image,
                encode_image=encode_image)
