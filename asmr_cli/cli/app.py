"""`asmr` command line: parse, call the codec, render with rich. No maths here."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .. import __version__
from ..core.errors import AsmrError
from ..io.files import names_folder, output_in, output_path, read_input, refuse_overwrite
from ..io.media import DEFAULT_MAX_PIXELS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compress images and video clips into small .asmr files (neural representations), "
                       "decode them at any size, and compare with JPEG, WebP and AVIF on your own image.")
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
    from ..io.video import media_kind

    kind = media_kind(out)
    if kind is not None:
        ext = out.suffix.lower()
        raise AsmrError(f"{out}: encode writes an .asmr file, not a {ext} {kind}; use -o "
                        f"{out.with_suffix('.asmr')}, or `asmr decode` to write a {ext}")


def _write_atomic(path: Path, data: bytes) -> None:
    from ..io.media import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


_read_file = read_input


def _print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


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
                         device=device, max_pixels=max_pixels, model=model)  # one file and a batch alike
    if collection or into is not None:
        _encode_collection(inputs, output, opts, recursive, force, quiet, as_json, into)
        return
    if _is_batch(inputs, recursive, ray):
        _run_batch("encode", inputs, Path(output) if output is not None else None, opts, frames, recursive, force,
                   jobs, threads, ray, quiet, as_json)
        return
    input = inputs[0]

    try:
        out = output_in(input, output, ".asmr")
        _refuse_media_name(out)
        _refuse_overwrite(out, force)
        clip = _read_clip(input, frames, max_pixels)
        raster = read_image(input, max_pixels) if clip is None else None
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

    if member is None and _is_batch(inputs, recursive, ray):
        from ..batch.jobs import DecodeOptions
        from ..io.sizes import parse_region, parse_size

        try:  # a bad --size or --region is the command's error, not every file's
            if size is not None:
                parse_size(size)
            if region is not None:
                parse_region(region)
        except AsmrError as exc:
            _fail(exc)
            return
        try:
            output_formats(fmt)
        except AsmrError as exc:
            _fail(exc)
            return
        opts = DecodeOptions(frames, size, scale, width, height, region, max_pixels)
        _run_batch("decode", inputs, Path(output) if output is not None else None, opts, None, recursive, force,
                   jobs, threads, ray, quiet, as_json, fmt)
        return
    input = inputs[0]

    try:
        summary = decode_file(input, output, force, frames, size, scale, width, height, region, max_pixels, fmt,
                              member)
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
    from ..api import read_stats

    try:
        data = _read_file(input)
        from ..api import collection_stats, holds_collection

        if holds_collection(data):
            s = collection_stats(data, ref, max_pixels)
        else:
            s = _video_stats(data, ref, frames) if _holds_video(input) else read_stats(data, ref, max_pixels)
    except AsmrError as exc:
        _fail(exc)
        return
    if as_json:
        _print_json(s)
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


# -- collections (format 5): many images, one file -------------------------------------------

def _encode_collection(inputs: list[Path], output: Optional[str], opts, recursive: bool, force: bool, quiet: bool,
                       as_json: bool, into: Optional[Path]) -> None:
    """--collection: the images found as a batch would find them, named by their paths
    relative to the folder given (or their file names); --into: one image added to a
    collection (the output is the collection itself unless -o names another file)."""
    import os

    output = Path(output) if output is not None else None

    from ..api import add_member, encode_collection
    from ..batch.plan import expand_inputs
    from ..io.media import read_image

    try:
        if into is not None:
            if len(inputs) != 1 or inputs[0].is_dir():
                raise AsmrError("--into adds one image at a time")
            out = output if output is not None else into
            if out != into:
                _refuse_overwrite(out, force)
            raster = read_image(inputs[0], opts.max_pixels)
            result = add_member(_read_file(into), inputs[0].name, raster, opts)
        else:
            files, failed = expand_inputs("encode", inputs, recursive)
            if failed:
                raise AsmrError(failed[0].error)
            if output is None:
                raise AsmrError("--collection: name the output with -o set.asmr")
            out = output
            _refuse_media_name(out)
            _refuse_overwrite(out, force)
            named = [(Path(os.path.relpath(f, anchor)).as_posix(), read_image(f, opts.max_pixels))
                     for f, anchor in files]
            result = encode_collection(named, opts)
        _write_atomic(out, result.data)
    except AsmrError as exc:
        _fail(exc)
        return
    s = result.stats
    if as_json:
        _print_json({"output": str(out), **s})
    if not quiet:
        if into is not None:
            err.print(f"{out}: added {s['member']} ({s['added_bytes']} bytes, {s['member_bpp']:.3f} bpp, "
                      f"{s['psnr']:.2f} dB, {s['encode_seconds']:.1f} s)", markup=False)
        else:
            err.print(f"{out}: {s['members']} members, {s['bytes']} bytes, {s['bpp']:.3f} bpp, "
                      f"{s['psnr']:.2f} dB (mean), {s['encode_seconds']:.1f} s", markup=False)


@app.command()
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
                _refuse_overwrite(path, force)
        if rd is not None:
            if output is not None:
                raise AsmrError("--rd writes a plot; -o writes one rate's picture: run them apart")
            check_plotting()
            bpps = _parse_bpps(rd_bpps)
        box = _parse_crop(crop)
        is_clip = _holds_clip_input(input)
        names = tuple(c.strip().lower() for c in codecs.split(",") if c.strip()) if codecs is not None else (
            CLIP_CODECS if is_clip else IMAGE_CODECS)
        if not is_clip and (frames is not None or frame is not None):
            raise AsmrError(f"{input}: --frames and --frame are for a clip; this is an image")
        kw = dict(codecs=names, crop=box)
        if is_clip:
            kw.update(frame=frame, frames=parse_frames(frames))
        with _encode_progress() as progress:
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
        _fail(exc)
        return
    if rd is not None:
        if as_json:
            _print_json({"input": str(input), "plot": str(rd), "rates": [r.as_json() for r in sweep]})
            return
        for r in sweep:
            _print_compare(r, None)
        Console(highlight=False).print(f"rate-distortion plot: {rd}", markup=False)
        return
    if as_json:
        obj = result.as_json()
        if output is not None:
            obj["picture"] = {"path": str(output), **picture_layout(result)}
        _print_json(obj)
        return
    _print_compare(result, output)


@contextmanager
def _encode_progress():
    """asmr's training as a progress bar on a terminal (the other codecs take moments): the
    callback the encoders take, or None where stderr is not a terminal."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("asmr encoding"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[psnr]}"), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("fit", total=1, psnr="")

        def progress(step: int, total: int, db: float) -> None:
            bar.update(task, completed=step, total=total, psnr=f"{db:.2f} dB")

        yield progress


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
        if _debug:
            raise
        err.print("asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)",
                  markup=False, soft_wrap=True)
        sys.exit(1)


# -- batch: many inputs through batch.py (local worker processes or Ray) ----------------------

def _is_batch(inputs: list[Path], recursive: bool, ray: Optional[str]) -> bool:
    """Several inputs, --recursive, --ray or a glob the shell left alone; one plain input is
    a single run, exactly as before."""
    from ..batch.plan import GLOB_CHARS

    text = str(inputs[0])
    return (len(inputs) > 1 or recursive or ray is not None
            or (any(c in text for c in GLOB_CHARS) and not inputs[0].exists()))


def _run_batch(kind: str, inputs: list[Path], output: Optional[Path], opts, frames: Optional[str],
               recursive: bool, force: bool, jobs: Optional[int], threads: Optional[int], ray: Optional[str],
               quiet: bool, as_json: bool, fmt: Optional[str] = None) -> None:
    """One progress display for the batch, a line per file, `--json` one object per file and
    a summary; exit 1 at the end if any file failed."""
    import time
    from contextlib import nullcontext

    from ..batch import Task, plan_batch, run_batch, summarize

    start = time.perf_counter()
    try:
        batch = plan_batch(kind, inputs, output, recursive=recursive, force=force, fmt=fmt)
    except AsmrError as exc:
        _fail(exc)
        return
    failed = []
    bar = task = None
    if not quiet and err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn(f"{kind} batch"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                       TextColumn("{task.fields[failed]}"), TimeRemainingColumn(), console=err, transient=True)
        task = bar.add_task(kind, total=batch.total, failed="")

    def report(r) -> None:
        if as_json:
            _print_json(r.as_json())
            sys.stdout.flush()
        if r.status == "failed":
            failed.append(r)
        if not quiet:
            if r.status == "ok" and kind == "encode":
                s = r.stats
                line = (f"{r.input} -> {r.output}: {s['bytes']} bytes, {s['bpp']:.3f} bpp, {s['psnr']:.2f} dB, "
                        f"{s['encode_seconds']:.1f} s")
            elif r.status == "ok":
                line = f"{r.input} -> {r.output}: {r.stats['width']}x{r.stats['height']}"
            elif r.status == "skipped":
                line = f"{r.input}: skipped ({r.output} exists; -f redoes it)"
            else:
                line = f"asmr: error: {r.error}"
            err.print(line, markup=False, soft_wrap=True)
        if bar is not None:
            bar.update(task, advance=1, failed=f"{len(failed)} failed" if failed else "")

    try:
        with bar if bar is not None else nullcontext():
            results = run_batch(batch, Task(kind, opts, frames), jobs=jobs, threads=threads, ray=ray,
                                on_result=report)
    except AsmrError as exc:  # before any job ran: no Ray, a bad --jobs
        _fail(exc)
        return
    summary = summarize(results, time.perf_counter() - start)
    if as_json:
        _print_json(summary)
    if not quiet:
        done = "encoded" if kind == "encode" else "decoded"
        err.print(f"{summary['files']} files: {summary['ok']} {done}, {summary['skipped']} skipped, "
                  f"{summary['failed']} failed, {summary['seconds']:.1f} s", markup=False)
    if failed:
        err.print(f"asmr: {len(failed)} of {summary['files']} files failed:", markup=False)
        for r in failed:
            err.print(f"  {r.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
