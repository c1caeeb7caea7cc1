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
from .decomposition import Decomposition, auto_bases, parse_bases
from .errors import AsmrError
from .media import DEFAULT_MAX_PIXELS, Raster, read_image
from .metrics import macs_per_pixel, psnr, siren_macs_per_pixel, ssim
from .presets import DEFAULT_PRESET, PRESETS
from .quantize import QuantConfig, dequantize, quantize
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
    seed: int = 0
    device: str = "auto"
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class EncodeResult:
    data: bytes
    stats: dict


def _architecture(sizes: tuple[int, ...], channels: int, opts: EncodeOptions) -> Architecture:
    if opts.preset not in PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(PRESETS)}")
    p = PRESETS[opts.preset]
    if opts.bases:
        dec = parse_bases(opts.bases, sizes)
    else:
        dec = auto_bases(sizes, levels=opts.levels or p.levels)
    hidden = opts.hidden or p.hidden
    if not 1 <= hidden <= bitstream.MAX_HIDDEN:
        raise AsmrError(f"--hidden {hidden}: expected 1..{bitstream.MAX_HIDDEN}")
    k = p.latent_dim if opts.latent_dim is None else opts.latent_dim
    if not 0 <= k <= bitstream.MAX_LATENT_DIM:
        raise AsmrError(f"--latent-dim {k}: expected 0..{bitstream.MAX_LATENT_DIM}")
    return Architecture(dec, hidden, channels, k)


def pack(arch: Architecture, params: dict[str, np.ndarray], steps: dict[str, np.ndarray],
         kind: int, bit_depth: int, fps: tuple[int, int] = (0, 1)) -> bytes:
    """Quantise every tensor with its steps, entropy-code it, and build the file."""
    dec = arch.decomposition
    header = bitstream.Header(kind, dec.sizes, arch.channels, bit_depth, dec.bases, arch.hidden,
                              arch.latent_dim, arch.w0, *fps)
    tensors = []
    for name, _ in arch.param_shapes():
        q = quantize(params[name], steps[name])
        tensors.append(bitstream.Tensor(steps[name], entropy.encode(q)))
    return bitstream.dumps(bitstream.AsmrFile(header, tensors))


def unpack(f: bitstream.AsmrFile) -> tuple[Architecture, dict[str, np.ndarray]]:
    arch = f.header.architecture
    params = {}
    for (name, shape), t in zip(arch.param_shapes(), f.tensors):
        q = entropy.decode(t.coded, math.prod(shape)).reshape(shape)
        params[name] = dequantize(q, t.steps)
    return arch, params


def to_raster(out: np.ndarray, sizes: tuple[int, ...], bit_depth: int) -> Raster:
    """(C, *padded) float output -> cropped integer raster (H, W, C)."""
    crop = out[(slice(None),) + tuple(slice(0, s) for s in sizes)]
    peak = 65535 if bit_depth == 16 else 255
    ints = np.clip(np.rint(crop * peak), 0, peak).astype(np.uint16 if bit_depth == 16 else np.uint8)
    return Raster(np.moveaxis(ints, 0, -1), bit_depth)


def encode_raster(raster: Raster, opts: EncodeOptions, progress=None) -> EncodeResult:
    from .fit import FitConfig, fit, resolve_device

    start = time.perf_counter()
    preset = PRESETS.get(opts.preset)
    arch = _architecture((raster.height, raster.width), raster.channels, opts)
    assert preset is not None
    iters = opts.iters if opts.iters is not None else preset.iters
    if iters < 1:
        raise AsmrError("--iters must be at least 1")
    if opts.time_limit is not None and opts.time_limit <= 0:
        raise AsmrError("--time-limit must be positive")
    cfg = FitConfig(iters=iters, lr=preset.lr, time_limit=opts.time_limit, seed=opts.seed,
                    device=resolve_device(opts.device))
    quant = QuantConfig(preset.weight_bits, preset.latent_bits)
    result = fit(arch, raster.as_float(), quant, cfg, progress)
    data = pack(arch, result.params, result.steps, bitstream.KIND_IMAGE, raster.bit_depth)
    decoded = decode_bytes(data)
    seconds = time.perf_counter() - start
    stats = describe(bitstream.loads(data).header, len(data))
    stats.update(encode_seconds=round(seconds, 3), iterations=result.iterations,
                 psnr=round(_psnr(raster, decoded), 3),
                 psnr_unquantised=round(_psnr(raster, to_raster(
                     render_numpy(arch, result.params), arch.decomposition.sizes, raster.bit_depth)), 3))
    return EncodeResult(data, stats)


def encode_image(path: Path, opts: EncodeOptions | None = None, progress=None) -> EncodeResult:
    opts = opts or EncodeOptions()
    return encode_raster(read_image(Path(path), opts.max_pixels), opts, progress)


def decode_bytes(data: bytes) -> Raster:
    f = bitstream.loads(data)
    if f.header.kind != bitstream.KIND_IMAGE:
        raise AsmrError("this file holds a video; images only in this build")
    arch, params = unpack(f)
    return to_raster(render_numpy(arch, params), f.header.sizes, f.header.bit_depth)


def render_image(data: bytes, size: tuple[int, int] | None = None, scale: float | None = None,
                 width: int | None = None, height: int | None = None,
                 region: tuple[int, int, int, int] | None = None) -> Raster:
    """Decode at any resolution -- size (width, height), scale, or width / height with the
    aspect kept -- and, with region (x, y, width, height) in output pixels, only that part,
    at a cost that follows the region. Off the native grid the network itself is sampled
    (docs/any-resolution.md); on it, a region is the exact crop of the whole."""
    from .resample import check_region, output_size, render

    f = bitstream.loads(data)
    if f.header.kind != bitstream.KIND_IMAGE:
        raise AsmrError("this file holds a video; images only in this build")
    arch, params = unpack(f)
    h, w = f.header.sizes
    ow, oh = output_size(w, h, size, scale, width, height)
    x, y, rw, rh = check_region(region, ow, oh)
    out = render(arch, params, (oh, ow), (y, x), (y + rh, x + rw))
    return to_raster(out, (rh, rw), f.header.bit_depth)


def describe(h: bitstream.Header, nbytes: int) -> dict:
    """The stats that follow from the header and the file size alone."""
    arch = h.architecture
    samples = math.prod(h.sizes)
    height, width = h.sizes[-2], h.sizes[-1]
    macs = macs_per_pixel(arch)
    siren = siren_macs_per_pixel(arch)
    out = {
        "format_version": bitstream.VERSION,
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


def _psnr(ref: Raster, test: Raster) -> float:
    return psnr(ref.pixels, test.pixels, 65535.0 if ref.bit_depth == 16 else 255.0)


def read_stats(data: bytes, ref: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    f = bitstream.loads(data)
    stats = describe(f.header, len(data))
    if ref is not None:
        original = read_image(Path(ref), max_pixels)
        decoded = decode_bytes(data)
        if original.pixels.shape != decoded.pixels.shape:
            raise AsmrError(f"--ref {ref}: {original.width}x{original.height}x{original.channels} "
                            f"does not match the file's {decoded.width}x{decoded.height}x{decoded.channels}")
        peak = 65535.0 if original.bit_depth == 16 else 255.0
        stats.update(psnr=round(_psnr(original, decoded), 3),
                     ssim=round(ssim(original.pixels, decoded.pixels, peak), 4))
    return stats


__all__ = ["EncodeOptions", "EncodeResult", "encode_image", "encode_raster", "decode_bytes",
           "read_stats", "Decomposition"]
