"""Formats 4, 7 and 9 as a family (core/family.py): clips as latent pyramids per frame (4),
as intra frames and motion-compensated P frames whose pyramids code the residual (7), and
as intra frames and hierarchical B frames (9). The encoder writes 4 unless WRITE_MOTION."""

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
from . import codec, codec7, format7, format9
from .format import VERSION as VERSION4
from .format import parse as parse4

VERSION = format7.VERSION
# The encoder writes format 4 (no motion) by default; True (or `--motion`) writes
# MOTION_VERSION (9: hierarchical B frames, 7: P frames). Format 9 measured 0.5-1.4 dB above format 4 on
# carphone (the tuning clip) but 1.5 dB under it on bikes, in 2.4x the time and 4.15 GB
# (docs/video.md), so it is not the default yet.
WRITE_MOTION = False
MOTION_VERSION = format9.VERSION
MOTION_VERSIONS = (format7.VERSION, format9.VERSION)


def parse(version: int, header: bytes, payload: bytes) -> AsmrFile:
    if version == format9.VERSION:
        return format9.parse(version, header, payload)
    return format7.parse(version, header, payload) if version == format7.VERSION else parse4(version, header, payload)


def describe_clip(h: LatentHeader, nbytes: int, version: int) -> dict:
    out = describe(h, nbytes, version)
    if isinstance(h, format7.MotionHeader):
        # the warp of P frames: per channel 4 + 2 multiplies (bilinear) or 16 + 4 (cubic); a
        # B frame's two (at most: a reference may be unused), counted as two
        share = 1 - len(h.segment_spans()) / h.frames
        warp = share * h.channels * (6, 20)[h.filt] * (2 if isinstance(h, format9.BHeader) else 1)
        out["macs_per_pixel"] = round(out["macs_per_pixel"] + warp, 1)
        out["unshared_macs_per_pixel"] = round(out["unshared_macs_per_pixel"] + warp, 1)
        out.update(intra_period=h.period, motion_block=h.block,
                   motion_filter=("bilinear", "cubic")[h.filt], segments=len(h.segment_spans()))
    return out


def decode_frames(f: AsmrFile, start: int, end: int) -> np.ndarray:
    if f.version in MOTION_VERSIONS:
        return codec7.frames_uint8(codec7.unpack(f), start, end)
    return codec.frames_uint8(codec.unpack_clip(f), start, end)


def render_frames(f: AsmrFile, start: int, end: int, out_size: tuple[int, int], top_left: tuple[int, int],
                  bottom_right: tuple[int, int]) -> np.ndarray:
    """Frames [start, end) at any frame size and for a region of it: format 4 each through
    the image decoder; format 7 decoded at the native size (the prediction is pixels), then
    resampled as the image decoder resamples a reduced image (bicubic when enlarging)."""
    if f.version in MOTION_VERSIONS:
        return _render7(f, start, end, out_size, top_left, bottom_right)
    lc = codec.unpack_clip(f)
    (y, x), (y1, x1) = top_left, bottom_right
    out = np.empty((end - start, y1 - y, x1 - x, f.header.channels), np.uint8)
    for i, img in enumerate(lc.frames(start, end)):
        part = latent_codec.render(img, out_size, top_left, bottom_right)
        out[i] = np.clip(np.rint(np.moveaxis(part, 0, -1) * 255.0), 0, 255)
    return out


def _render7(f: AsmrFile, start: int, end: int, out_size: tuple[int, int], top_left: tuple[int, int],
             bottom_right: tuple[int, int]) -> np.ndarray:
    h: format7.MotionHeader = f.header
    (y, x), (y1, x1) = top_left, bottom_right
    ty = latent_codec.axis_taps(h.sizes[1], out_size[0], y, y1)
    tx = latent_codec.axis_taps(h.sizes[2], out_size[1], x, x1)
    mc = codec7.unpack(f)
    out = np.empty((end - start, y1 - y, x1 - x, h.channels), np.uint8)
    for i, fr in enumerate(mc.frames(start, end)):
        part = latent_codec._resample(latent_codec._resample(fr.astype(np.float32), ty, 0), tx, 1)
        out[i] = np.clip(np.rint(part), 0, 255)
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
    group = encoder.group_size(t, h, w)
    fields = ((t, h, w), clip.channels, 8, layout.levels, layout.hidden, layout.context_hidden,
              KIND_VIDEO, *fps_pair(clip.fps), group)
    resolve_device(opts.device)  # a bad --device is refused; the latent fit itself runs on the CPU
    if WRITE_MOTION or opts.motion:
        from . import encoder7

        bpp = target.budget_bytes * 8 / (t * h * w)
        cls = format9.BHeader if MOTION_VERSION == format9.VERSION else format7.MotionHeader
        header = cls(*fields, encoder7.period_for(group, bpp), encoder7.block_for(h, w), encoder7.FILTER)
        enc = encoder7.encode(clip.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                              opts.seed, progress)
    else:
        header = LatentHeader(*fields)
        enc = encoder.encode(clip.as_float(), header, target, opts.preset, opts.iters, opts.time_limit,
                             opts.seed, progress)
    f = parse(*unframe(enc.data, FAMILY.versions))  # the check decode
    decoded = decode_frames(f, 0, t)
    stats = describe_clip(header, len(enc.data), f.version)
    if f.version in MOTION_VERSIONS:
        from .encoder7 import mode_counts

        stats["motion_modes"] = mode_counts(f.motion)
    stats.update(encode_seconds=round(time.perf_counter() - start, 3), iterations=enc.iterations,
                 psnr=round(float(np.mean(frame_psnr(clip.frames, decoded))), 3),
                 target_bytes=target.budget_bytes, target_bpp=target.bpp, lam=enc.lam, weight_bits=enc.weight_bits,
                 estimated_seconds=None if enc.estimated_seconds is None else round(enc.estimated_seconds, 1))
    return EncodeResult(enc.data, stats)


FAMILY = Family("clip", (VERSION4, *MOTION_VERSIONS), parse, describe_clip, check_decodable,
                decode_frames=decode_frames, render_frames=render_frames, encode_clip=encode_clip)
