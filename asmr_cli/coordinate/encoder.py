"""The coordinate network's encoder (format version 2), for images (--model coordinate)
and clips: budget -> architecture -> fit (torch) -> steps that fill the budget -> bytes
-> the check decode."""

from __future__ import annotations

import math
import time

import numpy as np

from ..container.file import KIND_IMAGE, KIND_VIDEO, AsmrFile
from ..core.errors import AsmrError
from ..core.metrics import psnr
from ..core.options import EncodeOptions, EncodeResult, check_effort
from ..core.presets import PRESETS, VIDEO_PRESETS
from ..core.quantize import step_groups
from ..core.rates import Target, clip_target, refuse_psnr, target_for
from ..io.clips import Clip, fps_pair, frame_psnr
from ..io.media import Raster, float_raster
from .architecture import Architecture
from .codec import check_decodable, describe, header_for, native_frames, pack, render_image, unpack
from .decomposition import auto_bases, levels_for, parse_bases, video_bases
from .format import MAX_HIDDEN, MAX_LATENT_DIM, MAX_LEVELS, Header, overhead
from .ratecontrol import coded_size, fit_budget, hidden_for, search_steps
from .synthesis import render_numpy

SMALL_IMAGE_LR = 1e-3  # at 64K pixels, growing as 1/sqrt(pixels) below, to at most 5x


def learning_rate(base: float, pixels: int) -> float:
    """Small images fit narrow networks, which learn too slowly at the Kodak rate: below
    64K pixels the rate grows as 1/sqrt(pixels) from 1e-3, to at most 5e-3 (tested on
    3x37 .. 96x64 crops), and never falls below the preset's."""
    small = SMALL_IMAGE_LR * min(5.0, math.sqrt(65536 / max(1, pixels)))
    return max(base, small)


def image_architecture(sizes: tuple[int, ...], channels: int, opts: EncodeOptions, budget_bytes: int) -> Architecture:
    if opts.preset not in PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(PRESETS)}")
    p = PRESETS[opts.preset]
    if opts.bases:
        dec = parse_bases(opts.bases, sizes)
    else:
        dec = auto_bases(sizes, levels=opts.levels or levels_for(sizes, p.levels))
    k = p.latents_for(budget_bytes * 8 / math.prod(sizes)) if opts.latent_dim is None else opts.latent_dim
    if not 0 <= k <= MAX_LATENT_DIM:
        raise AsmrError(f"--latent-dim {k}: expected 0..{MAX_LATENT_DIM}")
    hidden = opts.hidden or hidden_for(budget_bytes, dec.levels, k)
    if not 1 <= hidden <= MAX_HIDDEN:
        raise AsmrError(f"--hidden {hidden}: expected 1..{MAX_HIDDEN}")
    return Architecture(dec, hidden, channels, k)


def fit_and_pack(arch: Architecture, signal: np.ndarray, header: Header, target: Target, cfg,
                 max_pixels: int, min_payload: int = 0, progress=None):
    """The encoder's one path for images and clips: budget -> fit (the steps chosen for
    the budget when fine-tuning starts) -> steps re-fitted if fine-tuning moved the
    size out of budget -> bytes. Returns (bytes, fit result)."""
    from .fit import fit

    check_decodable(header, max_pixels)  # never write what the decoder would refuse
    payload_budget = max(fit_budget(target, overhead(header), arch), min_payload)

    def policy(params, sens):
        return search_steps(params, sens, payload_budget)[0]

    result = fit(arch, signal, policy, cfg, progress)
    steps = result.steps
    size = coded_size(result.params, steps)
    if size > payload_budget or (target.bpp is not None and size < 0.97 * payload_budget):
        steps, size = search_steps(result.params, result.sensitivity, payload_budget)
    return pack(arch, result.params, steps, header), result


def _psnr(ref: Raster, test: Raster) -> float:
    return psnr(ref.pixels, test.pixels, 65535.0 if ref.bit_depth == 16 else 255.0)


def encode_image(raster: Raster, opts: EncodeOptions, progress=None) -> EncodeResult:
    from ..core.device import resolve_device
    from .fit import FitConfig

    start = time.perf_counter()
    refuse_psnr(opts.psnr, "the coordinate network (format 2)")
    target = target_for(raster.height * raster.width, opts.bpp, opts.size, opts.quality)
    arch = image_architecture((raster.height, raster.width), raster.channels, opts, target.budget_bytes)
    preset = PRESETS[opts.preset]
    iters = opts.iters if opts.iters is not None else preset.iters
    check_effort(iters, opts.time_limit)
    cfg = FitConfig(iters=iters, lr=learning_rate(preset.lr_for(arch.hidden), raster.height * raster.width),
                    time_limit=opts.time_limit, seed=opts.seed, device=resolve_device(opts.device))
    header = header_for(arch, KIND_IMAGE, raster.bit_depth)
    data, result = fit_and_pack(arch, raster.as_float(), header, target, cfg, opts.max_pixels, progress=progress)
    decoded = _check_decode_image(data, header)
    seconds = time.perf_counter() - start
    stats = describe(header, len(data))
    unquantised = float_raster(render_numpy(arch, result.params), arch.decomposition.sizes, raster.bit_depth)
    stats.update(encode_seconds=round(seconds, 3), iterations=result.iterations,
                 psnr=round(_psnr(raster, decoded), 3), psnr_unquantised=round(_psnr(raster, unquantised), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp)
    return EncodeResult(data, stats)


def _parsed(data: bytes) -> AsmrFile:
    from ..container.file import unframe
    from .format import READ_VERSIONS, parse

    return parse(*unframe(data, READ_VERSIONS))


def _check_decode_image(data: bytes, header: Header) -> Raster:
    """The check decode: the written bytes parsed and rendered as `asmr decode` does."""
    h, w = header.sizes
    return float_raster(render_image(_parsed(data), (h, w), (0, 0), (h, w)), (h, w), header.bit_depth)


def _check_decode_clip(data: bytes) -> np.ndarray:
    f = _parsed(data)
    arch, params = unpack(f)
    return native_frames(arch, params, 0, f.header.sizes[0])


# -- clips (T, H, W): the same engine, a time axis with its own bases -------------------------

def _video_preset(opts: EncodeOptions):
    if opts.preset not in VIDEO_PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(VIDEO_PRESETS)}")
    return VIDEO_PRESETS[opts.preset]


def clip_architecture(sizes: tuple[int, int, int], channels: int, opts: EncodeOptions,
                      budget_bytes: int) -> Architecture:
    """The preset's network, narrowed when the byte budget cannot pay for its width."""
    p = _video_preset(opts)
    # small frames need fewer levels: each level beyond the split is a set of wasted tensors
    levels = opts.levels or min(p.levels, 2 + max(1, math.ceil(math.log2(max(sizes[1:]) / p.space_last))))
    if levels < 2 or levels > MAX_LEVELS:
        raise AsmrError(f"--levels {levels}: expected 2..{MAX_LEVELS}")
    dec = parse_bases(opts.bases, sizes) if opts.bases else video_bases(sizes, levels, p.time_last, p.space_last)
    hidden = opts.hidden or min(p.hidden, hidden_for(budget_bytes, dec.levels))
    if not 1 <= hidden <= MAX_HIDDEN:
        raise AsmrError(f"--hidden {hidden}: expected 1..{MAX_HIDDEN}")
    k = p.latent_dim if opts.latent_dim is None else opts.latent_dim
    if not 0 <= k <= MAX_LATENT_DIM:
        raise AsmrError(f"--latent-dim {k}: expected 0..{MAX_LATENT_DIM}")
    return Architecture(dec, hidden, channels, k)


def _min_payload(arch: Architecture) -> int:
    """Bytes below which a payload of this network is noise: each tensor's entropy model
    and step sizes, plus about half a bit a value. Tiny clips get at least this much."""
    return sum(29 + 4 * step_groups(n, s) + math.prod(s) // 16 for n, s in arch.param_shapes())


def encode_clip(clip: Clip, opts: EncodeOptions, progress=None) -> EncodeResult:
    """One coordinate network for the whole clip (format 2)."""
    from ..core.device import resolve_device
    from .fit import FitConfig

    start = time.perf_counter()
    p = _video_preset(opts)
    sizes = (clip.count, clip.height, clip.width)
    target = clip_target(clip.count * clip.height * clip.width, opts, p.bpp)
    arch = clip_architecture(sizes, clip.channels, opts, target.budget_bytes)
    iters = opts.iters if opts.iters is not None else p.iters
    check_effort(iters, opts.time_limit)
    time_limit = opts.time_limit if opts.time_limit is not None else p.time_limit
    cfg = FitConfig(iters=iters, lr=p.lr, time_limit=time_limit, seed=opts.seed, device=resolve_device(opts.device))
    header = header_for(arch, KIND_VIDEO, 8, fps_pair(clip.fps))
    data, result = fit_and_pack(arch, clip.as_float(), header, target, cfg,
                                max(opts.max_pixels, math.prod(sizes)), _min_payload(arch), progress)
    decoded = _check_decode_clip(data)
    unquantised = native_frames(arch, result.params, 0, clip.count)
    stats = describe(header, len(data))
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=result.iterations,
                 psnr=round(float(np.mean(frame_psnr(clip.frames, decoded))), 3),
                 psnr_unquantised=round(float(np.mean(frame_psnr(clip.frames, unquantised))), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp)
    return EncodeResult(data, stats)
