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
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from .media import animated_frames, atomic_output

CONTAINER_EXTS = {".mp4", ".mov", ".mkv", ".webm", ".avi"}
VIDEO_READ_EXTS = CONTAINER_EXTS | {".gif", ".y4m"}
VIDEO_WRITE_EXTS = CONTAINER_EXTS | {".gif", ".y4m"}
# container -> (FFmpeg muxer, encoder, encoder options); every one is checked by a round trip in the tests
CONTAINER_CODECS = {
    ".mp4": ("mp4", "libx264", {"preset": "medium"}),
    ".mov": ("mov", "libx264", {"preset": "medium"}),
    ".mkv": ("matroska", "libx264", {"preset": "medium"}),
    ".avi": ("avi", "libx264", {"preset": "medium"}),
    ".webm": ("webm", "libvpx-vp9", {"b:v": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}),
}
VIDEO_NAME_EXTS = VIDEO_WRITE_EXTS | {".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".ogv", ".flv", ".wmv", ".3gp"}
FRAME_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
DEFAULT_FPS = Fraction(25)
DEFAULT_MAX_SAMPLES = 1_000_000_000  # T * H * W
MP4_CRF = 12  # H.264 and VP9 alike: decoded clips are written near-transparently; `--crf` would be a flag later
SIZE_TAG = "asmr:size="


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, C) uint8, C = 3
    fps: Fraction

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    @property
    def channels(self) -> int:
        return self.frames.shape[3]

    def as_float(self) -> np.ndarray:
        """(C, T, H, W) float32 in [0, 1]."""
        return np.ascontiguousarray(np.moveaxis(self.frames, -1, 0), dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class FrameRange:
    """Frames [start, end) of a clip; end None means to the last frame."""

    start: int = 0
    end: int | None = None

    def resolve(self, count: int) -> tuple[int, int]:
        end = count if self.end is None else min(self.end, count)
        if self.start >= end:
            raise AsmrError(f"--frames {self.start}:{self.end if self.end is not None else ''}: "
                            f"no frames selected (the clip has {count})")
        return self.start, end


def parse_frames(text: str | None) -> FrameRange | None:
    """`START:END` (0-based, END excluded, either side may be empty) or one frame `N`."""
    if text is None:
        return None
    first, sep, last = text.strip().partition(":")
    try:
        start = int(first) if first.strip() else 0
        end = int(last) if last.strip() else None
        if not sep:
            end = start + 1
    except ValueError:
        raise AsmrError(f"--frames {text!r}: expected START:END, e.g. 0:60") from None
    if start < 0 or (end is not None and end <= start):
        raise AsmrError(f"--frames {text!r}: expected 0 <= START < END")
    return FrameRange(start, end)


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
               max_samples: int = DEFAULT_MAX_SAMPLES) -> Clip:
    path = Path(path)
    if not path.exists():
        raise AsmrError(f"{path}: no such file or folder")
    rng = frames or FrameRange()
    if path.is_dir():
        clip = _read_folder(path, rng, max_samples)
    else:
        if path.stat().st_size == 0:
            raise AsmrError(f"{path}: empty file")
        ext = path.suffix.lower()
        if ext == ".y4m":
            clip = _read_y4m(path, rng, max_samples)
        elif ext == ".gif" or (ext not in CONTAINER_EXTS and animated_frames(path) > 1):
            clip = _read_animated(path, rng, max_samples)
        elif ext in CONTAINER_EXTS:
            clip = _read_container(path, rng, max_samples)
        else:
            raise AsmrError(f"{path}: not a video ({', '.join(sorted(VIDEO_READ_EXTS))}, an animated "
                            "WebP or PNG, or a folder)")
    if clip.count == 0:
        raise AsmrError(f"{path}: no frames" + (" in the selected range" if frames else ""))
    return clip


class _Collector:
    """Keeps frames [start, end) of a stream, checks size and the sample limit."""

    def __init__(self, path: Path, rng: FrameRange, max_samples: int):
        self.path, self.rng, self.max_samples = path, rng, max_samples
        self.index, self.frames = 0, []

    @property
    def done(self) -> bool:
        return self.rng.end is not None and self.index >= self.rng.end

    def add(self, frame: np.ndarray) -> None:
        if self.rng.start <= self.index and not self.done:
            if self.frames and frame.shape != self.frames[0].shape:
                raise AsmrError(f"{self.path}: frame {self.index} is {frame.shape[1]}x{frame.shape[0]}, "
                                f"earlier frames are {self.frames[0].shape[1]}x{self.frames[0].shape[0]}")
            if (len(self.frames) + 1) * frame.shape[0] * frame.shape[1] > self.max_samples:
                raise AsmrError(f"{self.path}: more than {self.max_samples} samples "
                                "(select fewer with --frames)")
            self.frames.append(frame)
        self.index += 1

    def clip(self, fps: Fraction) -> Clip:
        if not self.frames:
            return Clip(np.zeros((0, 1, 1, 3), np.uint8), fps)
        return Clip(np.stack(self.frames), fps)


def _read_container(path: Path, rng: FrameRange, max_samples: int) -> Clip:
    import av

    col = _Collector(path, rng, max_samples)
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


def _read_animated(path: Path, rng: FrameRange, max_samples: int) -> Clip:
    """An animated GIF, WebP or PNG through Pillow, frames composited to RGB (alpha dropped);
    the frame rate from the median frame duration (10 fps when none is given)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    col = _Collector(path, rng, max_samples)
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
    fps = Fraction(1000) / Fraction(float(np.median(ms))).limit_denominator(1000) if ms else Fraction(10)
    return col.clip(fps)


def _frame_number(name: str) -> int | None:
    nums = re.findall(r"\d+", Path(name).stem)
    return int(nums[-1]) if nums else None


def _read_folder(path: Path, rng: FrameRange, max_samples: int) -> Clip:
    from .media import read_image

    files = [p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTS and not p.name.startswith(".")]
    numbered = [(n, p) for p in files if (n := _frame_number(p.name)) is not None]
    if not numbered:
        raise AsmrError(f"{path}: no numbered frames ({', '.join(sorted(FRAME_EXTS))})")
    numbered.sort()
    col = _Collector(path, rng, max_samples)
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


# -- y4m: 8-bit YUV, BT.601 -------------------------------------------------------------------

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 3) uint8 full-range BT.601 YCbCr."""
    x = rgb.astype(np.float32)
    y = _KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]
    cb = (x[..., 2] - y) / (2 * (1 - _KB)) + 128.0
    cr = (x[..., 0] - y) / (2 * (1 - _KR)) + 128.0
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, full: bool) -> np.ndarray:
    """Planes of equal shape (uint8) -> (..., 3) uint8 RGB."""
    y, cb, cr = (p.astype(np.float32) for p in (y, cb, cr))
    if full:
        cb, cr = cb - 128.0, cr - 128.0
    else:
        y = (y - 16.0) * (255.0 / 219.0)
        cb = (cb - 128.0) * (255.0 / 224.0)
        cr = (cr - 128.0) * (255.0 / 224.0)
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _y4m_header(line: bytes, path: Path) -> dict:
    fields = line.decode("ascii", "replace").split()
    if not fields or fields[0] != "YUV4MPEG2":
        raise AsmrError(f"{path}: not a y4m file")
    out = {"C": "420jpeg", "F": None, "X": []}
    for f in fields[1:]:
        key, val = f[0], f[1:]
        if key == "X":
            out["X"].append(val)
        else:
            out[key] = val
    return out


def _read_y4m(path: Path, rng: FrameRange, max_samples: int) -> Clip:
    col = _Collector(path, rng, max_samples)
    try:
        with open(path, "rb") as fh:
            h = _y4m_header(fh.readline(200), path)
            try:
                w, hgt = int(h["W"]), int(h["H"])
            except (KeyError, ValueError):
                raise AsmrError(f"{path}: y4m header lacks a frame size") from None
            if w < 1 or hgt < 1 or w * hgt > max_samples:
                raise AsmrError(f"{path}: y4m frame size {w}x{hgt}")
            cs = h["C"].lower()
            if cs.startswith("420"):
                cw, ch = (w + 1) // 2, (hgt + 1) // 2
            elif cs.startswith("422"):
                cw, ch = (w + 1) // 2, hgt
            elif cs == "444":
                cw, ch = w, hgt
            elif cs == "mono":
                cw, ch = 0, 0
            else:
                raise AsmrError(f"{path}: y4m colour space C{h['C']} is not supported (8-bit 420/422/444/mono)")
            full = "COLORRANGE=FULL" in h["X"]
            fps = DEFAULT_FPS
            if h["F"]:
                num, _, den = h["F"].partition(":")
                if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
                    fps = Fraction(int(num), int(den))
            frame_bytes = w * hgt + 2 * cw * ch
            while not col.done:
                tag = fh.readline(200)
                if not tag:
                    break
                if not tag.startswith(b"FRAME"):
                    raise AsmrError(f"{path}: corrupt y4m (frame {col.index} has no FRAME tag)")
                if col.index < rng.start:
                    fh.seek(frame_bytes, os.SEEK_CUR)
                    col.index += 1
                    continue
                buf = fh.read(frame_bytes)
                if len(buf) < frame_bytes:
                    raise AsmrError(f"{path}: y4m ends inside frame {col.index}")
                a = np.frombuffer(buf, np.uint8)
                y = a[:w * hgt].reshape(hgt, w)
                if cw == 0:
                    u = v = np.full_like(y, 128)
                else:
                    u = a[w * hgt:w * hgt + cw * ch].reshape(ch, cw)
                    v = a[w * hgt + cw * ch:].reshape(ch, cw)
                    ry, rx = (2 if ch != hgt else 1), (2 if cw != w else 1)
                    u = np.repeat(np.repeat(u, ry, 0), rx, 1)[:hgt, :w]
                    v = np.repeat(np.repeat(v, ry, 0), rx, 1)[:hgt, :w]
                col.add(yuv_to_rgb(y, u, v, full))
    except OSError as exc:
        raise AsmrError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return col.clip(fps)


def _write_y4m(fh, clip: Clip) -> None:
    fps = Fraction(clip.fps).limit_denominator(1 << 30)
    fh.write(f"YUV4MPEG2 W{clip.width} H{clip.height} F{fps.numerator}:{fps.denominator} "
             "Ip A1:1 C444 XCOLORRANGE=FULL\n".encode("ascii"))
    for frame in clip.frames:
        planes = np.moveaxis(rgb_to_yuv444(frame), -1, 0)
        fh.write(b"FRAME\n")
        fh.write(np.ascontiguousarray(planes).tobytes())


# -- writing -------------------------------------------------------------------------------

def write_video(path: Path, clip: Clip, folder: bool | None = None) -> None:
    """Write by extension (.mp4 .mov .mkv .avi .webm .gif .y4m) or as a folder of PNG frames
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
                _write_y4m(fh, clip)
        elif ext == ".gif":
            _write_gif(tmp, clip)
        else:
            _write_container(tmp, clip)


def _write_gif(path: Path, clip: Clip) -> None:
    from PIL import Image

    ims = [Image.fromarray(f) for f in clip.frames]
    ms = max(10, int(round(1000 / float(clip.fps)))) if clip.fps else 100
    ims[0].save(path, format="GIF", save_all=True, append_images=ims[1:], duration=ms, loop=0)


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
    from PIL import Image

    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    old = path.with_name(f".{path.name}.old{os.getpid()}")
    digits = max(6, len(str(clip.count - 1)))
    try:
        tmp.mkdir(parents=False, exist_ok=False)
        for i, f in enumerate(clip.frames):
            Image.fromarray(f).save(tmp / f"frame_{i:0{digits}d}.png", compress_level=1)
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


def frame_psnr(ref: np.ndarray, test: np.ndarray) -> list[float]:
    """PSNR in dB of each frame (8-bit RGB)."""
    from ..core.metrics import psnr

    return [psnr(a, b, 255.0) for a, b in zip(ref, test)]


def fps_pair(fps) -> tuple[int, int]:
    """A frame rate as the (numerator, denominator) a header stores; (0, 1) when unknown."""
    f = Fraction(fps).limit_denominator(1 << 20) if fps else Fraction(0)
    return (int(f.numerator), int(f.denominator)) if f > 0 else (0, 1)
