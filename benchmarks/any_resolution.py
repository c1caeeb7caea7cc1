"""Decode at other resolutions: the network's own upscaling against bicubic on the native
decode, the seams at block boundaries, and the low-passed downscale.

For each Kodak image and factor f (2, 4): area-downsample by f -> encode -> decode at the
original size (network) and bicubic-upsample the native decode (Pillow) -> PSNR against
the original. Seam ratio: mean absolute step across finest-block boundaries over the mean
step inside blocks (both axes, all channels); the original image's ratio at the same
positions is the reference. Downscale: the f = 2 file decoded at 0.5x against the
area-downsampled original, next to area-downsampling (Pillow BOX) the native decode.

    python benchmarks/any_resolution.py               # quick: kodim03 and kodim23
    python benchmarks/any_resolution.py --all         # the 24 images
    python benchmarks/any_resolution.py --iters 800   # shorter fits (say so when quoting)

Prints a markdown table; --examples DIR writes PNG crops (network 2x, bicubic, original).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from asmr_cli.api import EncodeOptions, encode_raster, formats, render_image
from asmr_cli.coordinate import fit as fit_module
from asmr_cli.coordinate import resample
from asmr_cli.core.metrics import psnr
from asmr_cli.io.media import Raster
from asmr_cli.latent import format as fmt3

KODAK = Path("/work/shared/data/kodak")
QUICK = ["kodim03", "kodim23"]


def area_down(img: np.ndarray, f: int) -> np.ndarray:
    """Area (box) downsampling by an integer factor; the sizes must divide (Kodak: 768x512)."""
    return np.asarray(Image.fromarray(img).reduce(f))


def resize(img: np.ndarray, w: int, h: int, method) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), method))


def seam_ratio(img: np.ndarray, bases: tuple[int, int], factor: float) -> float:
    """Mean |step| across finest-block boundaries / mean |step| inside blocks, both axes."""
    x = img.astype(np.float64)
    across, inside = [], []
    for axis, base in enumerate(bases):
        step = np.abs(np.diff(x, axis=axis))  # step j sits between samples j and j + 1
        n = step.shape[axis]
        period = base * factor
        edges = np.round(np.arange(period, n + 1, period)).astype(int) - 1
        edges = edges[(edges >= 0) & (edges < n)]
        mask = np.zeros(n, bool)
        mask[edges] = True
        across.append(np.compress(mask, step, axis=axis).ravel())
        inside.append(np.compress(~mask, step, axis=axis).ravel())
    return float(np.concatenate(across).mean() / np.concatenate(inside).mean())


class Encoded:
    def __init__(self, data: bytes, stats: dict):
        self.data, self.stats = data, stats


def encode_cached(low: np.ndarray, key: str, preset: str, iters: int | None, cache: Path | None):
    """Encode (or reuse a file from --cache): decode-side experiments need not refit."""
    if cache is not None and (cache / f"{key}.asmr").exists():
        data = (cache / f"{key}.asmr").read_bytes()
        return Encoded(data, {"bpp": len(data) * 8 / (low.shape[0] * low.shape[1])}), 0.0
    t0 = time.perf_counter()
    res = encode_raster(Raster(low, 8), EncodeOptions(preset=preset, iters=iters, device="cpu"))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{key}.asmr").write_bytes(res.data)
    return res, time.perf_counter() - t0


def run_image(path: Path, factors: list[int], iters: int | None, preset: str, examples: Path | None,
              cache: Path | None = None, tag: str = "", crop: tuple[int, int, int] | None = None) -> list[dict]:
    orig = np.asarray(Image.open(path).convert("RGB"))
    if crop is not None:  # (x, y, side): a square of the original, for full-effort fits on a slow machine
        orig = orig[crop[1]:crop[1] + crop[2], crop[0]:crop[0] + crop[2]]
        tag = f"{tag}-crop{crop[0]}_{crop[1]}_{crop[2]}"
    h, w = orig.shape[:2]
    rows = []
    for f in factors:
        low = area_down(orig, f)
        res, enc_s = encode_cached(low, f"{path.stem}-x{f}-{preset}-{iters}{tag}", preset, iters, cache)
        header = formats.loads(res.data).header
        # seams: the coordinate network's last-level blocks; the latent pyramid has none, so
        # its level-1 cells (2 x 2 pixels), where the last upsampling changes neighbours
        latent = isinstance(header, fmt3.LatentHeader)
        bases = (2, 2) if latent else tuple(b[-1] for b in header.bases)
        native = render_image(res.data).pixels
        t0 = time.perf_counter()
        net = render_image(res.data, size=(w, h)).pixels
        up_s = time.perf_counter() - t0
        bic = resize(native, w, h, Image.BICUBIC)
        row = dict(image=path.stem, factor=f, native_psnr=psnr(low, native), bpp=res.stats["bpp"],
                   net_psnr=psnr(orig, net), bicubic_psnr=psnr(orig, bic),
                   seam_orig=seam_ratio(orig, bases, f), seam_net=seam_ratio(net, bases, f),
                   seam_bicubic=seam_ratio(bic, bases, f), encode_s=enc_s, upscale_s=up_s)
        if f == 2:
            ref = area_down(orig, 2 * f)
            t0 = time.perf_counter()
            down = render_image(res.data, scale=0.5).pixels
            row["down_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            render_image(res.data)
            row["native_s"] = time.perf_counter() - t0
            row["down_psnr"] = psnr(ref, down)
            row["down_area_psnr"] = psnr(ref, resize(native, ref.shape[1], ref.shape[0], Image.BOX))
            if examples is not None:
                write_example(examples, path.stem, orig, net, bic, tag)
        rows.append(row)
        print(f"  {path.stem} x{f}: net {row['net_psnr']:.2f} dB, bicubic {row['bicubic_psnr']:.2f} dB, "
              f"seams {row['seam_net']:.3f} (orig {row['seam_orig']:.3f}), encode {enc_s:.0f} s",
              file=sys.stderr)
    return rows


def write_example(folder: Path, name: str, orig: np.ndarray, net: np.ndarray, bic: np.ndarray,
                  tag: str = "", crop: int = 128) -> None:
    """A crop around the image's busiest 128x128 window: network | bicubic | original."""
    g = orig.astype(np.float64).mean(axis=2)
    best, at = -1.0, (0, 0)
    for y in range(0, g.shape[0] - crop + 1, 32):
        for x in range(0, g.shape[1] - crop + 1, 32):
            v = float(g[y:y + crop, x:x + crop].std())
            if v > best:
                best, at = v, (y, x)
    y, x = at
    folder.mkdir(parents=True, exist_ok=True)
    for label, img in (("network", net), ("bicubic", bic), ("original", orig)):
        Image.fromarray(img[y:y + crop, x:x + crop]).save(folder / f"any-resolution-{name}{tag}-x2-{label}.png",
                                                           optimize=True)


def table(rows: list[dict]) -> str:
    out = ["| image | x | native dB | bpp | network dB | bicubic dB | seams network / bicubic / original "
           "| 0.5x dB | area of native dB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        down = (f"{r['down_psnr']:.2f} | {r['down_area_psnr']:.2f}" if "down_psnr" in r else " | ")
        out.append(f"| {r['image']} | {r['factor']} | {r['native_psnr']:.2f} | {r['bpp']:.3f} | {r['net_psnr']:.2f} "
                   f"| {r['bicubic_psnr']:.2f} | {r['seam_net']:.3f} / {r['seam_bicubic']:.3f} / "
                   f"{r['seam_orig']:.3f} | {down} |")
    for f in sorted({r["factor"] for r in rows}):
        sel = [r for r in rows if r["factor"] == f]

        def mean(key, sel=sel):
            return float(np.mean([r[key] for r in sel if key in r]))

        seam = mean("seam_net") / mean("seam_orig") - 1
        down = (f"{mean('down_psnr'):.2f} | {mean('down_area_psnr'):.2f}" if f == 2 else " | ")
        out.append(f"| **mean** | {f} | {mean('native_psnr'):.2f} | {mean('bpp'):.3f} | **{mean('net_psnr'):.2f}** "
                   f"| {mean('bicubic_psnr'):.2f} | {mean('seam_net'):.3f} / {mean('seam_bicubic'):.3f} / "
                   f"{mean('seam_orig'):.3f} ({seam:+.1%}) | {down} |")
    d2 = [r for r in rows if "down_s" in r]
    if d2:
        out.append("")
        out.append(f"decode time, mean: native {np.mean([r['native_s'] for r in d2]):.3f} s, "
                   f"0.5x {np.mean([r['down_s'] for r in d2]):.3f} s, "
                   f"2x {np.mean([r['upscale_s'] for r in d2]):.3f} s")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="all 24 Kodak images (default: kodim03 and kodim23)")
    ap.add_argument("--images", nargs="*", help="Kodak names, e.g. kodim01 kodim23")
    ap.add_argument("--factors", type=int, nargs="*", default=[2, 4])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--iters", type=int, default=None, help="training steps (default: the preset's)")
    ap.add_argument("--examples", type=Path, default=None, help="write PNG crops of the 2x decodes here")
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--cache", type=Path, default=None, help="keep encoded files here and reuse them")
    ap.add_argument("--blend", type=float, default=None, help="blend half-width in native pixels (experiments)")
    ap.add_argument("--crop", default=None, help="X,Y,SIDE: use a square of each original")
    ap.add_argument("--halo", type=float, default=0.0, help="train with the opt-in ring loss of this weight")
    args = ap.parse_args()
    if not args.kodak.is_dir():
        print(f"skipped: {args.kodak} not found", file=sys.stderr)
        return
    names = args.images or ([f"kodim{i:02d}" for i in range(1, 25)] if args.all else QUICK)
    if args.blend is not None:
        resample.BLEND = args.blend
    if args.halo:
        # the codec has no option for it (yet): give the encoder's FitConfig the opt-in weight
        fit_module.FitConfig = functools.partial(fit_module.FitConfig, halo=args.halo)
    rows = []
    for name in names:
        rows += run_image(args.kodak / f"{name}.png", args.factors, args.iters, args.preset, args.examples,
                          args.cache, f"-halo{args.halo:g}" if args.halo else "",
                          tuple(int(v) for v in args.crop.split(",")) if args.crop else None)
    print(table(rows))


if __name__ == "__main__":
    main()
