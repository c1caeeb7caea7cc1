"""`asmr` command line: parse, call the codec, render with rich. No maths here."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import __version__
from .errors import AsmrError
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


def _output_path(inp: Path, out: Optional[Path], suffix: str) -> Path:
    return out if out is not None else inp.with_suffix(suffix)


def _refuse_overwrite(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise AsmrError(f"{out} exists (use -f to overwrite)")
    if out.exists() and out.is_dir():
        raise AsmrError(f"{out} is a directory")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise AsmrError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise AsmrError(f"{path}: no such file")
    if path.is_dir():
        raise AsmrError(f"{path}: is a directory")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AsmrError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


@app.command()
def encode(
    input: Path = typer.Argument(..., help="Image to compress (PNG, JPEG, WebP, TIFF, ...)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output .asmr (default: next to the input)."),
    preset: str = typer.Option("default", "--preset", "-p", help="fast | default | high."),
    bases: Optional[str] = typer.Option(None, "--bases",
                                        help="Per-axis bases, e.g. 4,4,4,8x4,4,6,8 (H x W, coarsest first)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", help="Hidden width."),
    levels: Optional[int] = typer.Option(None, "--levels", help="Levels for automatic bases."),
    latent_dim: Optional[int] = typer.Option(None, "--latent-dim",
                                             help="Latent channels per coarse cell (0 = the paper's plain ASMR)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Training steps."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Stop after about this many seconds."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same bytes)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger inputs."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Fit a network to an image and write it as an .asmr file."""
    from .codec import EncodeOptions, encode_raster
    from .media import read_image

    try:
        out = _output_path(input, output, ".asmr")
        _refuse_overwrite(out, force)
        raster = read_image(input, max_pixels)
        opts = EncodeOptions(preset=preset, bases=bases, hidden=hidden, latent_dim=latent_dim,
                             levels=levels, iters=iters, time_limit=time_limit, seed=seed,
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

                result = encode_raster(raster, opts, progress)
        else:
            result = encode_raster(raster, opts)
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
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output image (.png .jpg .webp .tif)."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite the output."),
    size: Optional[str] = typer.Option(None, "--size", help="Render at WIDTHxHEIGHT, e.g. 1536x1024."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Render at this scale, e.g. 2 or 0.25."),
    width: Optional[int] = typer.Option(None, "--width", help="Render this wide (aspect kept)."),
    height: Optional[int] = typer.Option(None, "--height", help="Render this high (aspect kept)."),
    region: Optional[str] = typer.Option(None, "--region", help="Render only X,Y,WIDTH,HEIGHT of the output."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse files declaring more pixels."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Rebuild the network and render the image (at any size, or only a region)."""
    from .codec import render_image
    from .media import write_image
    from .resample import parse_region, parse_size

    start = time.perf_counter()
    try:
        out = _output_path(input, output, ".png")
        _refuse_overwrite(out, force)
        raster = render_image(_read_file(input), parse_size(size) if size is not None else None, scale,
                              width, height, parse_region(region) if region is not None else None,
                              max_pixels=max_pixels)
        write_image(out, raster)
    except AsmrError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json({"output": str(out), "width": raster.width, "height": raster.height,
                     "decode_seconds": round(time.perf_counter() - start, 4)})


@app.command()
def stats(
    input: Path = typer.Argument(..., help=".asmr file."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Original image, for PSNR and SSIM."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger references."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Report size, bits per pixel, MACs per pixel and, with --ref, PSNR/SSIM."""
    from .codec import read_stats

    try:
        s = read_stats(_read_file(input), ref, max_pixels)
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
