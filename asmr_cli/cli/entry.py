"""The `asmr` console script. A plain `asmr decode IN [-o OUT] [-f] [--json]` runs here
without loading typer, rich and pydantic, whose imports cost more than the decode itself
(numpy + constriction + Pillow is all a decode needs; docs/speed.md#decoding-without-torch).
Any other command line, including a decode with an option this parser does not know, goes
to the typer app in `cli`, which stays the single definition of the interface. Both call
`api.files.decode_file`."""

from __future__ import annotations

import sys


def plain_decode_args(argv: list[str]) -> dict | None:
    """`decode INPUT [-o OUT | --output OUT] [--member NAME] [-f | --force] [--json]`, in any
    order, as a dict; None for anything else (the typer app handles it, help and errors
    included)."""
    if not argv or argv[0] != "decode":
        return None
    args: dict = {"input": None, "output": None, "force": False, "json": False}
    rest = iter(argv[1:])
    for a in rest:
        if a in ("-o", "--output", "--member"):
            key = "member" if a == "--member" else "output"
            value = next(rest, None)
            if value is None or value.startswith("-") or args.get(key) is not None:
                return None
            args[key] = value
        elif a in ("-f", "--force"):
            args["force"] = True
        elif a == "--json":
            args["json"] = True
        elif a.startswith("-") or args["input"] is not None:
            return None
        else:
            args["input"] = a
    if args["input"] is None or any(c in args["input"] for c in "*?["):  # a glob is a batch: cli.decode
        return None
    return args


def plain_decode(args: dict) -> int:
    """The `decode` command with plain stderr/stdout: the same `api.files.decode_file` as
    the typer command, so the checks, their order and the messages cannot drift."""
    import json

    from ..api.files import decode_file
    from ..core.errors import AsmrError

    try:
        summary = decode_file(args["input"], args["output"], force=args["force"], member=args.get("member"))
    except AsmrError as exc:
        sys.stderr.write(f"asmr: error: {exc}\n")
        return 1
    except MemoryError:  # as cli.run
        sys.stderr.write("asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)\n")
        return 1
    if args["json"]:
        sys.stdout.write(json.dumps(summary) + "\n")
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks remove temporary output
    (as cli.run does for the typer commands)."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def run() -> None:
    """Console-script entry point; Ctrl-C exits 130 and SIGTERM 143, as in cli.run."""
    args = plain_decode_args(sys.argv[1:])
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
        sys.exit(code)
    try:
        from .app import run as typer_run
    except KeyboardInterrupt:  # Ctrl-C while the interface (typer, rich, torch) loads
        sys.stderr.write("asmr: interrupted\n")
        sys.exit(130)
    typer_run()
