"""Check that a change to the code leaves the encoder's bytes and the decoder's pixels alone.

The default presets stop on wall-clock time, so two runs of the same code can differ; this
script encodes with a fixed step count, no effective time limit and one thread, through the
command line (so it runs the same before and after a move of modules), and hashes:
- the .asmr bytes of an image (format 3), a clip (format 4), and --model coordinate for an
  image and a clip (format 2);
- the decoded pixels of each, and of every golden file (tests/<family>/golden/).

    OMP_NUM_THREADS=1 python benchmarks/same_bytes.py --save before.json   # on the old code
    OMP_NUM_THREADS=1 python benchmarks/same_bytes.py --check before.json  # on the new code

`--check` prints a table (same / DIFFERENT per case) and exits 1 on any difference. The
hashes depend on the machine's torch build and CPU, so compare runs on one machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NO_LIMIT = "100000"

# name, input, encode options
ENCODES = [
    ("image_latent", SAMPLES / "kodim23_small.png", ["--iters", "40", "--bpp", "1.0"]),
    ("image_latent_q", SAMPLES / "kodim08_small.png", ["--iters", "25", "-q", "60", "--seed", "3"]),
    ("image_coordinate", SAMPLES / "kodim04_small.png", ["--model", "coordinate", "--iters", "40", "--bpp", "1.5"]),
    ("clip_latent", SAMPLES / "carphone_8f.mp4", ["--iters", "20", "--bpp", "0.3"]),
    ("clip_coordinate", SAMPLES / "carphone_8f.mp4", ["--model", "coordinate", "--iters", "20", "--bpp", "0.3"]),
]


def _asmr(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, "-m", "asmr_cli", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"asmr {' '.join(args)} failed: {proc.stderr.strip()}")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _pixels_digest(path: Path) -> str:
    """A hash of the decoded pixels (a PNG's compressed bytes may change with zlib)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return hashlib.sha256(np.asarray(im).tobytes()).hexdigest()[:16]


def _decoded(src: Path, tmp: Path) -> str:
    """The decode's pixels: a PNG for an image, a folder of PNG frames for a clip."""
    out = tmp / f"{src.stem}-decoded"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    stats = subprocess.run([sys.executable, "-m", "asmr_cli", "stats", str(src), "--json"], capture_output=True,
                           text=True, env=env)
    if json.loads(stats.stdout).get("kind") == "image":
        _asmr("decode", str(src), "-o", str(out / "x.png"), "-f")
        return _pixels_digest(out / "x.png")
    _asmr("decode", str(src), "-o", str(out) + "/", "-f")  # a clip's frames, a collection's members
    h = hashlib.sha256()
    for frame in sorted(out.rglob("*.png")):
        h.update(_pixels_digest(frame).encode())
    return h.hexdigest()[:16]


def measure() -> dict[str, str]:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, src, opts in ENCODES:
            dst = tmp / f"{name}.asmr"
            _asmr("encode", str(src), "-o", str(dst), "-f", "--quiet", "--time-limit", NO_LIMIT, *opts)
            out[f"{name}.asmr"] = _digest(dst)
            out[f"{name}.decoded"] = _decoded(dst, tmp)
            print(f"  {name}: {out[name + '.asmr']} {out[name + '.decoded']}", file=sys.stderr, flush=True)
        for golden in sorted((ROOT / "tests").glob("*/golden/*.asmr"), key=lambda p: p.name):
            out[f"golden/{golden.name}.decoded"] = _decoded(golden, tmp)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write the hashes to this JSON file")
    group.add_argument("--check", type=Path, help="compare with the hashes in this JSON file")
    args = ap.parse_args()
    now = measure()
    if args.save:
        args.save.write_text(json.dumps(now, indent=1) + "\n")
        print(f"{len(now)} hashes written to {args.save}")
        return 0
    before = json.loads(args.check.read_text())
    width = max(map(len, before | now))
    bad = new = 0
    print(f"| {'case':<{width}} | before | after | |")
    print(f"| {'-' * width} | --- | --- | --- |")
    for key in sorted(before | now):
        a, b = before.get(key, "-"), now.get(key, "-")
        if key not in before:  # a case (a golden file of a new format) the saved run did not have
            new += 1
            print(f"| {key:<{width}} | - | {b} | new |")
            continue
        same = a == b
        bad += not same
        print(f"| {key:<{width}} | {a} | {b} | {'same' if same else 'DIFFERENT'} |")
    print(f"{len(before) - bad} same, {bad} different" + (f", {new} new" if new else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
