"""Ablations of the latent pyramid (format 3) on a centre crop of one Kodak image: one
training run per variant at a fixed lambda and step count, then the rounded latents coded
under the context model (exact bits) and the PSNR of the synthesis on them.

    OMP_NUM_THREADS=1 python benchmarks/ablation.py                       # kodim23, the variants below
    OMP_NUM_THREADS=1 python benchmarks/ablation.py --image kodim04 --iters 500

Variants: default; context width 0 (a static Laplace per grid); MLP width 0 (the linear
path alone); no sampling (every pixel and rate term each step); a tenth / half of the
steps with straight-through rounding. docs/rate-distortion.md quotes its numbers.

The training recipe at equal wall time (issue 22): each variant a whole encode (the image
encoder, --bpp target, its rate fit included) with the same wall-clock cap on the fit, on
centre crops of tuning images (never kodim02, 07, 12, 17, 21); it reports the PSNR of the
file, its bpp, the steps and the rate fit's path (steered: the latents as trained, maybe
pruned; rescaled: the fallback that requantises them):

    OMP_NUM_THREADS=1 python benchmarks/ablation.py --recipe --images kodim05,kodim19,kodim23 --seconds 30
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

from asmr_cli.core.rates import image_target  # noqa: E402
from asmr_cli.io.media import Raster  # noqa: E402
from asmr_cli.latent import encoder as image_encoder  # noqa: E402
from asmr_cli.latent.context_model import encode_grids, to_fixed  # noqa: E402
from asmr_cli.latent.family import check_decode  # noqa: E402
from asmr_cli.latent.fit import LatentFitConfig, choose_lambda, fit_latents  # noqa: E402
from asmr_cli.latent.format import LatentHeader  # noqa: E402
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


# the recipe's parts (LatentFitConfig fields), each on its own and together
RECIPES: dict[str, dict | None] = {
    "v3 (noise, then half the steps rounded)": {},
    "v4 rounding: soft 0.3->0.1, 15% finish, lam steered from 1/4 (3x, aim 1.05)": {
        "soft_rounding": True, "ste_fraction": 0.15, "steer_from": 0.25, "steer_range": 3.0, "steer_aim": 1.05,
        "steer_memory": 0.95},
    "v4 all (the encoder's IMAGE_RECIPE, windows of 2^14 here)": None,
    "soft rounding 0.3->0.1 (half rounded)": {"soft_rounding": True},
    "a short rounding finish (15%)": {"ste_fraction": 0.15},
    "soft rounding + 15% finish": {"soft_rounding": True, "ste_fraction": 0.15},
    "soft rounding + 15% finish, lam steered from half the steps": {"soft_rounding": True, "ste_fraction": 0.15,
                                                                    "steer_from": 0.5},
    "an eighth of the pixels and rate terms a step": {"pixel_fraction": 0.125, "rate_fraction": 0.125},
    "window steps of 2^14 pixels": {"window_pixels": 1 << 14, "steer_memory": 0.95},
    "window steps of 2^15 pixels": {"window_pixels": 1 << 15, "steer_memory": 0.95},
    "window steps of 2^16 pixels": {"window_pixels": 1 << 16, "steer_memory": 0.95},
    "window steps of 2^14 pixels + soft rounding": {"window_pixels": 1 << 14, "steer_memory": 0.95,
                                                    "soft_rounding": True},
    "all: windows of 2^14, soft rounding, 15% finish": {"window_pixels": 1 << 14, "steer_memory": 0.95,
                                                        "soft_rounding": True, "ste_fraction": 0.15},
    "all: windows of 2^15, soft rounding, 15% finish": {"window_pixels": 1 << 15, "steer_memory": 0.95,
                                                        "soft_rounding": True, "ste_fraction": 0.15},
    "all: windows of 2^14, soft rounding, 15% finish, steered from half": {
        "window_pixels": 1 << 14, "steer_memory": 0.95, "soft_rounding": True, "ste_fraction": 0.15,
        "steer_from": 0.5},
}


def encode_variant(rgb: np.ndarray, bpp: float, seconds: float, recipe: dict, preset: str = "default") -> dict:
    """One whole encode (the image encoder with `recipe`), its file decoded."""
    r = Raster(rgb, 8)
    n = r.height * r.width
    layout = image_encoder.layout_for(r.height, r.width, 3, preset, None, None)
    header = LatentHeader((r.height, r.width), 3, 8, layout.levels, layout.hidden, layout.context_hidden)
    target = image_target(n, bpp, None, None, None)
    enc = image_encoder.encode(r.as_float(), header, target, preset, 100000, seconds, 0, recipe=recipe)  # None: own
    decoded = check_decode(enc.data).as_float()
    mse = float(np.mean((decoded - r.as_float()) ** 2))
    return {"psnr": 10 * math.log10(1 / mse), "bpp": len(enc.data) * 8 / n, "steps": enc.iterations,
            "path": "steered" if enc.scale == 1.0 else f"rescaled x{enc.scale:.4f}"}


def crop_of(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2])


def recipe_table(args) -> None:
    wanted = args.variants.split(",") if args.variants else []
    names = [k for k in RECIPES if not wanted or any(k == v[1:] if v.startswith("=") else v in k for v in wanted)]
    images = args.images.split(",")
    held_out = {"kodim02", "kodim07", "kodim12", "kodim17", "kodim21"}
    if held_out & set(images):
        raise SystemExit("the held-out five (kodim02, 07, 12, 17, 21) are not for choosing a recipe")
    crops = {p.stem: (np.asarray(Image.open(p).convert("RGB")) if args.full else crop_of(p)) for p in kodak(images)}
    rows = []
    for name in names:
        results = []
        for image, rgb in crops.items():
            res = encode_variant(rgb, args.bpp, args.seconds, RECIPES[name], args.preset)
            print(f"{name} | {image}: {res}", flush=True)
            results.append(res)
        rows.append([name, round(float(np.mean([x["psnr"] for x in results])), 2),
                     round(float(np.mean([x["bpp"] for x in results])), 3),
                     " / ".join(f"{x['psnr']:.2f}" for x in results),
                     " / ".join(str(x["steps"]) for x in results),
                     ", ".join(sorted({x["path"] for x in results}))])
    print(markdown_table(["recipe", "mean PSNR (dB)", "mean bpp", "per image (" + ", ".join(crops) + ")",
                          "steps", "rate fit"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--bpp", type=float, default=0.5, help="the rate lambda is chosen for (fixed per run)")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--recipe", action="store_true", help="the training recipe's parts at equal wall time")
    ap.add_argument("--images", default="kodim05,kodim19,kodim23", help="--recipe: tuning images")
    ap.add_argument("--seconds", type=float, default=30.0, help="--recipe: the fit's wall-clock cap")
    ap.add_argument("--variants", default="",
                    help="--recipe: only the recipes whose names hold one of these (=NAME: that one)")
    ap.add_argument("--preset", default="default", help="--recipe: the layout's preset")
    ap.add_argument("--full", action="store_true", help="--recipe: whole images instead of centre crops")
    args = ap.parse_args()
    if args.recipe:
        recipe_table(args)
        return
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
