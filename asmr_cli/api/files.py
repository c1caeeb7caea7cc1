"""`asmr decode`: an .asmr file to an image or a clip on disk. The one decode function
behind both entries (the typer command in `cli` and the light path in `entry`); it
imports neither typer nor torch. Everything about the output is checked before any
rendering, so a bad output path fails at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.errors import AsmrError
from ..io.files import output_path, read_input, refuse_folder_overwrite, refuse_overwrite
from ..io.media import DEFAULT_MAX_PIXELS


def decode_file(src: Path, out: str | Path | None = None, force: bool = False, frames: str | None = None,
                size: str | None = None, scale: float | None = None, width: int | None = None,
                height: int | None = None, region: str | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Decode `src` to `out` (default: beside it, .png for an image, .mp4 for a clip) and
    return the summary `--json` prints. `size` and `region` are the command line's strings;
    `frames` (START:END) applies to clips. Raises AsmrError."""
    from ..io.sizes import parse_region, parse_size
    from .clips import holds_video

    start = time.perf_counter()
    src = Path(src)
    folder = isinstance(out, str) and out.endswith(("/", os.sep))  # Path() would drop the slash
    out = Path(out) if out is not None else None
    resize = dict(size=parse_size(size) if size is not None else None, scale=scale, width=width,
                  height=height, region=parse_region(region) if region is not None else None)
    data = read_input(src)
    if holds_video(data):
        return _decode_clip(data, src, out, force, frames, resize, start, folder)
    from ..io.media import check_image_output, write_image
    from .images import render_image

    out = output_path(src, out, ".png")
    refuse_overwrite(out, force)
    check_image_output(out)
    raster = render_image(data, **resize, max_pixels=max_pixels)
    write_image(out, raster)
    return {"output": str(out), "width": raster.width, "height": raster.height,
            "decode_seconds": round(time.perf_counter() - start, 4)}


def _decode_clip(data: bytes, src: Path, out: Path | None, force: bool, frames: str | None, resize: dict,
                 start: float, folder: bool = False) -> dict:
    from ..io.clips import parse_frames
    from ..io.video import FRAME_EXTS, is_frame_folder, is_video_output, video_outputs, write_video
    from .clips import decode_video, render_clip

    out = output_path(src, out, ".mp4")
    if not is_video_output(out, folder):
        raise AsmrError(f"{out}: this file holds a video; write it to {video_outputs()}")
    if is_frame_folder(out, folder):
        refuse_folder_overwrite(out, force, FRAME_EXTS)
    else:
        refuse_overwrite(out, force)
    selected = parse_frames(frames)
    if any(v is not None for v in resize.values()):
        clip = render_clip(data, selected, **resize)
    else:
        clip = decode_video(data, selected)
    write_video(out, clip, folder)
    return {"output": str(out), "frames": clip.count, "width": clip.width, "height": clip.height,
            "fps": float(clip.fps), "decode_seconds": round(time.perf_counter() - start, 4)}
