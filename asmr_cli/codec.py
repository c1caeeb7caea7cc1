"""The library API the CLI uses: encode an image to .asmr bytes, decode them back, and
report stats. Data flows media -> fit -> quantise -> bitstream -> bytes, and back.
Decoding needs numpy and constriction only; torch is imported by the encoder alone."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import bitstream, entropy
from .architecture import Architecture
from .decomposition import auto_bases, levels_for, parse_bases, video_bases
from .errors import AsmrError
from .media import DEFAULT_MAX_PIXELS, Raster, read_image
from .metrics import macs_per_pixel, psnr, siren_macs_per_pixel, ssim
from .presets import DEFAULT_PRESET, PRESETS
from .quantize import dequantize, quantize
from .ratecontrol import coded_size, fit_budget, hidden_for, search_steps, target_for
from .synthesis import render_numpy


@dataclass
class EncodeOptions:
    preset: str = DEFAULT_PRESET
    bases: str | None = None
    hidden: int | None = None
    latent_dim: int | None = None
    levels: int | None = None
    iters: int | None = None
    time_limit: float | None = None
    bpp: float | None = None
    size: int | None = None
    quality: float | None = None
    seed: int = 0
    device: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS
    model: str = "auto"  # images: latent (format 3) | coordinate (the ASMR network alone, format 2)

    def coordinate_image(self) -> bool:
        """Whether an image takes the coordinate-network encoder: asked for by --model, or
        implied by an option only that network has (--bases, --latent-dim)."""
        if self.model not in ("auto", "latent", "coordinate"):
            raise AsmrError(f"--model {self.model}: expected latent or coordinate")
        implied = self.bases is not None or self.latent_dim is not None
        if self.model == "latent" and implied:
            raise AsmrError("--bases and --latent-dim describe the coordinate network (--model coordinate)")
        return self.model == "coordinate" or (self.model == "auto" and implied)


@dataclass
class EncodeResult:
    data: bytes
    stats: dict


def _architecture(sizes: tuple[int, ...], channels: int, opts: EncodeOptions,
                  budget_bytes: int) -> Architecture:
    if opts.preset not in PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(PRESETS)}")
    p = PRESETS[opts.preset]
    if opts.bases:
        dec = parse_bases(opts.bases, sizes)
    else:
        dec = auto_bases(sizes, levels=opts.levels or levels_for(sizes, p.levels))
    k = p.latents_for(budget_bytes * 8 / math.prod(sizes)) if opts.latent_dim is None else opts.latent_dim
    if not 0 <= k <= bitstream.MAX_LATENT_DIM:
        raise AsmrError(f"--latent-dim {k}: expected 0..{bitstream.MAX_LATENT_DIM}")
    hidden = opts.hidden or hidden_for(budget_bytes, dec.levels, k)
    if not 1 <= hidden <= bitstream.MAX_HIDDEN:
        raise AsmrError(f"--hidden {hidden}: expected 1..{bitstream.MAX_HIDDEN}")
    return Architecture(dec, hidden, channels, k)


def _header(arch: Architecture, kind: int, bit_depth: int, fps: tuple[int, int] = (0, 1)) -> bitstream.Header:
    dec = arch.decomposition
    return bitstream.Header(kind, dec.sizes, arch.channels, bit_depth, dec.bases, arch.hidden,
                            arch.latent_dim, arch.w0, *fps)


def pack(arch: Architecture, params: dict[str, np.ndarray], steps: dict[str, np.ndarray],
         kind: int, bit_depth: int, fps: tuple[int, int] = (0, 1)) -> bytes:
    """Quantise every tensor with its steps, entropy-code it, and build the file."""
    tensors = []
    for name, _ in arch.param_shapes():
        tensors.append(bitstream.code_tensor(name, quantize(params[name], steps[name]), steps[name]))
    return bitstream.dumps(bitstream.AsmrFile(_header(arch, kind, bit_depth, fps), tensors))


DECODE_WORK_PER_SAMPLE = 256  # floats of coarse activations (cells x hidden) per declared sample
DECODE_MACS_PER_SAMPLE = 1 << 18
DECODE_PADDING = 8  # padded samples per declared sample (automatic bases pad a few percent)
DECODE_SLACK = 1 << 16  # what any small file may use whatever its size


def check_decodable(h: bitstream.Header | bitstream.LatentHeader, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, from the header alone and before any entropy decoding, a file whose decoding
    would not fit: more samples than max_pixels (the encoder's limit too), or padding,
    activations or MACs out of proportion to the samples. A small network can describe a
    huge image, so these caps follow the declared size, not the file size."""
    samples = math.prod(h.sizes)
    if samples > max_pixels:
        shape = "x".join(str(s) for s in reversed(h.sizes[-2:]))
        frames = f"{h.sizes[0]} frames of " if len(h.sizes) == 3 else ""
        raise AsmrError(f"the file declares {frames}{shape} = {samples} samples, over the {max_pixels}-pixel "
                        "limit (raise it with --max-pixels)")
    if isinstance(h, bitstream.LatentHeader):
        return  # a latent pyramid's work and memory follow its pixel count (latents.py)
    arch = h.architecture
    dec = arch.decomposition
    padded = math.prod(dec.padded)
    coarse = dec.cells(dec.levels - 2) * (arch.hidden + arch.latent_dim)
    limit = DECODE_WORK_PER_SAMPLE * samples + DECODE_SLACK
    if padded > DECODE_PADDING * samples + DECODE_SLACK or coarse > limit:
        raise AsmrError(f"the bases pad {samples} samples to {padded} with {dec.cells(dec.levels - 2)} coarse "
                        f"cells of width {arch.hidden}: too much work to decode")
    if macs_per_pixel(arch) * padded > DECODE_MACS_PER_SAMPLE * samples + (1 << 30):
        raise AsmrError(f"a network of {arch.param_count()} parameters is too costly to render "
                        f"{samples} samples")


def unpack(f: bitstream.AsmrFile, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Architecture, dict[str, np.ndarray]]:
    check_decodable(f.header, max_pixels)
    arch = f.header.architecture
    params = {}
    for (name, shape), t in zip(arch.param_shapes(), f.tensors):
        q = entropy.decode(t.coded, shape)
        params[name] = dequantize(q, t.steps)
    return arch, params


def to_raster(out: np.ndarray, sizes: tuple[int, ...], bit_depth: int) -> Raster:
    """(C, *padded) float output -> cropped integer raster (H, W, C)."""
    crop = out[(slice(None),) + tuple(slice(0, s) for s in sizes)]
    peak = 65535 if bit_depth == 16 else 255
    ints = np.clip(np.rint(crop * peak), 0, peak).astype(np.uint16 if bit_depth == 16 else np.uint8)
    return Raster(np.moveaxis(ints, 0, -1), bit_depth)


SMALL_IMAGE_LR = 1e-3  # at 64K pixels, growing as 1/sqrt(pixels) below, to at most 5x


def learning_rate(base: float, pixels: int) -> float:
    """Small images fit narrow networks, which learn too slowly at the Kodak rate: below
    64K pixels the rate grows as 1/sqrt(pixels) from 1e-3, to at most 5e-3 (tested on
    3x37 .. 96x64 crops), and never falls below the preset's."""
    small = SMALL_IMAGE_LR * min(5.0, math.sqrt(65536 / max(1, pixels)))
    return max(base, small)


def _check_effort(iters: int, time_limit: float | None) -> None:
    if iters < 1:
        raise AsmrError("--iters must be at least 1")
    if time_limit is not None and time_limit <= 0:
        raise AsmrError("--time-limit must be positive")


def _fit_and_pack(arch: Architecture, signal: np.ndarray, header: bitstream.Header, target, cfg,
                  max_pixels: int, min_payload: int = 0, progress=None):
    """The encoder's one path for images and clips: budget -> fit (the steps chosen for
    the budget when fine-tuning starts) -> steps re-fitted if fine-tuning moved the
    size out of budget -> bytes. Returns (bytes, fit result)."""
    from .fit import fit

    check_decodable(header, max_pixels)  # never write what the decoder would refuse
    payload_budget = max(fit_budget(target, bitstream.overhead(header), arch), min_payload)

    def policy(params, sens):
        return search_steps(params, sens, payload_budget)[0]

    result = fit(arch, signal, policy, cfg, progress)
    steps = result.steps
    size = coded_size(result.params, steps)
    if size > payload_budget or (target.bpp is not None and size < 0.97 * payload_budget):
        steps, size = search_steps(result.params, result.sensitivity, payload_budget)
    return pack(arch, result.params, steps, header.kind, header.bit_depth, (header.fps_num, header.fps_den)), result


def encode_raster(raster: Raster, opts: EncodeOptions, progress=None) -> EncodeResult:
    if not opts.coordinate_image():
        return _encode_latent(raster, opts, progress)
    from .fit import FitConfig, resolve_device

    start = time.perf_counter()
    target = target_for(raster.height * raster.width, opts.bpp, opts.size, opts.quality)
    arch = _architecture((raster.height, raster.width), raster.channels, opts, target.budget_bytes)
    preset = PRESETS[opts.preset]
    iters = opts.iters if opts.iters is not None else preset.iters
    _check_effort(iters, opts.time_limit)
    cfg = FitConfig(iters=iters, lr=learning_rate(preset.lr_for(arch.hidden), raster.height * raster.width),
                    time_limit=opts.time_limit, seed=opts.seed, device=resolve_device(opts.device))
    header = _header(arch, bitstream.KIND_IMAGE, raster.bit_depth)
    data, result = _fit_and_pack(arch, raster.as_float(), header, target, cfg, opts.max_pixels,
                                 progress=progress)
    decoded = decode_bytes(data)
    seconds = time.perf_counter() - start
    stats = describe(header, len(data))
    unquantised = to_raster(render_numpy(arch, result.params), arch.decomposition.sizes, raster.bit_depth)
    stats.update(encode_seconds=round(seconds, 3), iterations=result.iterations,
                 psnr=round(_psnr(raster, decoded), 3), psnr_unquantised=round(_psnr(raster, unquantised), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp)
    return EncodeResult(data, stats)


def _encode_latent(raster: Raster, opts: EncodeOptions, progress=None) -> EncodeResult:
    """Format version 3: the latent pyramid trained for rate and distortion."""
    from . import image_encoder
    from .fit import resolve_device

    start = time.perf_counter()
    if opts.preset not in PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(PRESETS)}")
    if opts.iters is not None or opts.time_limit is not None:
        _check_effort(1 if opts.iters is None else opts.iters, opts.time_limit)
    n = raster.height * raster.width
    target = target_for(n, opts.bpp, opts.size, opts.quality)
    layout = image_encoder.layout_for(raster.height, raster.width, raster.channels, opts.preset,
                                      opts.hidden, opts.levels)
    header = bitstream.LatentHeader((raster.height, raster.width), raster.channels, raster.bit_depth,
                                    layout.levels, layout.hidden, layout.context_hidden)
    check_decodable(header, opts.max_pixels)
    resolve_device(opts.device)  # a bad --device is refused; the latent fit itself runs on the CPU
    enc = image_encoder.encode(raster.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                               opts.seed, progress)
    decoded = decode_bytes(enc.data, max(opts.max_pixels, n))
    stats = describe(header, len(enc.data), bitstream.LATENT_VERSION)
    unquantised = to_raster(enc.unquantised, (raster.height, raster.width), raster.bit_depth)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(_psnr(raster, decoded), 3), psnr_unquantised=round(_psnr(raster, unquantised), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp, lam=enc.lam, weight_bits=enc.weight_bits,
                 latent_scale=round(enc.scale, 4),
                 estimated_seconds=None if enc.estimated_seconds is None else round(enc.estimated_seconds, 1))
    return EncodeResult(enc.data, stats)


def decode_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Raster:
    """The native-size image, through the same (tiled) path as `asmr decode`, so the
    encoder's and `stats`' PSNR are those of the pixels a user gets."""
    return render_image(data, max_pixels=max_pixels)


def render_image(data: bytes, size: tuple[int, int] | None = None, scale: float | None = None,
                 width: int | None = None, height: int | None = None,
                 region: tuple[int, int, int, int] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Raster:
    """Decode at any resolution -- size (width, height), scale, or width / height with the
    aspect kept -- and, with region (x, y, width, height) in output pixels, only that part,
    at a cost that follows the region. Off the native grid the network itself is sampled
    (docs/any-resolution.md); on it, a region is the exact crop of the whole."""
    from .resample import check_region, output_size, render

    f = bitstream.loads(data)
    if f.header.kind != bitstream.KIND_IMAGE:
        raise AsmrError("this file holds a video: decode it to .mp4, .y4m, .gif or a folder")
    h, w = f.header.sizes
    ow, oh = output_size(w, h, size, scale, width, height)
    x, y, rw, rh = check_region(region, ow, oh, max_pixels)
    if isinstance(f.header, bitstream.LatentHeader):
        from . import latent_codec

        check_decodable(f.header, max_pixels)
        out = latent_codec.render(latent_codec.unpack(f), (oh, ow), (y, x), (y + rh, x + rw))
    else:
        arch, params = unpack(f, max_pixels)
        out = render(arch, params, (oh, ow), (y, x), (y + rh, x + rw))
    return to_raster(out, (rh, rw), f.header.bit_depth)


def describe(h: bitstream.Header, nbytes: int, version: int = bitstream.VERSION) -> dict:
    """The stats that follow from the header, the file size and the format version alone."""
    if isinstance(h, bitstream.LatentHeader):
        return _describe_latent(h, nbytes, version)
    arch = h.architecture
    samples = math.prod(h.sizes)
    height, width = h.sizes[-2], h.sizes[-1]
    macs = macs_per_pixel(arch)
    siren = siren_macs_per_pixel(arch)
    out = {
        "format_version": version,
        "kind": "video" if h.kind == bitstream.KIND_VIDEO else "image",
        "width": width, "height": height, "channels": h.channels, "bit_depth": h.bit_depth,
        "bytes": nbytes, "bpp": round(nbytes * 8 / samples, 5),
        "params": arch.param_count(), "levels": arch.levels,
        "bases": [list(b) for b in h.bases], "hidden": h.hidden, "latent_dim": h.latent_dim,
        "macs_per_pixel": round(macs, 1), "siren_macs_per_pixel": round(siren, 1),
        "mac_reduction": round(siren / macs, 2),
    }
    if h.kind == bitstream.KIND_VIDEO:
        out.update(frames=h.sizes[0], fps=h.fps_num / h.fps_den)
    return out


def _describe_latent(h: bitstream.LatentHeader, nbytes: int, version: int) -> dict:
    from . import context_model, latent_codec

    lay = h.layout
    video = h.kind == bitstream.KIND_VIDEO
    groups = len(h.group_spans()) if video else 1
    macs, unshared = latent_codec.decoder_macs(lay, video), latent_codec.unshared_macs(lay, video)
    params = sum(math.prod(s) for _, s in lay.synthesis_shapes())
    params += sum(math.prod(s) for _, s in context_model.parameter_shapes(len(lay.grids()), lay.context_hidden, video))
    out = {
        "format_version": version, "kind": "video" if video else "image", "model": "latent",
        "width": lay.width, "height": lay.height, "channels": h.channels, "bit_depth": h.bit_depth,
        "bytes": nbytes, "bpp": round(nbytes * 8 / (lay.width * lay.height * h.frames), 5),
        "params": params * groups, "latents": lay.latent_count() * h.frames, "levels": lay.levels,
        "hidden": lay.hidden,
        "macs_per_pixel": round(macs, 1), "unshared_macs_per_pixel": round(unshared, 1),
        "mac_reduction": round(unshared / macs, 2),
    }
    if video:
        out.update(frames=h.frames, fps=h.fps_num / h.fps_den, group=h.group, groups=groups)
    return out


def _psnr(ref: Raster, test: Raster) -> float:
    return psnr(ref.pixels, test.pixels, 65535.0 if ref.bit_depth == 16 else 255.0)


def read_stats(data: bytes, ref: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    f = bitstream.loads(data)
    stats = describe(f.header, len(data), f.version)
    if ref is not None:
        original = read_image(Path(ref), max_pixels)
        decoded = decode_bytes(data, max_pixels)
        if original.pixels.shape != decoded.pixels.shape:
            raise AsmrError(f"--ref {ref}: {original.width}x{original.height}x{original.channels} "
                            f"does not match the file's {decoded.width}x{decoded.height}x{decoded.channels}")
        peak = 65535.0 if original.bit_depth == 16 else 255.0
        stats.update(psnr=round(_psnr(original, decoded), 3),
                     ssim=round(ssim(original.pixels, decoded.pixels, peak), 4))
    return stats


__all__ = ["EncodeOptions", "EncodeResult", "encode_raster", "decode_bytes",
           "read_stats"]


# -- video (T, H, W): the same engine, a time axis with its own bases -------------------------

VIDEO_CHUNK_SAMPLES = 2_000_000  # samples rendered at once when decoding a clip
VIDEO_QUALITY_SCALE = 1 / 8  # -q for a clip: a video needs far fewer bits per sample than an image


def _video_preset(opts: EncodeOptions):
    from .presets import VIDEO_PRESETS

    if opts.preset not in VIDEO_PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(VIDEO_PRESETS)}")
    return VIDEO_PRESETS[opts.preset]


def _video_architecture(sizes: tuple[int, int, int], channels: int, opts: EncodeOptions,
                        budget_bytes: int) -> Architecture:
    """The preset's network, narrowed when the byte budget cannot pay for its width."""
    p = _video_preset(opts)
    # small frames need fewer levels: each level beyond the split is a set of wasted tensors
    levels = opts.levels or min(p.levels, 2 + max(1, math.ceil(math.log2(max(sizes[1:]) / p.space_last))))
    if levels < 2 or levels > bitstream.MAX_LEVELS:
        raise AsmrError(f"--levels {levels}: expected 2..{bitstream.MAX_LEVELS}")
    dec = parse_bases(opts.bases, sizes) if opts.bases else video_bases(sizes, levels, p.time_last, p.space_last)
    hidden = opts.hidden or min(p.hidden, hidden_for(budget_bytes, dec.levels))
    if not 1 <= hidden <= bitstream.MAX_HIDDEN:
        raise AsmrError(f"--hidden {hidden}: expected 1..{bitstream.MAX_HIDDEN}")
    k = p.latent_dim if opts.latent_dim is None else opts.latent_dim
    if not 0 <= k <= bitstream.MAX_LATENT_DIM:
        raise AsmrError(f"--latent-dim {k}: expected 0..{bitstream.MAX_LATENT_DIM}")
    return Architecture(dec, hidden, channels, k)


def _min_payload(arch: Architecture) -> int:
    """Bytes below which a payload of this network is noise: each tensor's entropy model
    and step sizes, plus about half a bit a value. Tiny clips get at least this much."""
    from .quantize import step_groups

    return sum(29 + 4 * step_groups(n, s) + math.prod(s) // 16 for n, s in arch.param_shapes())


def _fps_pair(fps) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(fps).limit_denominator(1 << 20) if fps else Fraction(0)
    return (int(f.numerator), int(f.denominator)) if f > 0 else (0, 1)


def _clip_target(clip, opts: EncodeOptions):
    from .ratecontrol import quality_to_bpp

    quality_bpp = None if opts.quality is None else quality_to_bpp(opts.quality) * VIDEO_QUALITY_SCALE
    bpp = opts.bpp if opts.bpp is not None else quality_bpp
    if bpp is None and opts.size is None:
        bpp = _video_preset(opts).bpp
    return target_for(clip.count * clip.height * clip.width, bpp, opts.size, None)


def _encode_clip_latent(clip, opts: EncodeOptions, progress=None) -> EncodeResult:
    """Format version 4: a latent pyramid per frame under a temporal context model."""
    from . import clip_encoder
    from .fit import resolve_device
    from .presets import CLIP_PRESETS
    from .video import frame_psnr

    start = time.perf_counter()
    if opts.preset not in CLIP_PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(CLIP_PRESETS)}")
    if opts.iters is not None or opts.time_limit is not None:
        _check_effort(1 if opts.iters is None else opts.iters, opts.time_limit)
    t, h, w = clip.count, clip.height, clip.width
    target = _clip_target(clip, opts)
    layout = clip_encoder.clip_layout(t, h, w, clip.channels, opts.preset, opts.hidden, opts.levels)
    header = bitstream.LatentHeader((t, h, w), clip.channels, 8, layout.levels, layout.hidden,
                                    layout.context_hidden, bitstream.KIND_VIDEO, *_fps_pair(clip.fps),
                                    clip_encoder.group_size(t, h, w))
    resolve_device(opts.device)  # a bad --device is refused; the latent fit itself runs on the CPU
    enc = clip_encoder.encode(clip.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                              opts.seed, progress)
    decoded = decode_video(enc.data, max_pixels=max(opts.max_pixels, t * h * w))
    stats = describe(header, len(enc.data), bitstream.CLIP_VERSION)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(float(np.mean(frame_psnr(clip.frames, decoded.frames))), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp, lam=enc.lam, weight_bits=enc.weight_bits,
                 estimated_seconds=None if enc.estimated_seconds is None else round(enc.estimated_seconds, 1))
    return EncodeResult(enc.data, stats)


def encode_clip(clip, opts: EncodeOptions | None = None, progress=None) -> EncodeResult:
    """Encode a clip ((T, H, W, 3) uint8 frames): latent pyramids per frame (format 4), or
    with --model coordinate one coordinate network for the whole clip (format 2)."""
    from .fit import FitConfig, resolve_device
    from .video import frame_psnr

    opts = opts or EncodeOptions()
    if not opts.coordinate_image():
        return _encode_clip_latent(clip, opts, progress)
    start = time.perf_counter()
    p = _video_preset(opts)
    sizes = (clip.count, clip.height, clip.width)
    target = _clip_target(clip, opts)
    arch = _video_architecture(sizes, clip.channels, opts, target.budget_bytes)
    iters = opts.iters if opts.iters is not None else p.iters
    _check_effort(iters, opts.time_limit)
    time_limit = opts.time_limit if opts.time_limit is not None else p.time_limit
    cfg = FitConfig(iters=iters, lr=p.lr, time_limit=time_limit, seed=opts.seed,
                    device=resolve_device(opts.device))
    header = _header(arch, bitstream.KIND_VIDEO, 8, _fps_pair(clip.fps))
    data, result = _fit_and_pack(arch, clip.as_float(), header, target, cfg,
                                 max(opts.max_pixels, math.prod(sizes)), _min_payload(arch), progress)
    decoded = decode_video(data)
    unquantised = render_frames(arch, result.params, 0, clip.count)
    stats = describe(header, len(data))
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=result.iterations,
                 psnr=round(float(np.mean(frame_psnr(clip.frames, decoded.frames))), 3),
                 psnr_unquantised=round(float(np.mean(frame_psnr(clip.frames, unquantised))), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp)
    return EncodeResult(data, stats)


def render_frames(arch: Architecture, params: dict[str, np.ndarray], start: int, end: int) -> np.ndarray:
    """Frames [start, end) as (n, H, W, C) uint8, rendering only the coarse time cells that
    cover them, a few at a time (at most VIDEO_CHUNK_SAMPLES samples of float output)."""
    from .synthesis import NUMPY, coarse, last_level
    from .synthesis import to_raster as blocked_to_raster

    dec = arch.decomposition
    levels, hid = dec.levels, arch.hidden
    _, height, width = dec.sizes
    p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    a, m = coarse(NUMPY, arch, p, [dec.level_coords(i) for i in range(levels)])
    grid, bases = dec.grid(levels - 2), dec.level_bases(levels - 1)
    a = a.reshape(grid[0], -1, hid)  # (time cells, space cells, hid)
    tb = bases[0]
    first, last = start // tb, -(-end // tb)
    per_cell = math.prod(grid[1:]) * math.prod(bases)
    chunk = max(1, VIDEO_CHUNK_SAMPLES // per_cell)
    out = np.empty((end - start, height, width, arch.channels), np.uint8)
    for c in range(first, last, chunk):
        e = min(last, c + chunk)
        blocked = last_level(NUMPY, a[c:e].reshape(-1, hid), m, p["head.weight"], p["head.bias"])
        frames = blocked_to_raster(NUMPY, blocked, (e - c, *grid[1:]), bases)  # (C, (e-c)*tb, Hp, Wp)
        lo, hi = max(start, c * tb), min(end, e * tb)
        part = frames[:, lo - c * tb:hi - c * tb, :height, :width] * np.float32(255.0)
        out[lo - start:hi - start] = np.moveaxis(np.clip(np.rint(part), 0, 255).astype(np.uint8), 0, -1)
    return out


def decode_video(data: bytes, frames=None, max_pixels: int | None = None):
    """A clip from .asmr bytes; `frames` (a video.FrameRange) renders only that range."""
    from fractions import Fraction

    from .video import DEFAULT_MAX_SAMPLES, Clip, FrameRange

    f = bitstream.loads(data)
    if f.header.kind != bitstream.KIND_VIDEO:
        raise AsmrError("this file holds an image, not a video (decode it to .png)")
    limit = DEFAULT_MAX_SAMPLES if max_pixels is None else max_pixels
    start, end = (frames or FrameRange()).resolve(f.header.sizes[0])
    fps = Fraction(f.header.fps_num, f.header.fps_den)
    if isinstance(f.header, bitstream.LatentHeader):
        from . import clip_codec

        check_decodable(f.header, limit)
        return Clip(clip_codec.frames_uint8(clip_codec.unpack_clip(f), start, end), fps)
    arch, params = unpack(f, limit)
    return Clip(render_frames(arch, params, start, end), fps)


def render_clip(data: bytes, frames=None, size: tuple[int, int] | None = None, scale: float | None = None,
                width: int | None = None, height: int | None = None,
                region: tuple[int, int, int, int] | None = None, max_pixels: int | None = None):
    """`decode_video` at any frame size and for any region of the frame (render_image's
    options); the time axis stays on its grid. A few frames at a time."""
    from fractions import Fraction

    from .resample import check_region, output_size, render
    from .video import DEFAULT_MAX_SAMPLES, Clip, FrameRange

    f = bitstream.loads(data)
    if f.header.kind != bitstream.KIND_VIDEO:
        raise AsmrError("this file holds an image, not a video (decode it to .png)")
    limit = DEFAULT_MAX_SAMPLES if max_pixels is None else max_pixels
    t, h, w = f.header.sizes
    start, end = (frames or FrameRange()).resolve(t)
    ow, oh = output_size(w, h, size, scale, width, height)
    x, y, rw, rh = check_region(region, ow, oh, max(1, limit // (end - start)))
    fps = Fraction(f.header.fps_num, f.header.fps_den)
    if isinstance(f.header, bitstream.LatentHeader):
        from . import clip_codec, latent_codec

        check_decodable(f.header, limit)
        lc = clip_codec.unpack_clip(f)
        out = np.empty((end - start, rh, rw, f.header.channels), np.uint8)
        for i, img in enumerate(lc.frames(start, end)):
            part = latent_codec.render(img, (oh, ow), (y, x), (y + rh, x + rw))
            out[i] = np.clip(np.rint(np.moveaxis(part, 0, -1) * 255.0), 0, 255)
        return Clip(out, fps)
    arch, params = unpack(f, limit)
    out = np.empty((end - start, rh, rw, arch.channels), np.uint8)
    step = max(1, VIDEO_CHUNK_SAMPLES // (rh * rw))
    for t0 in range(start, end, step):
        t1 = min(end, t0 + step)
        part = render(arch, params, (t, oh, ow), (t0, y, x), (t1, y + rh, x + rw))
        out[t0 - start:t1 - start] = np.clip(np.rint(np.moveaxis(part, 0, -1) * 255.0), 0, 255)
    return Clip(out, fps)


def read_video_stats(data: bytes, ref: Path | None = None, frames=None) -> dict:
    """describe() plus, with a reference clip, the mean per-frame PSNR. `frames` selects
    the reference's frames (the range that was encoded)."""
    from .video import frame_psnr, read_video

    f = bitstream.loads(data)
    stats = describe(f.header, len(data), f.version)
    if ref is not None:
        original = read_video(Path(ref), frames)
        decoded = decode_video(data)
        if original.frames.shape != decoded.frames.shape:
            o, d = original, decoded
            raise AsmrError(f"--ref {ref}: {o.count} frames of {o.width}x{o.height} do not match the file's "
                            f"{d.count} frames of {d.width}x{d.height}")
        per_frame = frame_psnr(original.frames, decoded.frames)
        stats.update(psnr=round(float(np.mean(per_frame)), 3), psnr_min=round(float(np.min(per_frame)), 3))
    return stats


def holds_video(data: bytes) -> bool:
    """Whether .asmr bytes hold a clip (checked from the header alone)."""
    return bitstream.loads(data).header.kind == bitstream.KIND_VIDEO
