"""The route of an image through `asmr encode` and `asmr decode`, traced call by call: which
modules it touches, and every call that goes back UP the layers (a lower layer calling
into a higher one: a callback, or a module that re-enters the pipeline from below).

    OMP_NUM_THREADS=1 python benchmarks/route.py [--image samples/kodim23_small.png] [--iters 10]

Layers, lowest first (docs/architecture.md): core; container, io; coordinate, latent;
clip; api; batch; cli. Calls within one layer are not counted as upward. Prints the
modules in the order first entered and a table of the upward calls (caller -> callee,
how many times).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAYERS = {"core": 0, "container": 1, "io": 1, "coordinate": 2, "latent": 2, "clip": 3, "api": 4, "batch": 5,
          "cli": 6}


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "asmr_cli" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__", "").startswith("asmr_cli"):
            return True
        frame = frame.f_back
    return False


def trace(fn):
    """Run fn() and return (modules in first-entered order, Counter of upward (caller, callee) calls)."""
    seen: dict[str, None] = {}
    upward: Counter = Counter()

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = frame.f_globals.get("__name__", "")
        if not callee.startswith("asmr_cli.") or _importing(frame):
            return  # imports run module code (and the functions it calls): not the route
        seen.setdefault(callee, None)
        back = frame.f_back
        caller = back.f_globals.get("__name__", "") if back is not None else ""
        lc, le = layer(caller), layer(callee)
        if lc is not None and le is not None and le > lc:
            upward[(caller, callee + "." + frame.f_code.co_name)] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return list(seen), upward


def report(title: str, modules: list[str], upward: Counter) -> None:
    print(f"## {title}\n")
    print(f"{len(modules)} modules, in the order first entered: " + ", ".join(m.removeprefix("asmr_cli.")
                                                                          for m in modules) + "\n")
    print(f"{sum(upward.values())} upward calls ({len(upward)} distinct)\n")
    if upward:
        print("| caller | callee (upward) | calls |\n| --- | --- | --- |")
        for (a, b), n in upward.most_common():
            print(f"| {a.removeprefix('asmr_cli.')} | {b.removeprefix('asmr_cli.')} | {n} |")
        print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, default=ROOT / "samples" / "kodim23_small.png")
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()

    import tempfile

    from typer.testing import CliRunner

    from asmr_cli.cli.app import app

    runner = CliRunner()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "x.asmr"

        def encode():
            r = runner.invoke(app, ["encode", str(args.image), "-o", str(out), "--iters", str(args.iters),
                                    "--time-limit", "100000", "--quiet"])
            assert r.exit_code == 0, r.output

        def decode():
            r = runner.invoke(app, ["decode", str(out), "-o", str(Path(d) / "x.png")])
            assert r.exit_code == 0, r.output

        report(f"asmr encode {args.image.name} (format 3)", *trace(encode))
        report("asmr decode (format 3)", *trace(decode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
