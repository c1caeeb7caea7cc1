"""`asmr compare`: the typer command and its printing; the comparison is api/compare.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..core.errors import AsmrError
from ..io.files import names_folder, output_in, refuse_overwrite
from ..io.media import DEFAULT_MAX_PIXELS
from .console import encode_progress, fail, print_json


def compare(
    input: Path = typer.Argument(..., help="Image (PNG, JPEG, WebP, TIFF, ...) or clip (MP4, WebM, Y4M, ...) to "
                                           "compare on."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Write the side-by-side picture here (.png .webp .jpg .tif, or a "
                                              "folder/ for NAME-compare.png): the same crop of the original and "
                                              "of each codec, labelled."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="asmr's target bits per pixel (within 5%)."),
    size: Optional[int] = typer.Option(None, "--size", help="asmr's largest file size in bytes."),
    quality: Optional[float] = typer.Option(None, "-q", "--quality", help="asmr's quality 0-100 (default 75)."),
    preset: str = typer.Option("default", "--preset", "-p", help="asmr's effort: fast | default | high."),
    iters: Optional[int] = typer.Option(None, "--iters", help="asmr's training steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop asmr's training after about this "
                                                                          "many seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed of asmr's encode."),
    codecs: Optional[str] = typer.Option(None, "--codecs", help="The codecs to compare with, comma-separated "
                                                                "(default: jpeg,webp,avif for an image, "
                                                                "x264,x265,vp9 for a clip)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Clip: compare frames START:END only."),
    frame: Optional[int] = typer.Option(None, "--frame", help="Clip: the frame the picture shows (default: the "
                                                              "middle one)."),
    crop: Optional[str] = typer.Option(None, "--crop", help="The picture's crop X,Y,WIDTH,HEIGHT (default: the "
                                                            "region with the most detail)."),
    rd: Optional[Path] = typer.Option(None, "--rd", help="Sweep asmr's rate over --rd-bpps instead of one rate, "
                                                         "print a table per rate and write the rate-distortion "
                                                         "plot (PSNR against bpp, every codec) here (.png)."),
    rd_bpps: str = typer.Option("0.25,0.5,0.75,1", "--rd-bpps", help="The rates of --rd, in bits per pixel."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger inputs."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the picture or the plot."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout instead of the table."),
) -> None:
    """Encode an image (or clip) with asmr, then JPEG, WebP and AVIF (x264, x265, VP9) at the same size, and show
    the trade-off: one table, and with -o the same crop side by side."""
    from ..api import EncodeOptions
    from ..api.compare import CLIP_CODECS, IMAGE_CODECS, check_plotting, compare_image, rate_distortion
    from ..api.compare_clips import compare_clip
    from ..api.compare_picture import picture_layout, write_picture, write_rd_plot
    from ..io.clips import parse_frames
    from ..io.media import check_image_output

    opts = EncodeOptions(preset=preset, quality=quality, bpp=bpp, size=size, iters=iters, time_limit=time_limit,
                         seed=seed, max_pixels=max_pixels)
    try:
        if output is not None:
            output = output_in(input, output, "-compare.png") if names_folder(output) else Path(output)
        for path in (output, rd):  # the picture's and the plot's names are checked before the encode
            if path is not None:
                check_image_output(path)
                refuse_overwrite(path, force)
        if rd is not None:
            if output is not None:
                raise AsmrError("--rd writes a plot; -o writes one rate's picture: run them apart")
            bpps = _parse_bpps(rd_bpps)  # a bad list is the user's error, with or without matplotlib
            check_plotting()
        box = _parse_crop(crop)
        is_clip = _holds_clip_input(input)
        names = tuple(c.strip().lower() for c in codecs.split(",") if c.strip()) if codecs is not None else (
            CLIP_CODECS if is_clip else IMAGE_CODECS)
        if not is_clip and (frames is not None or frame is not None):
            raise AsmrError(f"{input}: --frames and --frame are for a clip; this is an image")
        kw = dict(codecs=names, crop=box)
        if is_clip:
            kw.update(frame=frame, frames=parse_frames(frames))
        with encode_progress() as progress:
            kw.update(progress=progress)
            if rd is not None:
                sweep = rate_distortion(input, opts, bpps, clip=is_clip, **kw)
            else:
                result = (compare_clip if is_clip else compare_image)(input, opts, **kw)
        if rd is not None:
            write_rd_plot(sweep, rd)
        elif output is not None:
            write_picture(result, output)
    except AsmrError as exc:
        fail(exc)
        return
    if rd is not None:
        if as_json:
            print_json({"input": str(input), "plot": str(rd), "rates": [r.as_json() for r in sweep]})
            return
        for r in sweep:
            _print_compare(r, None)
        Console(highlight=False).print(f"rate-distortion plot: {rd}", markup=False)
        return
    if as_json:
        obj = result.as_json()
        if output is not None:
            obj["picture"] = {"path": str(output), **picture_layout(result)}
        print_json(obj)
        return
    _print_compare(result, output)


def _parse_bpps(text: str) -> tuple[float, ...]:
    try:
        bpps = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        bpps = ()
    if not bpps or any(not b > 0 for b in bpps):
        raise AsmrError(f"--rd-bpps {text!r}: expected positive rates, e.g. 0.25,0.5,1")
    return bpps


def _parse_crop(crop: Optional[str]):
    from ..io.sizes import parse_region

    if crop is None:
        return None
    try:
        return parse_region(crop)
    except AsmrError as exc:
        raise AsmrError(str(exc).replace("--region", "--crop", 1)) from None


def _holds_clip_input(path: Path) -> bool:
    from ..io.video import is_video_path

    return path.exists() and is_video_path(path)


def _print_compare(result, picture: Optional[Path]) -> None:
    from rich.table import Table

    shape = f"{result.width}x{result.height}" + (f", {result.frames} frames" if result.frames is not None else "")
    table = Table(title=f"{result.input}: {shape}, every codec at most {result.target_bytes:,} bytes (asmr's size)",
                  title_justify="left")
    for col in ("codec", "setting", "bytes", "bpp", "PSNR dB", "SSIM", "encode s", "decode s"):
        table.add_column(col, justify="left" if col in ("codec", "setting") else "right")
    notes = list(result.notes)
    for r in result.results:
        if r.bytes is None:
            table.add_row(r.name, "-", "-", "-", "-", "-", "-", "-")
        else:
            table.add_row(r.name, r.setting, f"{r.bytes:,}", f"{r.bpp:.3f}", f"{r.psnr:.2f}", f"{r.ssim:.4f}",
                          f"{r.encode_seconds:.3f}", f"{r.decode_seconds:.4f}")
        if r.note:
            notes.append(f"{r.name}: {r.note}")
    out = Console(highlight=False)
    out.print(table, markup=False)
    for n in notes:
        out.print(f"note: {n}", markup=False)
    if picture is not None:
        x, y, w, h = result.crop
        at = f"frame {result.frame}, " if result.frame is not None else ""
        out.print(f"picture: {picture} ({at}crop {x},{y},{w},{h})", markup=False)
