"""Reading and writing video clips: the only module that knows video formats.

A clip is (T, H, W, C) uint8 RGB frames and a frame rate. Containers (mp4, mov, mkv,
webm, avi) are read through PyAV; animated GIF, WebP and PNG (APNG) through Pillow; y4m
and folders of numbered frames by hand. y4m is written as 4:4:4 full-range BT.601 (`C444 XCOLORRANGE=FULL`), so
RGB survives within rounding; it is read and written with numpy alone, which keeps
`asmr decode clip.asmr -o clip.y4m` free of torch and FFmpeg start-up costs.
mp4, mov, mkv and avi are H.264 (libx264, yuv420p): odd sizes are padded to even by
repeating the last row/column, the true size goes into the container's comment tag and is
cropped back on reading. webm is VP9 (libvpx-vp9, yuv420p), which takes odd sizes as they are.
"""

from __future__ import annotations

import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from .clips import DEFAULT_FPS, DEFAULT_MAX_SAMPLES, Clip, Collector, FrameRange
from .media import animated_frames, atomic_output
from .y4m import read_y4m, write_y4m

CONTAINER_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
VIDEO_READ_EXTS = CONTAINER_EXTS | {".gif", ".y4m"}
ANIMATED_WRITE_EXTS = {".webp", ".apng", ".png"}  # animated WebP and PNG (APNG), written by Pillow
VIDEO_WRITE_EXTS = CONTAINER_EXTS | {".gif", ".y4m"} | ANIMATED_WRITE_EXTS
# container -> (FFmpeg muxer, encoder, encoder options); every one is checked by a round trip in the tests
CONTAINER_CODECS = {
    ".mp4": ("mp4", "libx264", {"preset": "medium"}),
    ".mov": ("mov", "libx264", {"preset": "medium"}),
    ".mkv": ("matroska", "libx264", {"preset": "medium"}),
    ".avi": ("avi", "libx264", {"preset": "medium"}),
    ".webm": ("webm", "libvpx-vp9", {"b:v": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}),
}
VIDEO_NAME_EXTS = CONTAINER_EXTS | {".gif", ".y4m",  # the names only a video has
                                    ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".ogv", ".flv", ".wmv", ".3gp"}
FRAME_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
MP4_CRF = 12  # H.264 and VP9 alike: decoded clips are written near-transparently; `--crf` would be a flag later
SIZE_TAG = "asmr:size="


def is_video_path(path: Path) -> bool:
    """Video by extension, a folder (of numbered frames), or an animated GIF, WebP or PNG."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_READ_EXTS or path.is_dir() or animated_frames(path) > 1


def is_frame_folder(path: Path, folder: bool | None = None) -> bool:
    """Whether an output names a folder of frames: `folder` when the caller knows (a name
    given with a trailing slash), else an existing folder or a name without a suffix."""
    path = Path(path)
    return bool(folder) or path.is_dir() or path.suffix == ""


def is_video_output(path: Path, folder: bool | None = None) -> bool:
    """Video output by extension, or a folder of frames (see is_frame_folder)."""
    return is_frame_folder(path, folder) or Path(path).suffix.lower() in VIDEO_WRITE_EXTS


def media_kind(path: Path) -> str | None:
    """"image" or "video" when a file name's extension belongs to such a format, else None."""
    from .media import IMAGE_NAME_EXTS

    ext = Path(path).suffix.lower()
    return "image" if ext in IMAGE_NAME_EXTS else "video" if ext in VIDEO_NAME_EXTS else None


def video_outputs() -> str:
    """What write_video accepts, for error messages."""
    return f"{', '.join(sorted(VIDEO_WRITE_EXTS))} or a folder (a name ending in /)"


# -- reading -------------------------------------------------------------------------------

def read_video(path: Path, frames: FrameRange | None = None,
               max_samples: int = DEFAULT_MAX_SAMPLES, max_pixels: int | None = None) -> Clip:
    """A clip's frames [frames); refused, from its first frame on, if it holds more than
    max_samples (T * H * W) or a frame of more than max_pixels (`--max-pixels`)."""
    path = Path(path)
    if not path.exists():
        raise AsmrError(f"{path}: no such file or folder")
    rng = frames or FrameRange()
    if path.is_dir():
        clip = _read_folder(path, rng, max_samples, max_pixels)
    else:
        if path.stat().st_size == 0:
            raise AsmrError(f"{path}: empty file")
        ext = path.suffix.lower()
        if ext == ".y4m":
            clip = read_y4m(path, rng, max_samples, max_pixels)
        elif ext == ".gif" or (ext not in CONTAINER_EXTS and animated_frames(path) > 1):
            clip = _read_animated(path, rng, max_samples, max_pixels)
        elif ext in CONTAINER_EXTS:
            clip = _read_container(path, rng, max_samples, max_pixels)
        else:
            raise AsmrError(f"{path}: not a video ({', '.join(sorted(VIDEO_READ_EXTS))}, an animated "
                            "WebP or PNG, or a folder)")
    if clip.count == 0:
        raise AsmrError(f"{path}: no frames" + (" in the selected range" if frames else ""))
    return clip


def _read_container(path: Path, rng: FrameRange, max_samples: int, max_pixels: int | None = None) -> Clip:
    import av

    col = Collector(path, rng, max_samples, max_pixels)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise AsmrError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or DEFAULT_FPS
            crop = _size_tag(next((v for k, v in container.metadata.items() if k.lower() == "comment"), ""))
            for frame in container.decode(stream):
                if col.done:
                    break
                if col.index >= rng.start:
                    px = frame.to_ndarray(format="rgb24")
                    if crop:
                        px = px[:crop[1], :crop[0]]
                    col.add(px)
                else:
                    col.index += 1
    except AsmrError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AsmrError(f"{path}: cannot decode video ({exc})") from None
    return col.clip(Fraction(rate))


def _size_tag(comment: str) -> tuple[int, int] | None:
    m = re.search(re.escape(SIZE_TAG) + r"(\d+)x(\d+)", comment or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _read_animated(path: Path, rng: FrameRange, max_samples: int, max_pixels: int | None = None) -> Clip:
    """An animated GIF, WebP or PNG through Pillow, frames composited to RGB (alpha dropped);
    the frame rate from the mean frame duration when they differ by a millisecond at most
    (rounding), else from the median (10 fps when none is given)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    col = Collector(path, rng, max_samples, max_pixels)
    durations = []
    kind = path.suffix.lstrip(".").upper() or "image"
    try:
        with Image.open(path) as im:
            kind = im.format or kind
            for frame in ImageSequence.Iterator(im):
                if col.done:
                    break
                px = np.asarray(frame.convert("RGB"), dtype=np.uint8)  # loads it: WebP sets its duration here
                durations.append(frame.info.get("duration") or 0)
                col.add(px)
    except UnidentifiedImageError:
        raise AsmrError(f"{path}: not a recognised {kind}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise AsmrError(f"{path}: cannot read {kind} ({exc})") from None
    ms = [d for d in durations if d > 0]
    if ms and max(ms) - min(ms) <= 1:  # one rate in whole milliseconds (WebP): the mean is the rate
        fps = (Fraction(1000 * len(ms)) / Fraction(sum(ms)).limit_denominator(1000)).limit_denominator(1001)
    else:
        fps = Fraction(1000) / Fraction(float(np.median(ms))).limit_denominator(1000) if ms else Fraction(10)
    return col.clip(fps)


def _frame_number(name: str) -> int | None:
    nums = re.findall(r"\d+", Path(name).stem)
    return int(nums[-1]) if nums else None


def _read_folder(path: Path, rng: FrameRange, max_samples: int, max_pixels: int | None = None) -> Clip:
    from .media import read_image

    files = [p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTS and not p.name.startswith(".")]
    numbered = [(n, p) for p in files if (n := _frame_number(p.name)) is not None]
    if not numbered:
        raise AsmrError(f"{path}: no numbered frames ({', '.join(sorted(FRAME_EXTS))})")
    numbered.sort()
    col = Collector(path, rng, max_samples, max_pixels)
    for _, p in numbered:
        if col.done:
            break
        if col.index < rng.start:
            col.index += 1
            continue
        r = read_image(p)
        px = r.pixels
        if r.bit_depth == 16:
            px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
        col.add(_to_rgb(px))
    return col.clip(DEFAULT_FPS)


def _to_rgb(px: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 with C in 1..4 -> (H, W, 3); alpha is dropped."""
    c = px.shape[2]
    if c in (1, 2):
        return np.repeat(px[..., :1], 3, axis=2)
    return np.ascontiguousarray(px[..., :3])


def write_video(path: Path, clip: Clip, folder: bool | None = None) -> None:
    """Write by extension (.mp4 .mov .mkv .avi .webm .gif .y4m, animated .webp .apng .png) or as a folder of PNG frames
    (see is_frame_folder; `folder=True` for a name given with a trailing slash, dots or not).
    The output appears atomically: written under a temporary name, then renamed."""
    path = Path(path)
    ext = path.suffix.lower()
    if is_frame_folder(path, folder):
        _write_folder(path, clip)
        return
    if ext not in VIDEO_WRITE_EXTS:
        raise AsmrError(f"{path}: unsupported video output {ext} (use {video_outputs()})")
    with atomic_output(path, ext) as tmp:
        if ext == ".y4m":
            with open(tmp, "wb") as fh:
                write_y4m(fh, clip)
        elif ext == ".gif":
            _write_gif(tmp, clip)
        elif ext in ANIMATED_WRITE_EXTS:
            _write_animated(tmp, clip, "WEBP" if ext == ".webp" else "PNG")
        else:
            _write_container(tmp, clip)


def _write_gif(path: Path, clip: Clip) -> None:
    from PIL import Image

    ims = [Image.fromarray(f) for f in clip.frames]
    ms = max(10, int(round(1000 / float(clip.fps)))) if clip.fps else 100
    ims[0].save(path, format="GIF", save_all=True, append_images=ims[1:], duration=ms, loop=0)


WEBP_NUDGE = 8


def _write_animated(path: Path, clip: Clip, fmt: str) -> None:
    """An animated WebP (quality 95, as still WebP output) or PNG (APNG, lossless), looping,
    with one frame per frame of the clip: both writers merge a frame identical to the one
    before into it (a longer duration), which would lose the frame count. APNG: the
    frames' blend alternates between source and over, the same for opaque frames and
    enough for Pillow to keep each. WebP (libwebp merges by itself, and counts differences
    up to 2 levels at quality 95 as none): such a frame has one corner pixel moved by
    WEBP_NUDGE levels, one pixel of the frame, less than the lossy coding's own error
    elsewhere."""
    from PIL import Image

    period = 1000 / Fraction(clip.fps) if clip.fps else Fraction(100)  # ms
    if fmt == "WEBP":  # whole milliseconds: rounded on the running time, so that their mean is the rate
        ms = [round((i + 1) * period) - round(i * period) for i in range(clip.count)]
    else:  # APNG stores each delay as a fraction: exact
        ms = float(period)
    if fmt == "WEBP":
        frames, previous = [], None
        for f in clip.frames:
            if previous is not None and np.array_equal(f, previous):
                f = f.copy()
                f[0, 0, 0] = f[0, 0, 0] + WEBP_NUDGE if f[0, 0, 0] < 128 else f[0, 0, 0] - WEBP_NUDGE
            frames.append(f)
            previous = f
        options = {"quality": 95, "method": 4}
    else:
        frames = list(clip.frames)
        options = {"compress_level": 1, "disposal": 0, "blend": [i % 2 for i in range(clip.count)]}
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, format=fmt, save_all=True, append_images=ims[1:], duration=ms, loop=0, **options)


def _write_container(path: Path, clip: Clip, crf: int = MP4_CRF) -> None:
    """H.264 (VP9 for webm) yuv420p; for H.264, odd sizes are padded by edge repetition and
    the true size is tagged."""
    import av

    muxer, codec, options = CONTAINER_CODECS[path.suffix.lower()]
    h, w = clip.height, clip.width
    ph, pw = (h + h % 2, w + w % 2) if codec == "libx264" else (h, w)
    fps = Fraction(clip.fps).limit_denominator(1 << 16) if clip.fps else DEFAULT_FPS
    try:
        with av.open(str(path), "w", format=muxer) as out:
            if (ph, pw) != (h, w):
                out.metadata["comment"] = f"{SIZE_TAG}{w}x{h}"
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
            stream.options = {"crf": str(crf), **options}
            for px in clip.frames:
                if (ph, pw) != (h, w):
                    px = np.pad(px, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
                for packet in stream.encode(av.VideoFrame.from_ndarray(px, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        raise AsmrError(f"{path}: cannot encode video ({exc})") from None


def _write_folder(path: Path, clip: Clip) -> None:
    """PNG frames frame_000000.png ... in a temporary folder, renamed into place."""
    from .media import write_png8

    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    digits = max(6, len(str(clip.count - 1)))
    try:
        tmp.mkdir(parents=False, exist_ok=False)
        for i, f in enumerate(clip.frames):
            write_png8(tmp / f"frame_{i:0{digits}d}.png", f)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        if old.exists():
            shutil.rmtree(old)
    except OSError as exc:
        if old.exists() and not path.exists():
            old.rename(path)
        raise AsmrError(f"{path}: cannot write frames ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)




# -- clips as a codec's bare stream (asmr compare) --------------------------------------------

# name -> (FFmpeg encoder, FFmpeg decoder, the options every setting shares, the crf range)
STREAM_CODECS = {
    "x264": ("libx264", "h264", {"preset": "medium", "threads": "1"}, (0, 51)),  # one thread: the same bytes
    "x265": ("libx265", "hevc", {"preset": "medium", "x265-params": "log-level=error:info=0"}, (0, 51)),
    "vp9": ("libvpx-vp9", "vp9", {"deadline": "good", "cpu-used": "2", "row-mt": "1"}, (0, 63)),
}


def encode_stream(clip: Clip, codec: str, crf: int | None = None, bitrate: int | None = None) -> tuple[bytes, int]:
    """The clip through one of STREAM_CODECS (yuv420p; odd sizes padded by edge repetition),
    at a constant quality `crf` or an average `bitrate` (bits per second; VP9 two-pass is
    not used: one pass, searched by the caller). Returns (a Matroska file holding it, the
    stream's bytes: its packets and the codec's extradata, without the container)."""
    import io

    import av

    encoder, _, shared, _ = STREAM_CODECS[codec]
    h, w = clip.height, clip.width
    ph, pw = h + h % 2, w + w % 2
    fps = Fraction(clip.fps).limit_denominator(1 << 16) if clip.fps else DEFAULT_FPS
    buf = io.BytesIO()
    stream_bytes = 0
    try:
        with av.open(buf, "w", format="matroska") as out:
            stream = out.add_stream(encoder, rate=fps)
            stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
            options = dict(shared)
            if crf is not None:
                options["crf"] = str(crf)
                if codec == "vp9":
                    options["b:v"] = "0"  # constant quality
            else:
                stream.bit_rate = int(bitrate)
            stream.options = options
            for px in clip.frames:
                if (ph, pw) != (h, w):
                    px = np.pad(px, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
                for packet in stream.encode(av.VideoFrame.from_ndarray(px, format="rgb24")):
                    stream_bytes += packet.size
                    out.mux(packet)
            for packet in stream.encode():
                stream_bytes += packet.size
                out.mux(packet)
            stream_bytes += len(stream.codec_context.extradata or b"")
    except (av.FFmpegError, ValueError) as exc:
        raise AsmrError(f"{codec}: cannot encode ({exc})") from None
    return buf.getvalue(), stream_bytes


def decode_stream(data: bytes, width: int, height: int) -> np.ndarray:
    """encode_stream's file back to (T, H, W, 3) uint8 frames, cropped to width x height."""
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24")[:height, :width] for f in container.decode(video=0)]
    return np.stack(frames)
