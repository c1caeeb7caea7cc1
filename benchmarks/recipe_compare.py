"""Two image recipes at equal wall time: each cell two whole encodes (the image encoder with
`IMAGE_RECIPE` updated by --before, then by --after; --bpp or the default -q 75, the preset's
time cap, its rate fit included), run side by side with one thread each (so both see the
same load), or with --serial one at a time with the threads the environment gives (so that
a recipe that uses a second core can). Prints a markdown table of PSNR (dB) at the file's
bpp, and the rescaling where the rate fit took that fallback.

    # the learned start (docs/rate-distortion.md, "The learned start")
    python benchmarks/recipe_compare.py --before '{"learned_start": false}' --preset fast
    python benchmarks/recipe_compare.py --before '{"learned_start": false}' --crop --rates 0.5  # 384x256 crops
    python benchmarks/recipe_compare.py --before '{"learned_start": false}' \
        --image samples/kodim23_small.png --rates q                                             # -q 75
    # window steps in pairs on two cores ("Two cores"), each encode alone
    python benchmarks/recipe_compare.py --before '{"windows": 1}' --serial --rates 0.5,1.0 --preset fast
    # a constant of latent/encoder.py (an upper-case key): windows of a 12th of the image
    python benchmarks/recipe_compare.py --after '{"WINDOW_SHARE": 12}' --serial --rates 0.5,1.0

Tuning images only (never kodim02, 07, 12, 17, 21): docs/rate-distortion.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import kodak

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from asmr_cli.api import EncodeOptions, encode_raster
from asmr_cli.io.media import Raster, read_image
from asmr_cli.latent import encoder
path, rate, preset, recipe, crop = sys.argv[1:6]
for key, value in json.loads(recipe).items():  # UPPER_CASE: a constant of latent/encoder.py
    if key.isupper():
        setattr(encoder, key, value)
    else:  # the image recipe's, and the size's override of it
        for table in (encoder.IMAGE_RECIPE, encoder.SMALL_RECIPE, encoder.LARGE_RECIPE):
            if table is encoder.IMAGE_RECIPE or key in table:
                table[key] = value
img = read_image(Path(path))
if crop == "1":
    y, x = (img.height - 256) // 2, (img.width - 384) // 2
    img = Raster(np.ascontiguousarray(img.pixels[y:y + 256, x:x + 384]), img.bit_depth)
opts = EncodeOptions(preset=preset) if rate == "q" else EncodeOptions(bpp=float(rate), preset=preset)
start = time.perf_counter()
s = encode_raster(img, opts).stats
print(json.dumps({"bpp": s["bpp"], "psnr": s["psnr"], "steps": s.get("iterations"),
                  "scale": s.get("latent_scale"), "seconds": time.perf_counter() - start}))
"""


def run_pair(path: Path, rate: str, preset: str, crop: bool, serial: bool, recipes: tuple[str, str]) -> list[dict]:
    root = Path(__file__).resolve().parents[1]
    cmds = [[sys.executable, "-c", CHILD, str(path), rate, preset, r, "1" if crop else "0"] for r in recipes]
    if serial:
        done = [subprocess.run(c, capture_output=True, text=True, cwd=root) for c in cmds]
        outs = [(d.returncode, d.stdout, d.stderr) for d in done]
    else:
        env = dict(os.environ, OMP_NUM_THREADS="1")  # one core each
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root, env=env)
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


def cell(r: dict) -> str:
    """dB @ bpp (steps), and the rate fit's rescaling (its fallback) where it took it."""
    scaled = f", rescaled x{r['scale']:.3f}" if r.get("scale") not in (None, 1.0) else ""
    return f"{r['psnr']:.2f} @ {r['bpp']:.3f} ({r['steps']}{scaled})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="kodim05,kodim19,kodim23", help="Kodak names (tuning images)")
    ap.add_argument("--image", type=Path, default=None, help="one image file instead of --images")
    ap.add_argument("--rates", default="0.5,1.0", help="bpp targets, or q for the default -q 75")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--crop", action="store_true", help="the 384x256 centre crop of each image")
    ap.add_argument("--serial", action="store_true", help="one encode at a time instead of the pair side by side")
    ap.add_argument("--before", default="{}", help="IMAGE_RECIPE changes of the first encode (JSON)")
    ap.add_argument("--after", default="{}", help="IMAGE_RECIPE changes of the second encode (JSON)")
    args = ap.parse_args()
    for r in (args.before, args.after):
        if not isinstance(json.loads(r), dict):
            raise SystemExit(f"expected a JSON object, got {r}")
    paths = [args.image] if args.image else kodak(args.images.split(","))
    print("command: python " + " ".join(sys.argv))
    print(f"preset {args.preset}; before {args.before}, after {args.after}")
    print("| image | target | before: dB @ bpp (steps) | after: dB @ bpp (steps) | gain (dB) |")
    print("|---|---|---|---|---|", flush=True)
    gains = []
    for path in paths:
        for rate in args.rates.split(","):
            off, on = run_pair(path, rate, args.preset, args.crop, args.serial, (args.before, args.after))
            gains.append(on["psnr"] - off["psnr"])
            name = path.stem + (" crop" if args.crop else "")
            print(f"| {name} | {rate} | {cell(off)} | {cell(on)} | {gains[-1]:+.2f} |", flush=True)
    print(f"mean gain {sum(gains) / len(gains):+.2f} dB over {len(gains)} cells")


if __name__ == "__main__":
    main()
