"""Format versions 1-2 as data: the coordinate network's weights quantised and coded
into a file, and back to weights; rendering an image or a clip's frames; the header's
stats. numpy and constriction only: no torch."""

from __future__ import annotations

import math

import numpy as np

from ..container import entropy
from ..container.file import KIND_VIDEO, AsmrFile
from ..container.tensors import code_tensor
from ..core.errors import AsmrError
from ..core.options import DEFAULT_MAX_PIXELS, check_samples
from ..core.quantize import dequantize, quantize
from .architecture import Architecture, macs_per_pixel, siren_macs_per_pixel
from .format import VERSION, Header, dumps
from .resample import render, render_native

DECODE_WORK_PER_SAMPLE = 256  # floats of coarse activations (cells x hidden) per declared sample
DECODE_MACS_PER_SAMPLE = 1 << 18
DECODE_PADDING = 8  # padded samples per declared sample (automatic bases pad a few percent)
DECODE_SLACK = 1 << 16  # what any small file may use whatever its size
VIDEO_CHUNK_SAMPLES = 2_000_000  # samples rendered at once when decoding a clip


def header_for(arch: Architecture, kind: int, bit_depth: int, fps: tuple[int, int] = (0, 1)) -> Header:
    dec = arch.decomposition
    return Header(kind, dec.sizes, arch.channels, bit_depth, dec.bases, arch.hidden, arch.latent_dim, arch.w0, *fps)


def pack(arch: Architecture, params: dict[str, np.ndarray], steps: dict[str, np.ndarray],
         header: Header) -> bytes:
    """Quantise every tensor with its steps, entropy-code it, and build the file."""
    tensors = [code_tensor(name, quantize(params[name], steps[name]), steps[name]) for name, _ in arch.param_shapes()]
    return dumps(header, tensors)


def check_decodable(h: Header, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse, from the header alone and before any entropy decoding, a file whose decoding
    would not fit: more samples than max_pixels, or padding, activations or MACs out of
    proportion to the samples."""
    check_samples(h.sizes, max_pixels)
    samples = math.prod(h.sizes)
    arch = h.architecture
    dec = arch.decomposition
    padded = math.prod(dec.padded)
    coarse_floats = dec.cells(dec.levels - 2) * (arch.hidden + arch.latent_dim)
    limit = DECODE_WORK_PER_SAMPLE * samples + DECODE_SLACK
    if padded > DECODE_PADDING * samples + DECODE_SLACK or coarse_floats > limit:
        raise AsmrError(f"the bases pad {samples} samples to {padded} with {dec.cells(dec.levels - 2)} coarse "
                        f"cells of width {arch.hidden}: too much work to decode")
    if macs_per_pixel(arch) * padded > DECODE_MACS_PER_SAMPLE * samples + (1 << 30):
        raise AsmrError(f"a network of {arch.param_count()} parameters is too costly to render "
                        f"{samples} samples")


def unpack(f: AsmrFile) -> tuple[Architecture, dict[str, np.ndarray]]:
    """The network and its float32 weights (check_decodable first)."""
    arch = f.header.architecture
    params = {}
    for (name, shape), t in zip(arch.param_shapes(), f.tensors):
        params[name] = dequantize(entropy.decode(t.coded, shape), t.steps)
    return arch, params


def render_image(f: AsmrFile, out_size: tuple[int, int], top_left: tuple[int, int],
                 bottom_right: tuple[int, int]) -> np.ndarray:
    arch, params = unpack(f)
    return render(arch, params, out_size, top_left, bottom_right)


def native_frames(arch: Architecture, params: dict[str, np.ndarray], start: int, end: int) -> np.ndarray:
    """Frames [start, end) as (n, H, W, C) uint8 through the tiled renderer
    (resample.render_native), a few frames at a time (at most VIDEO_CHUNK_SAMPLES samples)."""
    _, height, width = arch.decomposition.sizes
    p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    out = np.empty((end - start, height, width, arch.channels), np.uint8)
    step = max(1, VIDEO_CHUNK_SAMPLES // (height * width))
    for t0 in range(start, end, step):
        t1 = min(end, t0 + step)
        part = render_native(arch, p, (t0, 0, 0), (t1, height, width)) * np.float32(255.0)
        out[t0 - start:t1 - start] = np.moveaxis(np.clip(np.rint(part), 0, 255).astype(np.uint8), 0, -1)
    return out


def decode_frames(f: AsmrFile, start: int, end: int) -> np.ndarray:
    arch, params = unpack(f)
    return native_frames(arch, params, start, end)


def render_frames(f: AsmrFile, start: int, end: int, out_size: tuple[int, int], top_left: tuple[int, int],
                  bottom_right: tuple[int, int]) -> np.ndarray:
    """Frames [start, end) at any frame size and for a region of it; the time axis stays on its grid."""
    arch, params = unpack(f)
    t = f.header.sizes[0]
    (y, x), (y1, x1) = top_left, bottom_right
    out = np.empty((end - start, y1 - y, x1 - x, arch.channels), np.uint8)
    step = max(1, VIDEO_CHUNK_SAMPLES // ((y1 - y) * (x1 - x)))
    for t0 in range(start, end, step):
        t1 = min(end, t0 + step)
        part = render(arch, params, (t, *out_size), (t0, y, x), (t1, y1, x1))
        out[t0 - start:t1 - start] = np.clip(np.rint(np.moveaxis(part, 0, -1) * 255.0), 0, 255)
    return out


def describe(h: Header, nbytes: int, version: int = VERSION) -> dict:
    """The stats that follow from the header, the file size and the format version alone."""
    arch = h.architecture
    samples = math.prod(h.sizes)
    height, width = h.sizes[-2], h.sizes[-1]
    macs = macs_per_pixel(arch)
    siren = siren_macs_per_pixel(arch)
    out = {
        "format_version": version,
        "kind": "video" if h.kind == KIND_VIDEO else "image",
        "width": width, "height": height, "channels": h.channels, "bit_depth": h.bit_depth,
        "bytes": nbytes, "bpp": round(nbytes * 8 / samples, 5),
        "params": arch.param_count(), "levels": arch.levels,
        "bases": [list(b) for b in h.bases], "hidden": h.hidden, "latent_dim": h.latent_dim,
        "macs_per_pixel": round(macs, 1), "siren_macs_per_pixel": round(siren, 1),
        "mac_reduction": round(siren / macs, 2),
    }
    if h.kind == KIND_VIDEO:
        out.update(frames=h.sizes[0], fps=h.fps_num / h.fps_den)
    return out
