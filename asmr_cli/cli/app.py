"""`asmr` command line: parse, call the codec, render with rich. No maths here."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .. import __version__
from ..core.errors import AsmrError
from ..io.files import output_in, output_path, read_input, refuse_overwrite
from ..io.media import DEFAULT_MAX_PIXELS
from . import console
from .compare import compare
from .console import encode_progress, encode_summary, err, fail, print_json, refuse_media_name, write_atomic
from .many import encode_collection_command, is_batch, run_batch_command

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress images and video clips into small .asmr files (neural representations), "
                       "decode them at any size, and compare with JPEG, WebP and AVIF on your own image.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asmr {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    console.debug = debug


# the path checks are shared with the light decode entry (asmr_cli.files, no typer there)
_output_path, _refuse_overwrite = output_path, refuse_overwrite


_read_file = read_input


@app.command()
def encode(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...",
                                        help="Image (PNG, JPEG, WebP, TIFF, ...) or video (MP4, MOV, MKV, WebM, "
                                             "GIF, Y4M, a folder of numbered frames) to compress. Several inputs, "
                                             "a glob or --recursive make a batch (docs/batch.md)."),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="Output .asmr (default: next to the input), or a folder/ to write it "
                                              "in; for a batch, a folder that mirrors the inputs' tree."),
    preset: str = typer.Option("default", "--preset", "-p", help="Effort: fast | default | high."),
    quality: Optional[float] = typer.Option(None, "-q", "--quality",
                                            help="0-100, higher is larger and better (default 75). Format-3 "
                                                 "images: a constant quality (lambda), whatever the size; "
                                                 "clips and --model coordinate: a byte budget."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Target bits per pixel (within 5%)."),
    size: Optional[int] = typer.Option(None, "--size", help="Largest file size in bytes."),
    psnr: Optional[float] = typer.Option(None, "--psnr", help="Format-3 images: aim at this PSNR in dB (within "
                                                              "about 0.3 dB), whatever the size."),
    model: str = typer.Option("auto", "--model", help="latent (latent pyramids: format 3 for images, 4 for "
                                                       "clips; default) or coordinate (the ASMR network alone, "
                                                       "format 2)."),
    bases: Optional[str] = typer.Option(None, "--bases",
                                        help="Coordinate network: per-axis bases, e.g. 4,4,4,8x4,4,6,8 (H x W, "
                                             "coarsest first)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden width (latent pyramid: of the per-pixel "
                                                                "MLP, 0-64)."),
    levels: Optional[int] = typer.Option(None, "--levels", help="Levels (of the pyramid, or for automatic bases)."),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim",
                                             help="Coordinate network: latent channels per coarse cell (0 = the "
                                                  "paper's plain ASMR)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Training steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop after about this many seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger inputs."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: frames START:END (0-based, END excluded)."),
    motion: bool = typer.Option(False, "--motion", help="Video: intra frames and motion-compensated B frames "
                                                        "(format 9): better where the camera stays still, "
                                                        "slower and worse where it pans (docs/video.md)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (a batch: one per "
                                                          "file, then a summary)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Batch: the images and videos under each folder."),
    jobs: Optional[int] = typer.Option(None, "-j", "--jobs", help="Batch: worker processes (default: from the "
                                                                  "cores and --threads)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Batch: torch threads per job (default: cores "
                                                                  "/ jobs; with --ray 1 CPU per task)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Batch: run the jobs on the Ray cluster at ADDRESS "
                                                          "(host:port, ray://..., or auto); needs asmr\\[ray]."),
    collection: bool = typer.Option(False, "--collection", help="All the images (with -r, under the folders) in "
                                                                 "one file sharing one set of networks (format 5; "
                                                                 "docs/collections.md)."),
    into: Optional[Path] = typer.Option(None, "--into", help="Add the image to this collection, coded against its "
                                                             "frozen networks (the file is replaced atomically)."),
) -> None:
    """Fit a network to an image or a clip and write it as an .asmr file."""
    from ..api import EncodeOptions
    from ..io.media import read_image

    opts = EncodeOptions(preset=preset, quality=quality, bpp=bpp, size=size, psnr=psnr, bases=bases, hidden=hidden,
                         latent_dim=latent_dim, levels=levels, iters=iters, time_limit=time_limit, seed=seed,
                         device=device, max_pixels=max_pixels, model=model, motion=motion)  # one file and a batch alike
    if collection or into is not None:
        encode_collection_command(inputs, output, opts, recursive, force, quiet, as_json, into)
        return
    if is_batch(inputs, recursive, ray):
        run_batch_command("encode", inputs, Path(output) if output is not None else None, opts, frames, recursive,
                          force, jobs, threads, ray, quiet, as_json)
        return
    input = inputs[0]

    try:
        out = output_in(input, output, ".asmr")
        refuse_media_name(out)
        _refuse_overwrite(out, force)
        clip = _read_clip(input, frames, max_pixels)
        raster = read_image(input, max_pixels) if clip is None else None
        with encode_progress("encoding", show=not quiet) as progress:
            result = _encode_any(raster, clip, opts, progress)
        write_atomic(out, result.data)
    except AsmrError as exc:
        fail(exc)
        return
    s = result.stats
    if as_json:
        print_json({"output": str(out), **s})
    if not quiet:
        err.print(f"{out}: {encode_summary(s)}", markup=False)


@app.command()
def decode(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT...", help=".asmr file. Several files, a glob or "
                                                                       "--recursive make a batch (docs/batch.md)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Output image (.png .jpg .webp .tif) or "
                                         "video (.mp4 .mov .mkv .avi .webm .gif .y4m, or a folder/ for PNG frames); "
                                         "for a batch, a folder that mirrors the inputs' tree (images .png, videos "
                                         ".mp4, or --format)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Output format without -o, and a batch's: png, jpg, "
                                      "webp or tif for images, mp4, webm, mov, mkv, avi, gif, y4m, webp or apng for "
                                      "clips (png, webp: animated); e.g. --format webp, or jpg,webm for both "
                                      "(default png and mp4)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: decode frames START:END only."),
    size: Optional[str] = typer.Option(None, "--size", help="Render at WIDTHxHEIGHT, e.g. 1536x1024."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Render at this scale, e.g. 2 or 0.25."),
    width: Optional[int] = typer.Option(None, "--width", help="Render this wide (aspect kept)."),
    height: Optional[int] = typer.Option(None, "--height", help="Render this high (aspect kept)."),
    region: Optional[str] = typer.Option(None, "--region", help="Render only X,Y,WIDTH,HEIGHT of the output."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse files declaring more pixels."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (a batch: one per "
                                                          "file, then a summary)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Batch: the .asmr files under each folder."),
    jobs: Optional[int] = typer.Option(None, "-j", "--jobs", help="Batch: worker processes (default: one per core)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Batch: threads per job."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Batch: run the jobs on the Ray cluster at ADDRESS "
                                                          "(host:port, ray://..., or auto); needs asmr\\[ray]."),
    quiet: bool = typer.Option(False, "--quiet", help="Batch: no progress display or per-file lines."),
    member: Optional[str] = typer.Option(None, "--member", help="Collection: decode this member only (its name, "
                                                                "e.g. cat/0042.png); without it, every member "
                                                                "into the folder -o."),
) -> None:
    """Rebuild the network and render the image (at any size, or only a region)."""
    from ..api.files import decode_file, output_formats

    if member is None and is_batch(inputs, recursive, ray):
        from ..batch.jobs import DecodeOptions
        from ..io.sizes import parse_region, parse_size

        try:  # a bad --size or --region is the command's error, not every file's
            if size is not None:
                parse_size(size)
            if region is not None:
                parse_region(region)
        except AsmrError as exc:
            fail(exc)
            return
        try:
            output_formats(fmt)
        except AsmrError as exc:
            fail(exc)
            return
        opts = DecodeOptions(frames, size, scale, width, height, region, max_pixels)
        run_batch_command("decode", inputs, Path(output) if output is not None else None, opts, None, recursive, force,
                   jobs, threads, ray, quiet, as_json, fmt)
        return
    input = inputs[0]

    try:
        summary = decode_file(input, output, force, frames, size, scale, width, height, region, max_pixels, fmt,
                              member)
    except AsmrError as exc:
        fail(exc)
        return
    if as_json:
        print_json(summary)


@app.command()
def stats(
    input: Path = typer.Argument(..., help=".asmr file."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Original image or clip, for PSNR (and SSIM)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger references."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: the reference's frames START:END."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Report size, bits per pixel, MACs per pixel and, with --ref, PSNR/SSIM."""
    from ..api import read_stats

    try:
        data = _read_file(input)
        from ..api import collection_stats, holds_collection

        if holds_collection(data):
            s = collection_stats(data, ref, max_pixels)
        else:
            s = _video_stats(data, ref, frames) if _holds_video(input) else read_stats(data, ref, max_pixels)
    except AsmrError as exc:
        fail(exc)
        return
    if as_json:
        print_json(s)
        return
    from rich.table import Table

    rows = s.pop("member_list", None)
    table = Table(show_header=False, box=None)
    for k, v in s.items():
        table.add_row(k, str(v))
    Console(highlight=False).print(table)
    if rows:
        listing = Table(box=None)
        for col in rows[0]:
            listing.add_column(col)
        for row in rows:
            listing.add_row(*(str(v) for v in row.values()))
        Console(highlight=False).print(listing)


app.command()(compare)  # `asmr compare` (cli/compare.py)


# -- video: dispatch helpers (a clip is read, encoded and written by video.py and codec.py) --

def _read_clip(path: Path, frames: Optional[str], max_pixels: Optional[int] = None):
    """The clip to encode, or None when the input is an image."""
    from ..batch.jobs import read_clip

    return read_clip(path, frames, max_pixels)


def _encode_any(raster, clip, opts, progress=None):
    from ..batch.jobs import encode_any

    return encode_any(raster, clip, opts, progress)


def _holds_video(path: Path) -> bool:
    from ..api import holds_video

    return holds_video(_read_file(path))


def _video_stats(data: bytes, ref: Optional[Path], frames: Optional[str]) -> dict:
    from ..api import read_video_stats
    from ..io.clips import parse_frames

    return read_video_stats(data, ref, parse_frames(frames))


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove temporary output."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated


def run() -> None:
    """Console-script entry point: Ctrl-C exits 130 and SIGTERM 143, after the temporary
    output is removed and without a traceback (typer itself turns Ctrl-C into 130)."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except KeyboardInterrupt:
        err.print("asmr: interrupted")
        sys.exit(130)
    except Terminated:
        err.print("asmr: terminated")
        sys.exit(143)
    except MemoryError:
        if console.debug:
            raise
        err.print("asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)",
                  markup=False, soft_wrap=True)
        sys.exit(1)


