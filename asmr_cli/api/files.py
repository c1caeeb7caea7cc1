"""`asmr decode`: an .asmr file to an image or a clip on disk. The one decode function
behind both entries (the typer command in `cli` and the light path in `entry`); it
imports neither typer nor torch. Everything about the output is checked before any
rendering, so a bad output path fails at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..core.errors import AsmrError
from ..io.files import output_in, output_path, read_input, refuse_folder_overwrite, refuse_overwrite
from ..io.media import DEFAULT_MAX_PIXELS


def decode_file(src: Path, out: str | Path | None = None, force: bool = False, frames: str | None = None,
                size: str | None = None, scale: float | None = None, width: int | None = None,
                height: int | None = None, region: str | None = None,
                max_pixels: int = DEFAULT_MAX_PIXELS, fmt: str | None = None, member: str | None = None) -> dict:
    """Decode `src` to `out` (default: beside it, .png for an image, .mp4 for a clip, or
    what `fmt` picks: output_formats) and return the summary `--json` prints. `size` and
    `region` are the command line's strings; `frames` (START:END) applies to clips. An
    image's `out` naming a folder (`dir/`) gets the default name inside it; a clip's is a
    folder of frames; a collection (format 5) decodes `member` to an image, or with no
    member every member into the folder `out` (default: beside it, named after it).
    Raises AsmrError."""
    from ..io.sizes import parse_region, parse_size
    from .clips import holds_video

    start = time.perf_counter()
    src = Path(src)
    folder = isinstance(out, str) and out.endswith(("/", os.sep))  # Path() would drop the slash
    image_ext, clip_ext = output_formats(fmt)
    resize = dict(size=parse_size(size) if size is not None else None, scale=scale, width=width,
                  height=height, region=parse_region(region) if region is not None else None)
    data = read_input(src)
    from .collections import holds_collection

    if holds_collection(data):
        return _decode_collection(data, src, Path(out) if out is not None else None, force, member, resize,
                                  max_pixels, start)
    if member is not None:
        raise AsmrError("--member: this file is not a collection")
    if holds_video(data):
        return _decode_clip(data, src, Path(out) if out is not None else None, force, frames, resize, start, folder,
                            clip_ext, max_pixels)
    from ..io.media import check_image_output, write_image
    from .images import render_image

    out = output_in(src, out, image_ext)
    refuse_overwrite(out, force)
    check_image_output(out)
    raster = render_image(data, **resize, max_pixels=max_pixels)
    write_image(out, raster)
    return {"output": str(out), "width": raster.width, "height": raster.height,
            "decode_seconds": round(time.perf_counter() - start, 4)}


def output_formats(fmt: str | None) -> tuple[str, str]:
    """`--format`'s (image extension, clip extension): a comma-separated list whose first
    image format is the images' and first video format the clips' (png and webp are both:
    a clip in them is an animated PNG or WebP); .png and .mp4 where none is given."""
    if not fmt:
        return ".png", ".mp4"
    from ..io.media import IMAGE_WRITE_EXTS
    from ..io.video import VIDEO_WRITE_EXTS

    image_ext = clip_ext = None
    for item in (fmt or "").split(","):
        ext = "." + item.strip().lower().lstrip(".")
        if ext == ".":
            continue
        if ext not in IMAGE_WRITE_EXTS and ext not in VIDEO_WRITE_EXTS:
            formats = sorted(e.lstrip(".") for e in IMAGE_WRITE_EXTS | VIDEO_WRITE_EXTS)
            raise AsmrError(f"--format {item.strip()}: expected one of {', '.join(formats)}")
        if ext in IMAGE_WRITE_EXTS and image_ext is None:
            image_ext = ext
        if ext in VIDEO_WRITE_EXTS and clip_ext is None:
            clip_ext = ext
    return image_ext or ".png", clip_ext or ".mp4"


def _decode_clip(data: bytes, src: Path, out: Path | None, force: bool, frames: str | None, resize: dict,
                 start: float, folder: bool = False, suffix: str = ".mp4",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    from ..io.clips import parse_frames
    from ..io.video import FRAME_EXTS, is_frame_folder, is_video_output, video_outputs, write_video
    from .clips import check_frame_pixels, decode_video, render_clip

    out = output_path(src, out, suffix)
    if not is_video_output(out, folder):
        raise AsmrError(f"{out}: this file holds a video; write it to {video_outputs()}")
    if is_frame_folder(out, folder):
        refuse_folder_overwrite(out, force, FRAME_EXTS)
    else:
        refuse_overwrite(out, force)
    selected = parse_frames(frames)
    check_frame_pixels(data, max_pixels)
    if any(v is not None for v in resize.values()):
        clip = render_clip(data, selected, **resize, frame_pixels=max_pixels)
    else:
        clip = decode_video(data, selected)
    write_video(out, clip, folder)
    return {"output": str(out), "frames": clip.count, "width": clip.width, "height": clip.height,
            "fps": float(clip.fps), "decode_seconds": round(time.perf_counter() - start, 4)}


def _decode_collection(data: bytes, src: Path, out: Path | None, force: bool, member: str | None, resize: dict,
                       max_pixels: int, start: float) -> dict:
    from ..io.media import check_image_output, write_image
    from .collections import decode_all, decode_member

    if member is None:
        if any(v is not None for v in resize.values()):
            raise AsmrError("--size, --scale, --width, --height and --region apply to one member (--member NAME)")
        root = out if out is not None else src.with_suffix("")
        if (root.exists() and not root.is_dir()) or root.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".tif",
                                                                            ".tiff", ".bmp", ".gif"):
            raise AsmrError(f"{root}: a collection decodes into a folder (give -o out/, or --member NAME)")
        return decode_all(data, root, force, max_pixels)
    out = output_path(src, out, ".png") if out is not None else src.parent / (Path(member).stem + ".png")
    refuse_overwrite(out, force)
    check_image_output(out)
    raster = decode_member(data, member, **resize, max_pixels=max_pixels)
    write_image(out, raster)
    return {"output": str(out), "member": member, "width": raster.width, "height": raster.height,
            "decode_seconds": round(time.perf_counter() - start, 4)}
