"""Rate-distortion on Kodak: asmr at target rates against JPEG and WebP (Pillow) at the
same bpp, measured in the same run, with the published anchors beside them.

    python benchmarks/rd_kodak.py                 # quick subset: kodim04, 08, 19, 23
    python benchmarks/rd_kodak.py --all           # all 24 images (hours on 2 cores)
    python benchmarks/rd_kodak.py --images 1 23 --rates 0.5 --preset fast
    python benchmarks/rd_kodak.py --all --resume  # go on from benchmarks/out/rd_kodak.jsonl

Every measured row is appended to benchmarks/out/rd_kodak.jsonl as it is made; --resume
reuses the rows there for the same preset and iterations instead of encoding again, so a
long run can be split over several sittings (clear the file when the encoder changes).

PSNR per image on 8-bit RGB, averaged over images; bpp = file bytes * 8 / (H * W).
JPEG/WebP PSNR at each image's achieved asmr rate is interpolated between the two
Pillow quality settings that bracket it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUT, at_bpp, kodak, markdown_table, pillow_sweep  # noqa: E402

from asmr_cli.metrics import psnr  # noqa: E402

QUICK = ["04", "08", "19", "23"]
ANCHORS = {  # ../shared/docs/anchors.md: PSNR at 0.25 / 0.5 / 1.0 bpp
    "COIN": (25.9, 27.8, 30.0),
    "Struempler 2022 (8-bit)": (27.9, 30.1, None),
    "JPEG (published)": (24.7, 29.0, 32.6),
    "WebP (published)": (28.6, 31.3, 35.1),
    "JPEG 2000": (28.6, 31.3, 34.7),
    "BPG": (30.3, 33.3, 37.2),
    "Cool-chic 5": (31.5, 34.7, 39.1),
}
ANCHOR_RATES = (0.25, 0.5, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="all 24 Kodak images")
    ap.add_argument("--images", nargs="*", help="image numbers, e.g. 1 4 23")
    ap.add_argument("--rates", nargs="*", type=float, default=[0.25, 0.5, 1.0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--plot", default=str(OUT / "rd_kodak.png"))
    ap.add_argument("--resume", action="store_true", help="reuse rows already in the log")
    ap.add_argument("--log", default=str(OUT / "rd_kodak.jsonl"), help="rows appended here")
    args = ap.parse_args()

    from asmr_cli.codec import EncodeOptions, decode_bytes, encode_raster
    from asmr_cli.media import read_image

    paths = kodak(None if args.all else (args.images or QUICK))
    if not paths:
        print("Kodak images not found under ../shared/data/kodak: nothing to measure (skipped).")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    log = Path(args.log)
    done = {}
    if args.resume and log.exists():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            if r.get("preset") == args.preset and r.get("iters") == args.iters:
                done[(r["image"], r["target"])] = r
    rows = []
    for path in paths:
        todo = [rate for rate in args.rates if (path.stem, rate) not in done]
        rows += [done[(path.stem, rate)] for rate in args.rates if (path.stem, rate) in done]
        if not todo:
            continue
        raster = read_image(path)
        rgb = raster.pixels
        sweeps = {fmt: pillow_sweep(rgb, fmt) for fmt in ("JPEG", "WEBP")}
        for rate in todo:
            t0 = time.perf_counter()
            res = encode_raster(raster, EncodeOptions(preset=args.preset, bpp=rate, iters=args.iters, device="cpu"))
            secs = time.perf_counter() - t0
            dec = decode_bytes(res.data).pixels
            bpp = len(res.data) * 8 / (raster.width * raster.height)
            row = {"image": path.stem, "target": rate, "bpp": bpp, "psnr": psnr(rgb, dec),
                   "psnr_unquantised": res.stats["psnr_unquantised"], "seconds": secs,
                   "hidden": res.stats["hidden"], "macs": res.stats["macs_per_pixel"],
                   "preset": args.preset, "iters": args.iters}
            for fmt, points in sweeps.items():
                b, p, q = at_bpp(points, bpp)
                row[f"{fmt.lower()}_bpp"], row[f"{fmt.lower()}_psnr"], row[f"{fmt.lower()}_q"] = b, p, q
            rows.append(row)
            print(json.dumps(row), flush=True)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
    (OUT / "rd_kodak.json").write_text(json.dumps(rows, indent=1))
    report(rows, args, len(paths))
    plot(rows, args.plot)


def report(rows: list[dict], args, n_images: int) -> None:
    table = []
    for rate in args.rates:
        rs = [r for r in rows if r["target"] == rate]
        dev = [abs(r["bpp"] / rate - 1) * 100 for r in rs]
        table.append(["asmr", rate, np.mean([r["bpp"] for r in rs]), np.mean([r["psnr"] for r in rs]),
                      np.mean([r["psnr_unquantised"] for r in rs]) - np.mean([r["psnr"] for r in rs]),
                      f"{np.mean(dev):.1f} / {np.max(dev):.1f}", np.mean([r["seconds"] for r in rs]),
                      f"{np.mean([r['macs'] for r in rs]):.0f}"])
        for fmt in ("jpeg", "webp"):
            table.append([f"{fmt.upper()} (Pillow, same run)", rate, np.mean([r[f"{fmt}_bpp"] for r in rs]),
                          np.mean([r[f"{fmt}_psnr"] for r in rs]), "", "", "", ""])
    print(f"\n## Kodak rate-distortion ({n_images} images, preset {args.preset}"
          f"{', iters ' + str(args.iters) if args.iters else ''})\n")
    print(markdown_table(["codec", "target bpp", "mean bpp", "mean PSNR (dB)", "quant. loss (dB)",
                          "rate error % (mean / max)", "encode s", "MAC/px"], table))
    print("\nPublished anchors (anchors.md), PSNR at 0.25 / 0.5 / 1.0 bpp:\n")
    print(markdown_table(["codec", "0.25", "0.5", "1.0"],
                         [[k, *[("-" if v is None else v) for v in vals]] for k, vals in ANCHORS.items()]))


def plot(rows: list[dict], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    rates = sorted({r["target"] for r in rows})

    def curve(key_bpp, key_psnr):
        return ([np.mean([r[key_bpp] for r in rows if r["target"] == t]) for t in rates],
                [np.mean([r[key_psnr] for r in rows if r["target"] == t]) for t in rates])

    fig, ax = plt.subplots(figsize=(7, 5))
    for label, kb, kp, style in [("asmr", "bpp", "psnr", "o-"), ("JPEG (same run)", "jpeg_bpp", "jpeg_psnr", "s--"),
                                 ("WebP (same run)", "webp_bpp", "webp_psnr", "^--")]:
        x, y = curve(kb, kp)
        ax.plot(x, y, style, label=label, linewidth=2 if label == "asmr" else 1)
    for name, vals in ANCHORS.items():
        pts = [(r, v) for r, v in zip(ANCHOR_RATES, vals) if v is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ":", marker=".", alpha=0.6, label=f"{name} (published)"
                if "published" not in name else name)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB), mean over images")
    n = len({r["image"] for r in rows})
    ax.set_title(f"Kodak rate-distortion ({n} images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"\nplot: {path}")


if __name__ == "__main__":
    main()
