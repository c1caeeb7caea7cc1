"""Many inputs from the command line: a batch (batch/: local workers or Ray) with one
progress display, and a collection (format 5: many images in one file)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..core.errors import AsmrError
from ..io.files import read_input, refuse_overwrite
from .console import encode_summary, err, fail, print_json, refuse_media_name, write_atomic


def is_batch(inputs: list[Path], recursive: bool, ray: Optional[str]) -> bool:
    """Several inputs, --recursive, --ray or a glob the shell left alone; one plain input is
    a single run, exactly as before."""
    from ..batch.plan import GLOB_CHARS

    text = str(inputs[0])
    return (len(inputs) > 1 or recursive or ray is not None
            or (any(c in text for c in GLOB_CHARS) and not inputs[0].exists()))


def run_batch_command(kind: str, inputs: list[Path], output: Optional[Path], opts, frames: Optional[str],
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
        fail(exc)
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
            print_json(r.as_json())
            sys.stdout.flush()
        if r.status == "failed":
            failed.append(r)
        if not quiet:
            if r.status == "ok" and kind == "encode":
                line = f"{r.input} -> {r.output}: {encode_summary(r.stats)}"
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
        fail(exc)
        return
    summary = summarize(results, time.perf_counter() - start)
    if as_json:
        print_json(summary)
    if not quiet:
        done = "encoded" if kind == "encode" else "decoded"
        err.print(f"{summary['files']} files: {summary['ok']} {done}, {summary['skipped']} skipped, "
                  f"{summary['failed']} failed, {summary['seconds']:.1f} s", markup=False)
    if failed:
        err.print(f"asmr: {len(failed)} of {summary['files']} files failed:", markup=False)
        for r in failed:
            err.print(f"  {r.error}", markup=False, soft_wrap=True)
        raise typer.Exit(1)


def encode_collection_command(inputs: list[Path], output: Optional[str], opts, recursive: bool, force: bool,
                              quiet: bool, as_json: bool, into: Optional[Path]) -> None:
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
                refuse_overwrite(out, force)
            raster = read_image(inputs[0], opts.max_pixels)
            result = add_member(read_input(into), inputs[0].name, raster, opts)
        else:
            files, failed = expand_inputs("encode", inputs, recursive)
            if failed:
                raise AsmrError(failed[0].error)
            if output is None:
                raise AsmrError("--collection: name the output with -o set.asmr")
            out = output
            refuse_media_name(out)
            refuse_overwrite(out, force)
            named = [(Path(os.path.relpath(f, anchor)).as_posix(), read_image(f, opts.max_pixels))
                     for f, anchor in files]
            result = encode_collection(named, opts)
        write_atomic(out, result.data)
    except AsmrError as exc:
        fail(exc)
        return
    s = result.stats
    if as_json:
        print_json({"output": str(out), **s})
    if not quiet:
        if into is not None:
            err.print(f"{out}: added {s['member']} ({s['added_bytes']} bytes, {s['member_bpp']:.3f} bpp, "
                      f"{s['psnr']:.2f} dB, {s['encode_seconds']:.1f} s)", markup=False)
        else:
            err.print(f"{out}: {s['members']} members, {s['bytes']} bytes, {s['bpp']:.3f} bpp, "
                      f"{s['psnr']:.2f} dB (mean), {s['encode_seconds']:.1f} s", markup=False)
