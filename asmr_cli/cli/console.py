"""What every command shares: the stderr console, the one-line error (a traceback only with
--debug), JSON on stdout, atomic writes and the encoder's progress bar."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from ..core.errors import AsmrError

err = Console(stderr=True, highlight=False)
debug = False  # --debug (set by the app's callback)


def fail(exc: BaseException) -> None:
    if debug:
        raise exc
    err.print(f"asmr: error: {exc}", markup=False, soft_wrap=True)
    raise typer.Exit(1)


def print_json(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


def write_atomic(path: Path, data: bytes) -> None:
    from ..io.media import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def encode_progress(label: str = "asmr encoding", show: bool = True):
    """asmr's training as a progress bar on a terminal (the other codecs take moments): the
    callback the encoders take, or None where stderr is not a terminal or `show` is false."""
    if not (show and err.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[psnr]}"), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("fit", total=1, psnr="")

        def progress(step: int, total: int, db: float) -> None:
            bar.update(task, completed=step, total=total, psnr=f"{db:.2f} dB")

        yield progress


def encode_summary(s: dict) -> str:
    """One encoded file's line: size, rate, quality and time (one file and a batch alike)."""
    return f"{s['bytes']} bytes, {s['bpp']:.3f} bpp, {s['psnr']:.2f} dB, {s['encode_seconds']:.1f} s"


def refuse_media_name(out: Path) -> None:
    """`encode -o out.png` would write an .asmr file that no image viewer can open."""
    from ..io.video import media_kind

    kind = media_kind(out)
    if kind is not None:
        ext = out.suffix.lower()
        raise AsmrError(f"{out}: encode writes an .asmr file, not a {ext} {kind}; use -o "
                        f"{out.with_suffix('.asmr')}, or `asmr decode` to write a {ext}")
