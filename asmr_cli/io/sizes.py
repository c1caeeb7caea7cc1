"""Output sizes of a decode: the command line's `--size WIDTHxHEIGHT` and `--region X,Y,W,H`, and
the checked output size and region every family renders."""

from __future__ import annotations

import math
import re

from ..core.errors import AsmrError


def parse_size(text: str) -> tuple[int, int]:
    """`1536x1024` -> (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise AsmrError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1536x1024")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise AsmrError(f"--size {text}: width and height must be at least 1")
    return w, h


def parse_region(text: str) -> tuple[int, int, int, int]:
    """`X,Y,W,H` -> (x, y, width, height), in output pixels."""
    parts = (text or "").split(",")
    try:
        x, y, w, h = (int(v) for v in parts)
    except ValueError:
        raise AsmrError(f"--region {text!r}: expected X,Y,WIDTH,HEIGHT, e.g. 0,0,256,256") from None
    if x < 0 or y < 0:
        raise AsmrError(f"--region {text}: X and Y must be 0 or more")
    if w < 1 or h < 1:
        raise AsmrError(f"--region {text}: width and height must be at least 1")
    return x, y, w, h


MAX_OUTPUT_SIDE = 1 << 20  # per axis, like the container's size fields
MAX_RENDER_PIXELS = 256_000_000  # pixels actually rendered (the region, or the whole output)


def output_size(width: int, height: int, size: tuple[int, int] | None = None, scale: float | None = None,
                out_width: int | None = None, out_height: int | None = None) -> tuple[int, int]:
    """The decoded (width, height) from at most one way of asking; aspect kept for a single
    --width or --height; --width with --height is an exact size."""
    if size is not None and (scale is not None or out_width is not None or out_height is not None):
        raise AsmrError("--size cannot be combined with --scale, --width or --height")
    if scale is not None and (out_width is not None or out_height is not None):
        raise AsmrError("--scale cannot be combined with --width or --height")
    if size is not None:
        w, h = size
    elif scale is not None:
        if not math.isfinite(scale) or scale <= 0:
            raise AsmrError(f"--scale {scale}: expected a positive number")
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
    elif out_width is not None or out_height is not None:
        for name, v in (("--width", out_width), ("--height", out_height)):
            if v is not None and v < 1:
                raise AsmrError(f"{name} {v}: expected at least 1")
        if out_width is not None and out_height is not None:
            w, h = out_width, out_height
        elif out_width is not None:
            w, h = out_width, max(1, round(height * out_width / width))
        else:
            assert out_height is not None
            w, h = max(1, round(width * out_height / height)), out_height
    else:
        w, h = width, height
    if w < 1 or h < 1:
        raise AsmrError(f"output size {w}x{h}: width and height must be at least 1")
    if w > MAX_OUTPUT_SIDE or h > MAX_OUTPUT_SIDE:
        raise AsmrError(f"output size {w}x{h}: at most {MAX_OUTPUT_SIDE} pixels per side")
    return int(w), int(h)


def check_region(region: tuple[int, int, int, int] | None, width: int, height: int,
                 max_pixels: int = MAX_RENDER_PIXELS) -> tuple[int, int, int, int]:
    """The region inside a (width x height) output; the whole output when None. At most
    max_pixels are rendered: a zoomed output can be huge, its region need not be."""
    if region is None:
        region = (0, 0, width, height)
    x, y, w, h = region
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise AsmrError(f"--region {x},{y},{w},{h}: expected X,Y >= 0 and WIDTH,HEIGHT >= 1")
    if x + w > width or y + h > height:
        raise AsmrError(f"--region {x},{y},{w},{h}: outside the {width}x{height} output")
    if w * h > max_pixels:
        raise AsmrError(f"{w}x{h} = {w * h} pixels to render, over the {max_pixels}-pixel limit "
                        "(render a --region, or raise --max-pixels)")
    return region
