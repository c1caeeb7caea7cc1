"""Clips: encode frames to .asmr bytes, decode a range of frames (at any frame size or
region), stats against a reference clip."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from ..container.file import KIND_VIDEO
from ..core.errors import AsmrError
from ..core.options import EncodeOptions, EncodeResult
from ..io.clips import DEFAULT_MAX_SAMPLES, Clip, FrameRange, frame_psnr
from ..io.sizes import check_region, output_size
from .formats import clip_encoder, family_of, loads
from .images import describe


def encode_clip(clip: Clip, opts: EncodeOptions | None = None, progress=None) -> EncodeResult:
    """Encode a clip ((T, H, W, 3) uint8 frames): latent pyramids per frame (format 4), or
    with --model coordinate one coordinate network for the whole clip (format 2)."""
    opts = opts or EncodeOptions()
    return clip_encoder(opts).encode_clip(clip, opts, progress)


def _clip_file(data: bytes, max_pixels: int | None):
    f = loads(data)
    family = family_of(f)
    if f.header.kind != KIND_VIDEO:
        raise AsmrError("this file holds an image, not a video (decode it to .png)")
    limit = DEFAULT_MAX_SAMPLES if max_pixels is None else max_pixels
    return f, family, limit, Fraction(f.header.fps_num, f.header.fps_den)


def decode_video(data: bytes, frames: FrameRange | None = None, max_pixels: int | None = None) -> Clip:
    """A clip from .asmr bytes; `frames` renders only that range."""
    f, family, limit, fps = _clip_file(data, max_pixels)
    start, end = (frames or FrameRange()).resolve(f.header.sizes[0])
    family.check_decodable(f.header, limit)
    return Clip(family.decode_frames(f, start, end), fps)


def render_clip(data: bytes, frames: FrameRange | None = None, size: tuple[int, int] | None = None,
                scale: float | None = None, width: int | None = None, height: int | None = None,
                region: tuple[int, int, int, int] | None = None, max_pixels: int | None = None,
                frame_pixels: int | None = None) -> Clip:
    """`decode_video` at any frame size and for any region of the frame (render_image's
    options); the time axis stays on its grid. `max_pixels` limits the samples of the
    whole render, `frame_pixels` (`--max-pixels`) the pixels of each rendered frame."""
    f, family, limit, fps = _clip_file(data, max_pixels)
    t, h, w = f.header.sizes
    start, end = (frames or FrameRange()).resolve(t)
    ow, oh = output_size(w, h, size, scale, width, height)
    per_frame = max(1, limit // (end - start))
    x, y, rw, rh = check_region(region, ow, oh, per_frame if frame_pixels is None else min(per_frame, frame_pixels))
    family.check_decodable(f.header, limit)
    return Clip(family.render_frames(f, start, end, (oh, ow), (y, x), (y + rh, x + rw)), fps)


def read_video_stats(data: bytes, ref: Path | None = None, frames: FrameRange | None = None) -> dict:
    """describe() plus, with a reference clip, the mean per-frame PSNR. `frames` selects
    the reference's frames (the range that was encoded)."""
    stats = describe(data)
    if ref is not None:
        from ..io.video import read_video  # containers and PyAV: only for a reference clip

        original = read_video(Path(ref), frames)
        decoded = decode_video(data)
        if original.frames.shape != decoded.frames.shape:
            o, d = original, decoded
            raise AsmrError(f"--ref {ref}: {o.count} frames of {o.width}x{o.height} do not match the file's "
                            f"{d.count} frames of {d.width}x{d.height}")
        per_frame = frame_psnr(original.frames, decoded.frames)
        stats.update(psnr=round(float(np.mean(per_frame)), 3), psnr_min=round(float(np.min(per_frame)), 3))
    return stats


def check_frame_pixels(data: bytes, max_pixels: int) -> None:
    """`--max-pixels` for a clip: a limit on each frame's pixels, checked from the header."""
    f = loads(data)
    t, h, w = f.header.sizes
    if w * h > max_pixels:
        raise AsmrError(f"the file declares frames of {w}x{h} = {w * h} pixels, over the {max_pixels}-pixel limit "
                        "(raise it with --max-pixels)")


def holds_video(data: bytes) -> bool:
    """Whether .asmr bytes hold a clip (checked from the header alone)."""
    return loads(data).header.kind == KIND_VIDEO
