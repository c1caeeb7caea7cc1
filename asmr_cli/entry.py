"""The `asmr` console script. A plain `asmr decode IN [-o OUT] [-f] [--json]` runs here
without loading typer, rich and pydantic: on a 2-core machine those imports cost more
than the decode itself (numpy + constriction + Pillow is all a decode needs). Any other
command line, including a decode with an option this parser does not know, goes to the
typer app in `cli`, which stays the single definition of the interface."""

from __future__ import annotations

import sys


def plain_decode_args(argv: list[str]) -> dict | None:
    """`decode INPUT [-o OUT | --output OUT] [-f | --force] [--json]`, in any order, as a
    dict; None for anything else (the typer app handles it, help and errors included)."""
    if not argv or argv[0] != "decode":
        return None
    args: dict = {"input": None, "output": None, "force": False, "json": False}
    rest = iter(argv[1:])
    for a in rest:
        if a in ("-o", "--output"):
            value = next(rest, None)
            if value is None or value.startswith("-") or args["output"] is not None:
                return None
            args["output"] = value
        elif a in ("-f", "--force"):
            args["force"] = True
        elif a == "--json":
            args["json"] = True
        elif a.startswith("-") or args["input"] is not None:
            return None
        else:
            args["input"] = a
    return args if args["input"] is not None else None


def plain_decode(args: dict) -> int | None:
    """The `decode` command's behaviour for an image (cli.decode, same checks in the same
    order, same messages), with plain stderr/stdout; None for a video file."""
    import json
    import time
    from pathlib import Path

    from .errors import AsmrError

    start = time.perf_counter()
    src = Path(args["input"])
    try:
        if not src.exists():
            raise AsmrError(f"{src}: no such file")
        if src.is_dir():
            raise AsmrError(f"{src}: is a directory")
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise AsmrError(f"{src}: cannot read ({exc.strerror or exc})") from None
        from .codec import holds_video, render_image

        if holds_video(data):
            return None
        out = Path(args["output"]) if args["output"] is not None else src.with_suffix(".png")
        if out.exists() and not args["force"]:
            raise AsmrError(f"{out} exists (use -f to overwrite)")
        if out.exists() and out.is_dir():
            raise AsmrError(f"{out} is a directory")
        from .media import write_image

        raster = render_image(data)
        write_image(out, raster)
    except AsmrError as exc:
        sys.stderr.write(f"asmr: error: {exc}\n")
        return 1
    if args["json"]:
        sys.stdout.write(json.dumps({"output": str(out), "width": raster.width, "height": raster.height,
                                     "decode_seconds": round(time.perf_counter() - start, 4)}) + "\n")
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove temporary output
    (as cli.run does for the typer commands)."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def run() -> None:
    """Console-script entry point; Ctrl-C exits 130 and SIGTERM 143, as in cli.run."""
    args = plain_decode_args(sys.argv[1:])
    code = None
    if args is not None:
        import signal

        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            code = plain_decode(args)
        except KeyboardInterrupt:
            sys.stderr.write("asmr: interrupted\n")
            code = 130
        except _Terminated:
            sys.stderr.write("asmr: terminated\n")
            code = 143
        finally:
            signal.signal(signal.SIGTERM, previous)
    if code is None:
        try:
            from .cli import run as typer_run
        except KeyboardInterrupt:  # Ctrl-C while the interface (typer, rich, torch) loads
            sys.stderr.write("asmr: interrupted\n")
            sys.exit(130)
        typer_run()
        return
    sys.exit(code)
