"""Trains the image encoder's learned start (issue 22, item 3): one synthesis and one
context network fitted to a corpus of public photos, shipped in the package as
asmr_cli/latent/starts/start_h16.npz and used as the first state of every format-3 fit
whose networks have its widths (images of 256K pixels and more). The encoder fine-tunes
it per image and the file still carries its own networks: the bitstream is unchanged.

The corpus is the colour photographs bundled in scikit-image 0.26.0's wheel (never Kodak,
never a test image): astronaut, chelsea, coffee, hubble_deep_field, ihc, motorcycle_left,
motorcycle_right, retina (halved), rocket. To redo it:

    pip download scikit-image==0.26.0 --no-deps -d /tmp/skw
    unzip -o /tmp/skw/scikit_image-0.26.0-*.whl 'skimage/data/*' -d /tmp/skw
    OMP_NUM_THREADS=2 python tools/pretrain_start.py /tmp/skw/skimage/data --seconds 420
    OMP_NUM_THREADS=1 python tools/pretrain_start.py /tmp/skw/skimage/data --width 8 --seconds 300
    OMP_NUM_THREADS=1 python tools/pretrain_start.py /tmp/skw/skimage/data --width 4 --seconds 300

Each photo is cut into TILE x TILE tiles, and the tiles train as one collection (format 5's
fit: the networks shared, a latent pyramid per tile) at the lam that puts them at BPP. The
file holds the modulators divided by their levels' gains at that lam (so they apply at any
lam), the hidden layer, the head and the context model's shared layers (each image's
per-grid centre and spread are its own), and is read with numpy alone (no pickle).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asmr_cli.collection.fit import choose_lambda, fit_collection  # noqa: E402
from asmr_cli.latent import start as learned  # noqa: E402
from asmr_cli.latent.fit import LatentFitConfig, level_gains  # noqa: E402
from asmr_cli.latent.latents import Layout  # noqa: E402

PHOTOS = {"astronaut.png": 1, "chelsea.png": 1, "coffee.png": 1, "hubble_deep_field.jpg": 1, "ihc.png": 1,
          "motorcycle_left.png": 1, "motorcycle_right.png": 1, "retina.jpg": 2, "rocket.jpg": 1}  # name: downscale
TILE = 256
BPP = 0.75


def tiles(folder: Path, stride: int = TILE) -> list[np.ndarray]:
    """Every photo's TILE x TILE tiles, `stride` pixels apart."""
    out = []
    for name, down in PHOTOS.items():
        im = Image.open(folder / name).convert("RGB")
        if down > 1:
            im = im.resize((im.width // down, im.height // down), Image.Resampling.LANCZOS)
        a = np.asarray(im, np.float32) / 255.0
        for y in range(0, a.shape[0] - TILE + 1, stride):
            for x in range(0, a.shape[1] - TILE + 1, stride):
                out.append(np.ascontiguousarray(np.moveaxis(a[y:y + TILE, x:x + TILE], -1, 0)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="the folder with the photos (skimage/data)")
    ap.add_argument("--seconds", type=float, default=480.0)
    ap.add_argument("--stride", type=int, default=TILE, help="pixels between tiles (less than TILE: overlapping)")
    ap.add_argument("--width", type=int, choices=learned.WIDTHS, default=16, help="the networks' width")
    ap.add_argument("--out", type=Path, default=None, help="default: the package's start for --width")
    args = ap.parse_args()
    torch.set_num_threads(2 if args.width >= 16 else 1)
    out = args.out if args.out is not None else learned.start_file(args.width)
    images = tiles(args.corpus, args.stride)
    lay = Layout(TILE, TILE, 3, learned.LEVELS, args.width, args.width)
    layouts = [lay] * len(images)
    lam = choose_lambda(lay, layouts, images, BPP * TILE * TILE * len(images))
    cfg = LatentFitConfig(iters=1_000_000, lam=lam, time_limit=args.seconds, seed=0)
    t0 = time.perf_counter()
    fit = fit_collection(lay, layouts, images, cfg)
    gains = level_gains(lay, fit.lam)
    arrays = {f"mod{lv}": fit.synthesis[f"mod{lv}"] / np.float32(gains[lv]) for lv in range(lay.levels)}
    arrays.update({k: fit.synthesis[k] for k in ("b1", "w2", "b2", "head_w", "head_b")})
    arrays.update({k: v for k, v in fit.context.items() if k != "c_grid"})
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    print(f"{len(images)} tiles of {TILE}x{TILE}, lam {fit.lam:.3g}, {fit.iterations} steps in "
          f"{time.perf_counter() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
