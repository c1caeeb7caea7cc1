"""The image fits' learned start (latent/start.py) against the usual initialisation, at
equal wall time: each cell two whole encodes (the image encoder with
`IMAGE_RECIPE["learned_start"]` off, then on; --bpp or the default -q 75, the preset's
time cap, its rate fit included), run side by side (one thread each, so both see the same
load) unless --serial. Prints a markdown table of PSNR (dB) at the file's bpp.

    OMP_NUM_THREADS=1 python benchmarks/learned_start.py --images kodim05,kodim19,kodim23 --rates 0.5,1.0 --preset fast
    OMP_NUM_THREADS=1 python benchmarks/learned_start.py --crop --rates 0.5            # 384x256 centre crops (width 8)
    OMP_NUM_THREADS=1 python benchmarks/learned_start.py --image samples/kodim23_small.png --rates q   # -q 75

Tuning images only (never kodim02, 07, 12, 17, 21): docs/rate-distortion.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import kodak

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(1)
from asmr_cli.api import EncodeOptions, encode_raster
from asmr_cli.io.media import Raster, read_image
from asmr_cli.latent import encoder
path, rate, preset, use, crop = sys.argv[1:6]
encoder.IMAGE_RECIPE["learned_start"] = use == "1"
img = read_image(Path(path))
if crop == "1":
    y, x = (img.height - 256) // 2, (img.width - 384) // 2
    img = Raster(np.ascontiguousarray(img.pixels[y:y + 256, x:x + 384]), img.bit_depth)
opts = EncodeOptions(preset=preset) if rate == "q" else EncodeOptions(bpp=float(rate), preset=preset)
start = time.perf_counter()
s = encode_raster(img, opts).stats
print(json.dumps({"bpp": s["bpp"], "psnr": s["psnr"], "steps": s.get("iterations"),
                  "seconds": time.perf_counter() - start}))
"""


def run_pair(path: Path, rate: str, preset: str, crop: bool, serial: bool) -> list[dict]:
    root = Path(__file__).resolve().parents[1]
    cmds = [[sys.executable, "-c", CHILD, str(path), rate, preset, use, "1" if crop else "0"] for use in ("0", "1")]
    if serial:
        done = [subprocess.run(c, capture_output=True, text=True, cwd=root) for c in cmds]
        outs = [(d.returncode, d.stdout, d.stderr) for d in done]
    else:
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root)
                 for c in cmds]
        outs = []
        for p in procs:
            out, err = p.communicate()
            outs.append((p.returncode, out, err))
    rows = []
    for code, out, err in outs:
        if code:
            raise SystemExit(f"{path.name} {rate}: the encode failed: {err.strip().splitlines()[-1] if err else code}")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="kodim05,kodim19,kodim23", help="Kodak names (tuning images)")
    ap.add_argument("--image", type=Path, default=None, help="one image file instead of --images")
    ap.add_argument("--rates", default="0.5,1.0", help="bpp targets, or q for the default -q 75")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--crop", action="store_true", help="the 384x256 centre crop of each image")
    ap.add_argument("--serial", action="store_true", help="one encode at a time instead of the pair side by side")
    args = ap.parse_args()
    paths = [args.image] if args.image else kodak(args.images.split(","))
    print("command: python " + " ".join(sys.argv))
    print(f"preset {args.preset}\n| image | target | without: dB @ bpp (steps) | with: dB @ bpp (steps) | gain (dB) |")
    print("|---|---|---|---|---|", flush=True)
    gains = []
    for path in paths:
        for rate in args.rates.split(","):
            off, on = run_pair(path, rate, args.preset, args.crop, args.serial)
            gains.append(on["psnr"] - off["psnr"])
            print(f"| {path.stem}{' crop' if args.crop else ''} | {rate} | {off['psnr']:.2f} @ {off['bpp']:.3f} "
                  f"({off['steps']}) | {on['psnr']:.2f} @ {on['bpp']:.3f} ({on['steps']}) | {gains[-1]:+.2f} |",
                  flush=True)
    print(f"mean gain {sum(gains) / len(gains):+.2f} dB over {len(gains)} cells")


if __name__ == "__main__":
    main()
