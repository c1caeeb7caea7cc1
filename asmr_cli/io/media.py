"""Reading and writing rasters: the only module that knows file formats.

Images come back as (H, W, C) uint8 or uint16 arrays, C in 1..4 (L, LA, RGB, RGBA), EXIF
orientation applied. 16-bit colour PNGs, which Pillow reduces to 8 bits, are decoded with
PyAV (FFmpeg's PNG decoder) and written with a small PNG writer.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from ..core.options import DEFAULT_MAX_PIXELS

# zlib level for PNG output: decoding writes a PNG on every call, and level 1 is several times
# faster than Pillow's 6 for files a little larger (docs/speed.md#decoding-without-torch)
PNG_COMPRESS_LEVEL = 1
IMAGE_WRITE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}
# names an image would have: an .asmr file written under one of these is a trap (`encode -o out.png`)
IMAGE_NAME_EXTS = IMAGE_WRITE_EXTS | {".bmp", ".gif", ".apng", ".avif", ".heic", ".heif", ".jxl", ".jp2",
                                      ".j2k", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".ico", ".exr", ".hdr"}
ANIMATED_IMAGE_FORMATS = {"GIF", "PNG", "WEBP"}  # Pillow formats whose animations are read as clips


@dataclass
class Raster:
    pixels: np.ndarray  # (H, W, C) uint8 or uint16
    bit_depth: int

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    def as_float(self) -> np.ndarray:
        """(C, H, W) float32 in [0, 1]."""
        peak = 65535.0 if self.bit_depth == 16 else 255.0
        return (self.pixels.astype(np.float32) / peak).transpose(2, 0, 1).copy()


def float_raster(out: np.ndarray, sizes: tuple[int, ...], bit_depth: int) -> Raster:
    """(C, *padded) float output on [0, 1] -> the integer raster (H, W, C) of its first `sizes`."""
    crop = out[(slice(None),) + tuple(slice(0, s) for s in sizes)]
    peak = 65535 if bit_depth == 16 else 255
    scaled = crop * peak  # one temporary, rounded and clipped in place
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, peak, out=scaled)
    ints = np.empty(scaled.shape[1:] + scaled.shape[:1], np.uint16 if bit_depth == 16 else np.uint8)
    np.copyto(ints, np.moveaxis(scaled, 0, -1), casting="unsafe")  # channels last, contiguous
    return Raster(ints, bit_depth)


def check_input_path(path: Path) -> None:
    if not path.exists():
        raise AsmrError(f"{path}: no such file")
    if path.is_dir():
        raise AsmrError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise AsmrError(f"{path}: empty file")


def animated_frames(path: Path) -> int:
    """How many frames an animated GIF, WebP or PNG (APNG) holds; 1 for anything else
    (a still image, another format, a file that cannot be opened: its reader says why)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # size limits are checked by the reader
            with Image.open(path) as im:
                if im.format in ANIMATED_IMAGE_FORMATS and getattr(im, "is_animated", False):
                    return int(im.n_frames)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        pass
    return 1


def _png_16bit_colour(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(29)
    return (len(head) == 29 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
            and head[24] == 16 and head[25] in (2, 6))


def _read_png16_av(path: Path) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            fmt = "rgba64le" if "a" in frame.format.name.replace("rgb", "") else "rgb48le"
            return frame.to_ndarray(format=fmt)
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise AsmrError(f"{path}: cannot decode 16-bit PNG ({exc})") from None


MULTI_IMAGE_FORMATS = {"TIFF": "a multi-page TIFF of {n} pages", "MPO": "an MPO of {n} images (a stereo pair or "
                       "a picture with its previews)"}


def _stderr_note(message: str) -> None:
    import sys

    sys.stderr.write(f"asmr: note: {message}\n")


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, note=_stderr_note) -> Raster:
    """The image; a multi-page TIFF or an MPO is read as its first page (the primary
    image), and `note` (default: a line on stderr) says so."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    check_input_path(path)
    previous = Image.MAX_IMAGE_PIXELS  # Pillow's limit is process-wide: this read's only, restored below
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # the check below is one line
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise AsmrError(f"{path}: {w}x{h} is over the {max_pixels}-pixel limit "
                                "(raise it with --max-pixels)")
            if im.format in ANIMATED_IMAGE_FORMATS and getattr(im, "is_animated", False):
                raise AsmrError(f"{path}: an animated {im.format} of {im.n_frames} frames, not a still image "
                                "(asmr encode takes it as a clip)")  # never one frame of it in silence
            pages = getattr(im, "n_frames", 1)
            if im.format in MULTI_IMAGE_FORMATS and pages > 1 and note is not None:
                what = MULTI_IMAGE_FORMATS[im.format].format(n=pages)
                note(f"{path}: {what}; asmr reads the first (save the page you want as its own file "
                     "to encode another)")
            if _png_16bit_colour(path):
                return Raster(_read_png16_av(path).astype(np.uint16), 16)
            im.load()
            im = ImageOps.exif_transpose(im)
            return _from_pil(im, path)
    except AsmrError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise AsmrError(f"{path}: image exceeds the {max_pixels}-pixel limit "
                        "(raise it with --max-pixels)") from None
    except UnidentifiedImageError:
        raise AsmrError(f"{path}: not a recognised image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise AsmrError(f"{path}: cannot read image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _from_pil(im, path: Path) -> Raster:
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return Raster(np.asarray(im, dtype=np.uint16)[..., None], 16)
    if mode == "I":
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:
            raise AsmrError(f"{path}: 32-bit integer images are not supported")
        return Raster(a.astype(np.uint16)[..., None], 16)
    if mode == "F":
        raise AsmrError(f"{path}: floating-point images are not supported")
    if mode == "1":
        im = im.convert("L")
    elif mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...
    a = np.asarray(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[..., None]
    return Raster(a, 8)


@contextmanager
def atomic_output(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed into place when the block
    succeeds, removed whatever happens (`suffix` keeps an extension for format sniffing)."""
    tmp = path.with_name(f".{path.name}.part{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise AsmrError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_png16(path: Path, pixels: np.ndarray) -> None:
    """16-bit PNG writer (Pillow cannot write 16-bit colour): filter 0 rows, zlib."""
    h, w, c = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = pixels.astype(">u2").reshape(h, w * c)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6))
                 + chunk(b"IEND", b""))


def check_image_output(path: Path) -> str:
    """The output's extension, lower case, if an image can be written to it."""
    ext = Path(path).suffix.lower()
    if ext not in IMAGE_WRITE_EXTS:
        raise AsmrError(f"{path}: unsupported output type {ext or '(none)'} "
                        f"(use one of {', '.join(sorted(IMAGE_WRITE_EXTS))})")
    return ext


def write_png8(path: Path, pixels: np.ndarray) -> None:
    """8-bit PNG writer without Pillow: every row with filter 2 (Up: each byte less the byte
    above, mod 256), zlib at PNG_COMPRESS_LEVEL. On decoded pictures its files are as small
    as Pillow's (adaptive filters, level 1) and it takes half the time, with no Pillow
    import (docs/speed.md, issue 24)."""
    h, w, c = pixels.shape
    rows = np.ascontiguousarray(pixels, np.uint8).reshape(h, w * c)
    filtered = np.empty((h, w * c + 1), np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: mod 256

    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        for tag, data in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(filtered, PNG_COMPRESS_LEVEL)), (b"IEND", b"")):
            fh.write(struct.pack(">I", len(data)) + tag)
            fh.write(data)
            fh.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(tag))))


def write_image(path: Path, raster: Raster, quality: int = 95) -> None:
    """Write by extension; the file appears atomically (temporary name, then rename)."""
    path = Path(path)
    ext = check_image_output(path)
    px = raster.pixels
    with atomic_output(path) as tmp:
        if ext == ".png":
            (_write_png16 if raster.bit_depth == 16 else write_png8)(tmp, px)
        else:
            from PIL import Image

            if raster.bit_depth == 16:  # formats without 16-bit support here: reduce
                px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
            if ext in (".jpg", ".jpeg") and px.shape[2] in (2, 4):
                px = px[..., :-1]  # JPEG has no alpha
            im = Image.fromarray(px[..., 0] if px.shape[2] == 1 else px,
                                 mode={1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[px.shape[2]])
            fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}[ext]
            kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
            im.save(tmp, format=fmt, **kwargs)
