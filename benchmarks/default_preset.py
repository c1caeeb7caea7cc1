"""The default preset on six Kodak images: bytes, bpp, PSNR, encode seconds, MAC/pixel.

    python benchmarks/default_preset.py            # kodim01, 04 (portrait), 08, 13, 19, 23
    python benchmarks/default_preset.py --images 23

Runs the real command line (`asmr encode ... --json`) in a subprocess, so the seconds are
whole-process wall time including start-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import kodak, markdown_table  # noqa: E402

SIX = ["01", "04", "08", "13", "19", "23"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="*", default=SIX)
    ap.add_argument("--extra", nargs="*", default=[], help="extra arguments for asmr encode")
    args = ap.parse_args()
    paths = kodak(args.images)
    if not paths:
        print("Kodak images not found under ../shared/data/kodak: skipped.")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            out = Path(tmp) / f"{path.stem}.asmr"
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "asmr_cli", "encode", str(path), "-o", str(out),
                                   "--json", "--quiet", "--device", "cpu", *args.extra],
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(f"{path.name}: failed: {proc.stderr.strip()}")
                continue
            s = json.loads(proc.stdout)
            rows.append([path.stem, f"{s['width']}x{s['height']}", s["bytes"], s["bpp"], s["psnr"], wall,
                         f"{s['macs_per_pixel']:.0f}", s["hidden"]])
            print(json.dumps(s), flush=True)
    mean = ["mean", "", round(sum(r[2] for r in rows) / len(rows)), sum(r[3] for r in rows) / len(rows),
            sum(r[4] for r in rows) / len(rows), sum(r[5] for r in rows) / len(rows), "", ""]
    print()
    print(markdown_table(["image", "size", "bytes", "bpp", "PSNR (dB)", "encode s (wall)", "MAC/px", "hidden"],
                         rows + [mean]))


if __name__ == "__main__":
    main()
