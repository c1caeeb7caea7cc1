"""`asmr` command line: parse, call the codec, render with rich. No maths here."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import __version__
from .errors import AsmrError
from .files import output_path, read_input, refuse_overwrite
from .media import DEFAULT_MAX_PIXELS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress images with ASMR coordinate networks.")
err = Console(stderr=True, highlight=False)
_debug = False


def _fail(exc: BaseException) -> None:
    if _debug:
        raise exc
    err.print(f"asmr: error: {exc}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


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
    global _debug
    _debug = debug


# the path checks are shared with the light decode entry (asmr_cli.files, no typer there)
_output_path, _refuse_overwrite = output_path, refuse_overwrite


def _refuse_media_name(out: Path) -> None:
    """`encode -o out.png` would write an .asmr file that no image viewer can open."""
    from .video import media_kind

    kind = media_kind(out)
    if kind is not None:
        ext = out.suffix.lower()
        raise AsmrError(f"{out}: encode writes an .asmr file, not a {ext} {kind}; use -o "
                        f"{out.with_suffix('.asmr')}, or `asmr decode` to write a {ext}")


def _write_atomic(path: Path, data: bytes) -> None:
    from .media import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


_read_file = read_input


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


@app.command()
def encode(
    input: Path = typer.Argument(..., help="Image (PNG, JPEG, WebP, TIFF, ...) or video (MP4, MOV, MKV, WebM, "
                                           "GIF, Y4M, a folder of numbered frames) to compress."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output .asmr (default: next to the input)."),
    preset: str = typer.Option("default", "--preset", "-p", help="Effort: fast | default | high."),
    quality: Optional[float] = typer.Option(None, "-q", "--quality",
                                            help="0-100, higher is larger and better (default 75)."),
    bpp: Optional[float] = typer.Option(None, "--bpp", help="Target bits per pixel (within 5%)."),
    size: Optional[int] = typer.Option(None, "--size", help="Largest file size in bytes."),
    bases: Optional[str] = typer.Option(None, "--bases",
                                        help="Per-axis bases, e.g. 4,4,4,8x4,4,6,8 (H x W, coarsest first)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden width."),
    levels: Optional[int] = typer.Option(None, "--levels", help="Levels for automatic bases."),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim",
                                             help="Latent channels per coarse cell (0 = the paper's plain ASMR; "
                                                  "default 1 from 0.4 bpp up, else 0)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Training steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop after about this many seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger inputs."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: frames START:END (0-based, END excluded)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Fit a network to an image or a clip and write it as an .asmr file."""
    from .codec import EncodeOptions
    from .media import read_image

    try:
        out = _output_path(input, output, ".asmr")
        _refuse_media_name(out)
        _refuse_overwrite(out, force)
        clip = _read_clip(input, frames)
        raster = read_image(input, max_pixels) if clip is None else None
        opts = EncodeOptions(preset=preset, quality=quality, bpp=bpp, size=size, bases=bases, hidden=hidden,
                             latent_dim=latent_dim, levels=levels, iters=iters, time_limit=time_limit, seed=seed,
                             device=device, max_pixels=max_pixels)
        show = not quiet and err.is_terminal
        if show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("encoding"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TextColumn("{task.fields[psnr]}"), TimeRemainingColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task("fit", total=1, psnr="")

                def progress(step: int, total: int, db: float) -> None:
                    bar.update(task, completed=step, total=total, psnr=f"{db:.2f} dB")

                result = _encode_any(raster, clip, opts, progress)
        else:
            result = _encode_any(raster, clip, opts)
        _write_atomic(out, result.data)
    except AsmrError as exc:
        _fail(exc)
        return
    s = result.stats
    if as_json:
        _print_json({"output": str(out), **s})
    if not quiet:
        err.print(f"{out}: {s['bytes']} bytes, {s['bpp']:.3f} bpp, {s['psnr']:.2f} dB, "
                  f"{s['encode_seconds']:.1f} s", markup=False)


@app.command()
def decode(
    input: Path = typer.Argument(..., help=".asmr file."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Output image (.png .jpg .webp .tif) or "
                                         "video (.mp4 .mov .mkv .avi .webm .gif .y4m, or a folder/ for PNG frames)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: decode frames START:END only."),
    size: Optional[str] = typer.Option(None, "--size", help="Render at WIDTHxHEIGHT, e.g. 1536x1024."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Render at this scale, e.g. 2 or 0.25."),
    width: Optional[int] = typer.Option(None, "--width", help="Render this wide (aspect kept)."),
    height: Optional[int] = typer.Option(None, "--height", help="Render this high (aspect kept)."),
    region: Optional[str] = typer.Option(None, "--region", help="Render only X,Y,WIDTH,HEIGHT of the output."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse files declaring more pixels."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Rebuild the network and render the image (at any size, or only a region)."""
    from .decoding import decode_file

    try:
        summary = decode_file(input, output, force, frames, size, scale, width, height, region, max_pixels)
    except AsmrError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json(summary)


@app.command()
def stats(
    input: Path = typer.Argument(..., help=".asmr file."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Original image or clip, for PSNR (and SSIM)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger references."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Video: the reference's frames START:END."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Report size, bits per pixel, MACs per pixel and, with --ref, PSNR/SSIM."""
    from .codec import read_stats

    try:
        data = _read_file(input)
        s = _video_stats(data, ref, frames) if _holds_video(input) else read_stats(data, ref, max_pixels)
    except AsmrError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json(s)
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for k, v in s.items():
        table.add_row(k, str(v))
    Console(highlight=False).print(table)


# -- video: dispatch helpers (a clip is read, encoded and written by video.py and codec.py) --

def _read_clip(path: Path, frames: Optional[str]):
    """The clip to encode, or None when the input is an image."""
    from .video import is_video_path, parse_frames, read_video

    if not is_video_path(path) and frames is None:
        return None
    return read_video(path, parse_frames(frames))


def _encode_any(raster, clip, opts, progress=None):
    from .codec import encode_clip, encode_raster

    return encode_raster(raster, opts, progress) if clip is None else encode_clip(clip, opts, progress)


def _holds_video(path: Path) -> bool:
    from .codec import holds_video

    return holds_video(_read_file(path))


def _video_stats(data: bytes, ref: Optional[Path], frames: Optional[str]) -> dict:
    from .codec import read_video_stats
    from .video import parse_frames

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
        if _debug:
            raise
        err.print("asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)",
                  markup=False, soft_wrap=True)
        sys.exit(1)
