"""`asmr compare` for a clip: x264, x265 and VP9 through PyAV at the largest stream not
above asmr's file (crf searched, then an average bitrate where the crf steps miss)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from ..core.metrics import psnr, ssim
from ..core.options import EncodeOptions
from .compare import (
    BITRATE_TRIES,
    CLIP_CODECS,
    SIZE_CLOSE,
    CodecResult,
    Comparison,
    check_crop,
    detailed_crop,
    search_quality,
    setting_label,
)

# -- clips: x264, x265 and VP9 through PyAV ------------------------------------------------------

def _clip_measure(row: CodecResult, original: np.ndarray, decoded: np.ndarray) -> None:
    """Mean per-frame PSNR and SSIM (8-bit RGB), bpp over every frame's pixels."""
    t, h, w = original.shape[:3]
    row.bpp = round(8 * row.bytes / (t * h * w), 4)
    row.psnr = round(float(np.mean([psnr(a, b, 255.0) for a, b in zip(original, decoded)])), 3)
    row.ssim = round(float(np.mean([ssim(a, b, 255.0) for a, b in zip(original, decoded)])), 4)
    row.decoded = decoded


def _asmr_clip_row(clip, opts: EncodeOptions, progress) -> CodecResult:
    from .clips import decode_video, encode_clip

    start = time.perf_counter()
    result = encode_clip(clip, opts, progress)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode_video(result.data)
    decode_seconds = time.perf_counter() - start
    row = CodecResult("asmr", setting_label(opts), len(result.data), encode_seconds=round(encode_seconds, 3),
                      decode_seconds=round(decode_seconds, 4), gap=0.0)
    _clip_measure(row, clip.frames, decoded.frames)
    return row


def _bitrate_search(size_at: Callable[[int], int], target: int, seconds: float) -> tuple[int, int] | None:
    """(bitrate, size): the largest size not above target over average bitrates, by the
    secant on log size against log bitrate from the rate that would fill the target;
    None when no try fits."""
    import math

    best = None
    rate = max(1000, int(8 * target / seconds))
    tried: list[tuple[float, float]] = []
    for _ in range(BITRATE_TRIES):
        size = size_at(rate)
        if size <= target and (best is None or size > best[1]):
            best = (rate, size)
        if best is not None and best[1] >= (1 - SIZE_CLOSE / 2) * target:
            break
        tried.append((math.log(rate), math.log(size)))
        goal = math.log((1 - SIZE_CLOSE / 4) * target)
        if len(tried) >= 2 and tried[-1][0] != tried[-2][0]:
            slope = (tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0])
            slope = min(2.0, max(0.2, slope))
        else:
            slope = 1.0
        rate = max(1000, int(math.exp(tried[-1][0] + (goal - tried[-1][1]) / slope)))
    return best


def _stream_row(clip, codec: str, target: int) -> CodecResult:
    from ..io.video import STREAM_CODECS, decode_stream, encode_stream

    encoder = STREAM_CODECS[codec][0]
    if not _ffmpeg_has(encoder):
        return CodecResult(codec, note=f"not available: this PyAV's FFmpeg has no {encoder}")
    lo, hi = STREAM_CODECS[codec][3]
    q, size = search_quality(lambda q: encode_stream(clip, codec, crf=hi - q)[1], target, 0, hi - lo)
    setting, kwargs = f"crf {hi - q}", {"crf": hi - q}
    if size > target or size < (1 - SIZE_CLOSE) * target:  # crf steps too coarse: an average bitrate
        seconds = clip.count / float(clip.fps or 25)
        found = _bitrate_search(lambda b: encode_stream(clip, codec, bitrate=b)[1], target, seconds)
        if found is not None and (size > target or found[1] > size):
            setting, kwargs = f"{found[0] / 1000:.0f} kbit/s", {"bitrate": found[0]}
    start = time.perf_counter()
    data, stream_bytes = encode_stream(clip, codec, **kwargs)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode_stream(data, clip.width, clip.height)
    decode_seconds = time.perf_counter() - start
    gap = stream_bytes / target - 1
    row = CodecResult(codec, setting, stream_bytes, encode_seconds=round(encode_seconds, 4),
                      decode_seconds=round(decode_seconds, 4), gap=round(gap, 4))
    if gap > 0:
        row.note = f"{gap:.0%} above asmr's size at its lowest setting"
    elif gap < -SIZE_CLOSE:
        row.note = f"{-gap:.0%} below asmr's size: no crf or bitrate tried landed closer"
    if decoded.shape[0] != clip.count:
        raise AsmrError(f"{codec}: {decoded.shape[0]} frames decoded of {clip.count}")
    _clip_measure(row, clip.frames, decoded)
    return row


def _ffmpeg_has(encoder: str) -> bool:
    import av

    return encoder in av.codecs_available


def compare_clip(path: Path, opts: EncodeOptions | None = None, codecs: tuple[str, ...] = CLIP_CODECS,
                 crop: tuple[int, int, int, int] | None = None, frame: int | None = None,
                 frames=None, progress=None) -> Comparison:
    """asmr with `opts` on a clip (`frames`: an io.clips.FrameRange), then each of `codecs`
    at the largest stream not above asmr's file: its crf searched, then an average
    bitrate where the crf steps miss by more than 5%. Sizes are the codecs' bare streams
    (packets and headers, no container). The picture shows frame `frame` (default: the
    middle one)."""
    from ..io.video import read_video

    opts = opts or EncodeOptions()
    unknown = [c for c in codecs if c not in CLIP_CODECS]
    if unknown:
        raise AsmrError(f"--codecs {','.join(unknown)}: expected some of {','.join(CLIP_CODECS)} for a clip")
    clip = read_video(Path(path), frames, max_pixels=opts.max_pixels)
    index = clip.count // 2 if frame is None else frame
    if not 0 <= index < clip.count:
        raise AsmrError(f"--frame {frame}: the clip has frames 0 to {clip.count - 1}")
    if crop is not None:
        crop = check_crop(crop, clip.width, clip.height)
    rows = [_asmr_clip_row(clip, opts, progress)]
    target = rows[0].bytes
    rows += [_stream_row(clip, c, target) for c in codecs]
    for r in rows:
        if r.decoded is not None:
            r.decoded = r.decoded[index]
    crop = crop or detailed_crop(clip.frames[index])
    notes = ["x264, x265, VP9: bytes of the bare stream (packets and codec headers, no container)"]
    return Comparison(str(path), clip.width, clip.height, target, clip.frames[index], rows, crop, notes,
                      frames=clip.count, frame=index)
