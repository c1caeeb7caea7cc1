"""Format version 4 as a family (core/family.py): clips as latent pyramids per frame."""

from __future__ import annotations

import time

import numpy as np

from ..container.file import KIND_VIDEO, AsmrFile, unframe
from ..core.errors import AsmrError
from ..core.family import Family
from ..core.options import EncodeOptions, EncodeResult, check_effort
from ..core.presets import CLIP_PRESETS, VIDEO_PRESETS
from ..core.rates import clip_target
from ..io.clips import Clip, fps_pair, frame_psnr
from ..latent import codec as latent_codec
from ..latent.family import check_decodable, describe
from ..latent.format import LatentHeader
from . import codec
from .format import VERSION, parse


def decode_frames(f: AsmrFile, start: int, end: int) -> np.ndarray:
    return codec.frames_uint8(codec.unpack_clip(f), start, end)


def render_frames(f: AsmrFile, start: int, end: int, out_size: tuple[int, int], top_left: tuple[int, int],
                  bottom_right: tuple[int, int]) -> np.ndarray:
    """Frames [start, end) at any frame size and for a region of it, each through the image decoder."""
    lc = codec.unpack_clip(f)
    (y, x), (y1, x1) = top_left, bottom_right
    out = np.empty((end - start, y1 - y, x1 - x, f.header.channels), np.uint8)
    for i, img in enumerate(lc.frames(start, end)):
        part = latent_codec.render(img, out_size, top_left, bottom_right)
        out[i] = np.clip(np.rint(np.moveaxis(part, 0, -1) * 255.0), 0, 255)
    return out


def encode_clip(clip: Clip, opts: EncodeOptions, progress=None) -> EncodeResult:
    """plan (target, layout, groups, header) -> encoder.encode -> the check decode -> stats."""
    from ..core.device import resolve_device
    from . import encoder

    start = time.perf_counter()
    if opts.preset not in CLIP_PRESETS:
        raise AsmrError(f"--preset {opts.preset}: expected one of {', '.join(CLIP_PRESETS)}")
    if opts.iters is not None or opts.time_limit is not None:
        check_effort(1 if opts.iters is None else opts.iters, opts.time_limit)
    t, h, w = clip.count, clip.height, clip.width
    target = clip_target(t * h * w, opts, VIDEO_PRESETS[opts.preset].bpp)
    layout = encoder.clip_layout(t, h, w, clip.channels, opts.preset, opts.hidden, opts.levels)
    header = LatentHeader((t, h, w), clip.channels, 8, layout.levels, layout.hidden, layout.context_hidden,
                          KIND_VIDEO, *fps_pair(clip.fps), encoder.group_size(t, h, w))
    resolve_device(opts.device)  # a bad --device is refused; the latent fit itself runs on the CPU
    enc = encoder.encode(clip.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                         opts.seed, progress)
    f = parse(*unframe(enc.data, FAMILY.versions))  # the check decode
    decoded = decode_frames(f, 0, t)
    stats = describe(header, len(enc.data), VERSION)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(float(np.mean(frame_psnr(clip.frames, decoded))), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp, lam=enc.lam, weight_bits=enc.weight_bits,
                 estimated_seconds=None if enc.estimated_seconds is None else round(enc.estimated_seconds, 1))
    return EncodeResult(enc.data, stats)


FAMILY = Family("clip", (VERSION,), parse, describe, check_decodable, decode_frames=decode_frames,
                render_frames=render_frames, encode_clip=encode_clip)
