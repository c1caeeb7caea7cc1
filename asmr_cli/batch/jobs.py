"""One file's work, input to output bytes: the unit that `asmr encode` runs once and
batch.py runs many times, in local worker processes or as Ray tasks. Encoding calls the
library API's functions (asmr_cli.api) as `asmr encode` does, decoding is `api.files.decode_file` into a
temporary file, so that a batch writes exactly what a single run writes."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import AsmrError

# no numpy, torch or Pillow at import: a worker process limits their threads before loading them


@dataclass(frozen=True)
class DecodeOptions:
    """`asmr decode`'s rendering options, as the command line spells them (api.files.decode_file's)."""
    frames: str | None = None
    size: str | None = None
    scale: float | None = None
    width: int | None = None
    height: int | None = None
    region: str | None = None
    max_pixels: int | None = None  # None: media.DEFAULT_MAX_PIXELS


def read_clip(path: Path, frames: str | None, max_pixels: int | None = None):
    """The clip to encode, or None when the input is an image; `max_pixels` limits each frame."""
    from ..io.clips import parse_frames
    from ..io.video import is_video_path, read_video

    if not is_video_path(path) and frames is None:
        return None
    return read_video(path, parse_frames(frames), max_pixels=max_pixels)


def encode_any(raster, clip, opts, progress=None):
    """encode_raster for an image, encode_clip for a clip."""
    from ..api import encode_clip, encode_raster

    return encode_raster(raster, opts, progress) if clip is None else encode_clip(clip, opts, progress)


def encode_path(path: Path, opts, frames: str | None = None):
    """An image or clip file (or a folder of frames) -> api.EncodeResult, as `asmr encode` does it."""
    from ..io.media import read_image

    clip = read_clip(path, frames, opts.max_pixels)
    raster = read_image(path, opts.max_pixels) if clip is None else None
    return encode_any(raster, clip, opts)


def output_suffix(data: bytes, fmt: str | None = None) -> str:
    """The output extension of a decode: .mp4 for a clip, .png for an image (and for bytes
    that do not parse: the decode reports why), or what `--format` picks."""
    from ..api import holds_video
    from ..api.files import output_formats

    image_ext, clip_ext = output_formats(fmt)
    try:
        return clip_ext if holds_video(data) else image_ext
    except AsmrError:
        return image_ext


def output_parses(path: Path) -> bool:
    """Whether an existing output is a whole file of its kind (a batch skips those)."""
    path = Path(path)
    if not path.is_file():
        return False
    ext = path.suffix.lower()
    try:
        if ext == ".asmr":
            from ..api import loads

            loads(path.read_bytes())
            return True
        from ..io.video import CONTAINER_EXTS

        if ext in CONTAINER_EXTS:
            import av

            with av.open(str(path)) as container:
                return len(container.streams.video) > 0 and next(container.decode(video=0), None) is not None
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # anything that does not read back is redone
        return False


# -- bytes in, bytes out: for workers that share no filesystem with the caller ----------------

@contextmanager
def materialised(name: str, payload):
    """A temporary copy of an input, under its own file name (the extension picks the
    reader): `payload` is the file's bytes, or {frame name: bytes} for a folder of frames."""
    tmp = Path(tempfile.mkdtemp(prefix="asmr-job-"))
    try:
        path = tmp / name
        if isinstance(payload, dict):
            path.mkdir()
            for frame, data in payload.items():
                (path / frame).write_bytes(data)
        else:
            path.write_bytes(payload)
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def decoded_bytes(src: Path, suffix: str, opts: DecodeOptions) -> tuple[bytes, dict]:
    """api.files.decode_file into a temporary file with this extension, returned as bytes
    with the `--json` fields."""
    from ..api.files import decode_file

    tmp = Path(tempfile.mkdtemp(prefix="asmr-job-"))
    try:
        out = tmp / f"out{suffix}"
        kw = {} if opts.max_pixels is None else {"max_pixels": opts.max_pixels}
        stats = decode_file(src, out, True, opts.frames, opts.size, opts.scale, opts.width, opts.height,
                            opts.region, **kw)
        return out.read_bytes(), stats
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
