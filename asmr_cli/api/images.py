"""Images: encode a raster to .asmr bytes, render them back at any size or region, stats."""

from __future__ import annotations

from pathlib import Path

from ..container.file import KIND_COLLECTION, KIND_IMAGE
from ..core.errors import AsmrError
from ..core.metrics import psnr, ssim
from ..core.options import DEFAULT_MAX_PIXELS, EncodeOptions, EncodeResult
from ..io.media import Raster, float_raster, read_image
from ..io.sizes import check_region, output_size
from .formats import family_of, image_encoder, loads


def encode_raster(raster: Raster, opts: EncodeOptions | None = None, progress=None) -> EncodeResult:
    opts = opts or EncodeOptions()
    return image_encoder(opts).encode_image(raster, opts, progress)


def render_image(data: bytes, size: tuple[int, int] | None = None, scale: float | None = None,
                 width: int | None = None, height: int | None = None,
                 region: tuple[int, int, int, int] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Raster:
    """Decode at any resolution -- size (width, height), scale, or width / height with the
    aspect kept -- and, with region (x, y, width, height) in output pixels, only that part,
    at a cost that follows the region (docs/any-resolution.md); on the native grid, a
    region is the exact crop of the whole."""
    f = loads(data)
    family = family_of(f)
    if f.header.kind == KIND_COLLECTION:
        raise AsmrError("this file holds a collection: decode a member with --member NAME, or every member "
                        "into a folder (-o out/)")
    if f.header.kind != KIND_IMAGE:
        raise AsmrError("this file holds a video: decode it to .mp4, .y4m, .gif or a folder")
    h, w = f.header.sizes
    ow, oh = output_size(w, h, size, scale, width, height)
    x, y, rw, rh = check_region(region, ow, oh, max_pixels)
    family.check_decodable(f.header, max_pixels)
    out = family.render_image(f, (oh, ow), (y, x), (y + rh, x + rw))
    return float_raster(out, (rh, rw), f.header.bit_depth)


def decode_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Raster:
    """The native-size image, through the same path as `asmr decode`."""
    return render_image(data, max_pixels=max_pixels)


def describe(data: bytes) -> dict:
    """The stats that follow from the header, the file size and the format version alone."""
    f = loads(data)
    family = family_of(f)
    return family.describe(f.header, len(data), f.version)


def read_stats(data: bytes, ref: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    stats = describe(data)
    if ref is not None:
        original = read_image(Path(ref), max_pixels)
        decoded = decode_bytes(data, max_pixels)
        if original.pixels.shape != decoded.pixels.shape:
            raise AsmrError(f"--ref {ref}: {original.width}x{original.height}x{original.channels} "
                            f"does not match the file's {decoded.width}x{decoded.height}x{decoded.channels}")
        peak = 65535.0 if original.bit_depth == 16 else 255.0
        stats.update(psnr=round(psnr(original.pixels, decoded.pixels, peak), 3),
                     ssim=round(ssim(original.pixels, decoded.pixels, peak), 4))
    return stats
