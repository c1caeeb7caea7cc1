"""`asmr compare`: asmr against the codecs a person uses today, on their own image, at the
same file size. asmr encodes first; JPEG, WebP and AVIF (Pillow) then each get the quality
whose stored file is the largest not above asmr's; every codec's bytes, bpp, PSNR, SSIM and
encode / decode seconds go into one table, and the same crop of the original and of each
decoded image goes side by side, labelled, into one picture (`picture`).

    from asmr_cli.api.compare import compare_image
    from asmr_cli.api.compare_picture import picture
    result = compare_image(Path("photo.png"), EncodeOptions(bpp=0.5))
    picture(result).save("compare.png")

Clips are compared in compare_clips.py, the picture and the plot drawn in compare_picture.py.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from ..core.metrics import psnr, ssim
from ..core.options import EncodeOptions
from ..io.media import Raster, read_image
from .images import encode_raster, render_image

SIZE_CLOSE = 0.05  # a codec's size is "matched" within 5% below asmr's
IMAGE_CODECS = ("jpeg", "webp", "avif")
CLIP_CODECS = ("x264", "x265", "vp9")
CODEC_NAMES = {"asmr": "asmr", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "x264": "x264", "x265": "x265",
               "vp9": "VP9"}
BITRATE_TRIES = 10  # average-bitrate encodes tried where the crf steps miss asmr's size by more than SIZE_CLOSE
# Pillow's save options besides the quality: each codec at its own best effort
PIL_OPTIONS = {"jpeg": ("JPEG", {"optimize": True}), "webp": ("WEBP", {"method": 6}),
               "avif": ("AVIF", {"speed": 4})}
QUALITY_RANGE = {"jpeg": (1, 100), "webp": (0, 100), "avif": (0, 100)}
CROP_SIDE = 128  # the default crop: at most this, and 3/4 of the image's shorter side
LABEL_HEIGHT = 40
GAP = 8


@dataclass
class CodecResult:
    """One codec's row. `bytes` None: the codec did not run (`note` says why). `gap` is
    bytes / target - 1 (0 or negative when at or below asmr's size)."""
    codec: str
    setting: str = ""
    bytes: int | None = None
    bpp: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    encode_seconds: float | None = None
    decode_seconds: float | None = None
    gap: float | None = None
    note: str | None = None
    decoded: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return CODEC_NAMES.get(self.codec, self.codec)

    def as_json(self) -> dict:
        return {"codec": self.codec, "setting": self.setting, "bytes": self.bytes, "bpp": self.bpp,
                "psnr": self.psnr, "ssim": self.ssim, "encode_seconds": self.encode_seconds,
                "decode_seconds": self.decode_seconds, "size_gap": self.gap, "note": self.note}


@dataclass
class Comparison:
    input: str
    width: int
    height: int
    target_bytes: int  # asmr's file size: every other codec's ceiling
    original: np.ndarray = field(repr=False)  # (H, W, C) uint8, the reference of every row
    results: list[CodecResult]
    crop: tuple[int, int, int, int]  # x, y, width, height
    notes: list[str] = field(default_factory=list)
    frames: int | None = None  # a clip: its frame count, and the frame the picture shows
    frame: int | None = None

    def as_json(self) -> dict:
        clip = {} if self.frames is None else {"frames": self.frames, "frame": self.frame}
        return {"input": self.input, "width": self.width, "height": self.height, **clip,
                "target_bytes": self.target_bytes, "crop": list(self.crop), "notes": self.notes,
                "codecs": [r.as_json() for r in self.results]}


# -- the reference every codec is measured against --------------------------------------------

def comparable(raster: Raster) -> tuple[Raster, list[str]]:
    """8-bit grey or RGB, what every codec here stores: alpha dropped, 16 bits reduced
    (each with a note for the table)."""
    notes = []
    px = raster.pixels
    if raster.bit_depth == 16:
        px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
        notes.append("16-bit input compared at 8 bits")
    if px.shape[2] in (2, 4):
        px = px[..., :-1]
        notes.append("alpha dropped (JPEG has none)")
    return Raster(np.ascontiguousarray(px), 8), notes


def _measure(row: CodecResult, original: np.ndarray, decoded: np.ndarray, n_pixels: int) -> None:
    row.bpp = round(8 * row.bytes / n_pixels, 4)
    row.psnr = round(psnr(original, decoded, 255.0), 3)
    row.ssim = round(ssim(original, decoded, 255.0), 4)
    row.decoded = decoded


# -- asmr --------------------------------------------------------------------------------------

def setting_label(opts: EncodeOptions) -> str:
    setting = opts.preset
    if opts.bpp is not None:
        setting += f", --bpp {opts.bpp:g}"
    elif opts.size is not None:
        setting += f", --size {opts.size}"
    elif opts.quality is not None:
        setting += f", -q {opts.quality:g}"
    return setting


def _asmr_row(raster: Raster, opts: EncodeOptions, progress) -> CodecResult:
    start = time.perf_counter()
    result = encode_raster(raster, opts, progress)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = render_image(result.data, max_pixels=opts.max_pixels)
    decode_seconds = time.perf_counter() - start
    row = CodecResult("asmr", setting_label(opts), len(result.data), encode_seconds=round(encode_seconds, 3),
                      decode_seconds=round(decode_seconds, 4), gap=0.0)
    _measure(row, raster.pixels, decoded.pixels, raster.width * raster.height)
    return row


# -- Pillow's codecs ----------------------------------------------------------------------------

def codec_available(codec: str) -> bool:
    """Whether this Pillow can write the codec (AVIF needs Pillow 11.3+ built with libavif)."""
    import warnings

    from PIL import features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unknown feature name warns on older Pillow
        try:
            return bool(features.check({"jpeg": "jpg", "webp": "webp", "avif": "avif"}[codec]))
        except (ValueError, KeyError):
            return False


def _pil_image(raster: Raster):
    from PIL import Image

    px = raster.pixels
    return Image.fromarray(px[..., 0] if px.shape[2] == 1 else px, mode="L" if px.shape[2] == 1 else "RGB")


def _pil_encode(image, codec: str, quality: int) -> bytes:
    fmt, kwargs = PIL_OPTIONS[codec]
    buf = io.BytesIO()
    image.save(buf, format=fmt, quality=quality, **kwargs)
    return buf.getvalue()


def _pil_decode(data: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        a = np.asarray(im, dtype=np.uint8)
    return a[..., None] if a.ndim == 2 else a


def search_quality(size_at: Callable[[int], int], target: int, lo: int, hi: int) -> tuple[int, int]:
    """(quality, size): the largest stored size not above `target` over the integer
    qualities lo..hi (size rises with quality, nearly: a bisection, then the neighbours
    checked); the lowest quality and its size when even that is above the target."""
    sizes: dict[int, int] = {}

    def size(q: int) -> int:
        if q not in sizes:
            sizes[q] = size_at(q)
        return sizes[q]

    if size(lo) > target:
        return lo, sizes[lo]
    a, b = lo, hi  # size(a) <= target; find the last such quality
    if size(b) <= target:
        a = b
    while b - a > 1:
        m = (a + b) // 2
        if size(m) <= target:
            a = m
        else:
            b = m
    for q in range(max(lo, a - 2), min(hi, a + 3) + 1):  # not quite monotone: the neighbours too
        size(q)
    fits = [(s, q) for q, s in sizes.items() if s <= target]
    s, q = max(fits)
    return q, s


def _pil_row(raster: Raster, codec: str, target: int) -> CodecResult:
    if not codec_available(codec):
        return CodecResult(codec, note=f"not available: this Pillow has no {CODEC_NAMES[codec]} encoder")
    image = _pil_image(raster)
    lo, hi = QUALITY_RANGE[codec]
    quality, _ = search_quality(lambda q: len(_pil_encode(image, codec, q)), target, lo, hi)
    start = time.perf_counter()
    data = _pil_encode(image, codec, quality)
    encode_seconds = time.perf_counter() - start
    start = time.perf_counter()
    decoded = _pil_decode(data, raster.channels)
    decode_seconds = time.perf_counter() - start
    gap = len(data) / target - 1
    row = CodecResult(codec, f"quality {quality}", len(data), encode_seconds=round(encode_seconds, 4),
                      decode_seconds=round(decode_seconds, 4), gap=round(gap, 4))
    if gap > 0:
        row.note = f"{gap:.0%} above asmr's size at its lowest quality"
    elif gap < -SIZE_CLOSE:
        row.note = f"{-gap:.0%} below asmr's size: the next quality step is above it"
    _measure(row, raster.pixels, decoded, raster.width * raster.height)
    return row


# -- the crop ------------------------------------------------------------------------------------

def default_crop_side(width: int, height: int) -> int:
    return max(1, min(CROP_SIDE, (3 * min(width, height)) // 4))


def detailed_crop(pixels: np.ndarray, width: int | None = None, height: int | None = None,
                  ) -> tuple[int, int, int, int]:
    """The (x, y, w, h) window with the most detail: the largest sum of luma gradient
    magnitudes, over windows on an 8-pixel grid (the whole image when it is no larger)."""
    H, W = pixels.shape[:2]
    side = default_crop_side(W, H)
    w, h = min(width or side, W), min(height or side, H)
    luma = pixels[..., :3].astype(np.float64).mean(axis=2)
    energy = np.zeros((H, W))
    energy[:, 1:] += np.abs(np.diff(luma, axis=1))
    energy[1:, :] += np.abs(np.diff(luma, axis=0))
    s = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    ys = np.arange(0, H - h + 1, 8)
    xs = np.arange(0, W - w + 1, 8)
    ys = np.unique(np.append(ys, H - h))
    xs = np.unique(np.append(xs, W - w))
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    total = s[Y + h, X + w] - s[Y, X + w] - s[Y + h, X] + s[Y, X]
    iy, ix = np.unravel_index(int(np.argmax(total)), total.shape)
    return int(xs[ix]), int(ys[iy]), int(w), int(h)


def check_crop(crop: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = crop
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
        raise AsmrError(f"--crop {x},{y},{w},{h}: outside the {width}x{height} image")
    return crop


# -- the comparison -------------------------------------------------------------------------------

def compare_image(path: Path, opts: EncodeOptions | None = None, codecs: tuple[str, ...] = IMAGE_CODECS,
                  crop: tuple[int, int, int, int] | None = None, progress=None) -> Comparison:
    """asmr with `opts`, then each of `codecs` at the largest size not above asmr's."""
    opts = opts or EncodeOptions()
    unknown = [c for c in codecs if c not in IMAGE_CODECS]
    if unknown:
        raise AsmrError(f"--codecs {','.join(unknown)}: expected some of {','.join(IMAGE_CODECS)}")
    raster, notes = comparable(read_image(Path(path), opts.max_pixels))
    if crop is not None:
        crop = check_crop(crop, raster.width, raster.height)
    rows = [_asmr_row(raster, opts, progress)]
    target = rows[0].bytes
    rows += [_pil_row(raster, c, target) for c in codecs]
    crop = crop or detailed_crop(raster.pixels)
    return Comparison(str(path), raster.width, raster.height, target, raster.pixels, rows, crop, notes)


# -- the rate-distortion sweep (--rd) ----------------------------------------------------------------

RD_BPPS = (0.25, 0.5, 0.75, 1.0)


def check_plotting() -> None:
    """matplotlib draws the plot (the `bench` extra): refused before any encode without it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise AsmrError("--rd draws with matplotlib: pip install 'asmr[bench]'") from None


def rate_distortion(path: Path, opts: EncodeOptions | None = None, bpps: tuple[float, ...] = RD_BPPS,
                    clip: bool = False, **kwargs) -> list[Comparison]:
    """compare_image (or compare_clip) once per asmr rate in `bpps` (--bpp; --size and -q
    are replaced by it)."""
    from dataclasses import replace

    opts = opts or EncodeOptions()
    from .compare_clips import compare_clip

    run = compare_clip if clip else compare_image
    return [run(path, replace(opts, bpp=b, size=None, quality=None), **kwargs) for b in bpps]
