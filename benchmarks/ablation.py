"""Ablations of the latent pyramid (format 3) on a centre crop of one Kodak image: one
training run per variant at a fixed lambda and step count, then the rounded latents coded
under the context model (exact bits) and the PSNR of the synthesis on them.

    OMP_NUM_THREADS=1 python benchmarks/ablation.py                       # kodim23, the variants below
    OMP_NUM_THREADS=1 python benchmarks/ablation.py --image kodim04 --iters 500

Variants: default; context width 0 (a static Laplace per grid); MLP width 0 (the linear
path alone); no sampling (every pixel and rate term each step); a tenth / half of the
steps with straight-through rounding. docs/rate-distortion.md quotes its numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import kodak, markdown_table  # noqa: E402

from asmr_cli import image_encoder  # noqa: E402
from asmr_cli.io.media import Raster  # noqa: E402
from asmr_cli.latent.context_model import encode_grids, to_fixed  # noqa: E402
from asmr_cli.latent.fit import LatentFitConfig, choose_lambda, fit_latents  # noqa: E402
from asmr_cli.latent.latents import by_level, synthesize_numpy  # noqa: E402

VARIANTS = {
    "default": {},
    "static Laplace per grid (context width 0)": {"context_hidden": 0},
    "linear path alone (MLP width 0)": {"hidden": 0},
    "no sampling (all pixels and rate terms)": {"pixel_fraction": 1.0, "rate_fraction": 1.0},
    "a tenth of the steps rounded": {"ste_fraction": 0.1},
}


def run(rgb: np.ndarray, bpp: float, iters: int, change: dict) -> tuple[float, float]:
    r = Raster(rgb, 8)
    image = r.as_float()
    n = r.height * r.width
    layout = image_encoder.layout_for(r.height, r.width, 3, "default", None, None)
    layout = dataclasses.replace(layout, **{k: v for k, v in change.items() if k in ("hidden", "context_hidden")})
    lam = choose_lambda(image_encoder.layout_for(r.height, r.width, 3, "default", None, None), image, bpp * n)
    cfg = LatentFitConfig(iters=iters, lam=lam, **{k: v for k, v in change.items() if hasattr(LatentFitConfig, k)})
    res = fit_latents(layout, image, cfg)
    ints = [np.rint(z).astype(np.int64) for z in res.latents]
    bits = sum(32 * c.words.size for c in encode_grids(ints, layout.grids(), to_fixed(res.context)))
    out = synthesize_numpy(layout, res.synthesis, by_level(layout, [np.rint(z) for z in res.latents]))
    mse = np.mean((np.rint(np.clip(out, 0, 1) * 255) / 255 - image) ** 2)
    return bits / n, 10 * math.log10(1 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--bpp", type=float, default=0.5, help="the rate lambda is chosen for (fixed per run)")
    ap.add_argument("--iters", type=int, default=300)
    args = ap.parse_args()
    paths = kodak([args.image])
    if not paths:
        print("Kodak images not found under ../shared/data/kodak (skipped)")
        return
    rgb = np.asarray(Image.open(paths[0]).convert("RGB"))
    h, w = rgb.shape[:2]
    crop = np.ascontiguousarray(rgb[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2])
    rows = []
    for name, change in VARIANTS.items():
        bpp, db = run(crop, args.bpp, args.iters, change)
        print(f"{name}: {bpp:.4f} bpp, {db:.2f} dB", flush=True)
        rows.append([name, round(bpp, 4), round(db, 2)])
    print(markdown_table(["variant", "latent bpp", "PSNR (dB)"], rows))


if __name__ == "__main__":
    main()
