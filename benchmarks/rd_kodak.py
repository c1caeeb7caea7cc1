"""Rate-distortion on Kodak: asmr at target rates against JPEG, WebP and AVIF (Pillow) at the
same bpp, measured in the same run, with the published anchors and BD-rates beside them.

    python benchmarks/rd_kodak.py                      # quick subset: kodim04, 08, 19, 23
    python benchmarks/rd_kodak.py --all                # all 24 images (hours on 2 cores)
    python benchmarks/rd_kodak.py --split tuning       # the 19 images tuning may look at
    python benchmarks/rd_kodak.py --split held-out     # kodim02, 07, 12, 17, 21 (also: --held-out)
    python benchmarks/rd_kodak.py --images 1,23 --rates 0.5 --preset fast
    python benchmarks/rd_kodak.py --all --resume       # go on from benchmarks/out/rd_kodak.jsonl
    python benchmarks/rd_kodak.py --all --resume --out runs/v4.jsonl   # another log

Held-out images: the project keeps kodim02, 07, 12, 17 and 21 out of any tuning (choice
of defaults, presets, learning rates, ...). Tune on `--split tuning` (or the quick subset,
which lies inside it) and run `--split held-out` only to report; `--images` overrides
`--split`, `--all` is `--split all`.

Each asmr point is one `asmr encode IMAGE --bpp X --json --preset P` process (the console
script beside this Python, else `python -m asmr_cli`); its file is then decoded with
`asmr decode` and the PSNR measured here on the decoded pixels (the encoder's own figure
is kept as psnr_reported). bpp = file bytes * 8 / (H * W); PSNR per image on 8-bit RGB,
averaged over images. JPEG/WebP PSNR at each image's achieved asmr rate is interpolated
between the two Pillow quality settings that bracket it.

BD-rate (Bjontegaard, VCEG-M33; common.bd_rate) of asmr against JPEG and WebP: per image,
asmr's points at the requested rates against the codec's whole quality sweep (1-100),
averaged over images, and on the mean curves (asmr: mean bpp and PSNR per target rate;
JPEG/WebP: mean bpp and PSNR per quality setting). Positive = asmr needs that many percent
more bits than the other codec for the same PSNR. The integral runs only over the PSNR
range both curves reach, which the report prints: WebP's lowest quality is already near
30 dB on many images, so against WebP the range can be narrow or empty (then no BD-rate).
It needs at least two rates.

Every measured row (asmr points, and each image's JPEG/WebP sweep) is appended to the log
(--out, default benchmarks/out/rd_kodak.jsonl) as it is made; --resume reuses the asmr rows
there for the same preset and iterations, and the sweeps for the same Pillow version,
instead of measuring again, so a long run can be split over several sittings (clear the
log when the encoder changes).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KODAK, OUT, at_bpp, bd_rate, kodak, markdown_table, pillow_sweep  # noqa: E402

from asmr_cli.core.metrics import psnr  # noqa: E402

QUICK = ["04", "08", "19", "23"]
HELD_OUT = ["02", "07", "12", "17", "21"]
SPLITS = {
    "held-out": HELD_OUT,
    "tuning": [f"{i:02d}" for i in range(1, 25) if f"{i:02d}" not in HELD_OUT],
    "all": [f"{i:02d}" for i in range(1, 25)],
}
ANCHORS = {  # ../shared/docs/anchors.md: PSNR at 0.25 / 0.5 / 1.0 bpp
    "COIN": (25.9, 27.8, 30.0),
    "Struempler 2022 (8-bit)": (27.9, 30.1, None),
    "JPEG (published)": (24.7, 29.0, 32.6),
    "WebP (published)": (28.6, 31.3, 35.1),
    "JPEG 2000": (28.6, 31.3, 34.7),
    "BPG": (30.3, 33.3, 37.2),
    "Cool-chic 5": (31.5, 34.7, 39.1),
    # Not in anchors.md: figures given with the task that added this line, not checked
    # against the Cool-chic paper's result files.
    "Cool-chic 1": (29.3, 32.3, 36.5),
}
ANCHOR_RATES = (0.25, 0.5, 1.0)
BESIDE = {  # anchors printed in the per-rate table, beside the codec they belong with
    "asmr": ["COIN", "Cool-chic 1"],
    "jpeg": ["JPEG (published)"],
    "webp": ["WebP (published)"],
    "avif": [],
}


def beside(group: str, rate: float) -> str:
    """The published PSNR at this rate for the anchors shown beside a codec's row."""
    parts = [(name.replace(" (published)", ""), anchor(name, rate)) for name in BESIDE[group]]
    return ", ".join(f"{name} {_fmt(v, 1)}" for name, v in parts)
FORMATS = ("JPEG", "WEBP", "AVIF")  # Pillow >= 11.2 has AVIF (libavif); a build without it is skipped


def comma_list(values: list[str] | None) -> list[str]:
    """`--images 1,2,3`, `--images 1 2 3` and mixes of both."""
    return [v for item in values or [] for v in item.split(",") if v.strip()]


def anchor(name: str, rate: float) -> float | None:
    for r, v in zip(ANCHOR_RATES, ANCHORS[name]):
        if math.isclose(r, rate):
            return v
    return None


def asmr_command() -> list[str]:
    script = Path(sys.executable).parent / "asmr"
    if script.exists():
        return [str(script)]
    found = shutil.which("asmr")
    return [found] if found else [sys.executable, "-m", "asmr_cli"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", help="image numbers, e.g. 1,4,23 or 1 4 23 (overrides --split)")
    ap.add_argument("--split", choices=sorted(SPLITS), help="held-out: kodim02, 07, 12, 17, 21; "
                    "tuning: the other 19; all: 24 (default: the quick subset 04, 08, 19, 23)")
    ap.add_argument("--held-out", dest="split", action="store_const", const="held-out",
                    help="the same as --split held-out")
    ap.add_argument("--all", dest="split", action="store_const", const="all", help="the same as --split all")
    ap.add_argument("--rates", nargs="+", default=["0.25,0.5,1.0"], help="target bpp, e.g. 0.25,0.5,1.0")
    ap.add_argument("--preset", default="default", help="passed to `asmr encode --preset`")
    ap.add_argument("--iters", type=int, default=None, help="passed to `asmr encode --iters`")
    ap.add_argument("--plot", default=str(OUT / "rd_kodak.png"))
    ap.add_argument("--resume", action="store_true", help="reuse rows already in the log")
    ap.add_argument("--out", "--log", dest="log", default=str(OUT / "rd_kodak.jsonl"),
                    help="JSON-lines log the rows are appended to (and --resume reads)")
    args = ap.parse_args()
    try:
        args.rates = [float(r) for r in comma_list(args.rates)]
    except ValueError:
        ap.error(f"--rates: numbers expected, got {' '.join(args.rates)}")
    if not args.rates or min(args.rates) <= 0:
        ap.error("--rates: positive numbers expected")

    if args.images:
        names, selection = comma_list(args.images), "--images"
    elif args.split:
        names, selection = SPLITS[args.split], f"split {args.split}"
    else:
        names, selection = QUICK, "quick subset"
    if not KODAK.is_dir():
        print(f"Kodak images not found under {KODAK}: nothing to measure (skipped).")
        return 0
    try:
        paths = kodak(names)
    except ValueError:
        ap.error(f"--images: image numbers expected, got {' '.join(args.images)}")
    missing = sorted(set(f"kodim{int(n):02d}" if not n.startswith("kodim") else n for n in names)
                     - {p.stem for p in paths})
    if missing:
        print(f"not found under {KODAK}, left out: {', '.join(missing)}")
    if not paths:
        print("no images to measure (skipped).")
        return 0

    from PIL import Image, features
    from PIL import __version__ as pillow_version

    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    done, swept = {}, {}
    if args.resume and log.exists():
        for line in log.read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("kind") == "sweep":
                if r.get("pillow") == pillow_version:
                    swept[(r["image"], r["format"])] = [tuple(p) for p in r["points"]]
            elif r.get("preset") == args.preset and r.get("iters") == args.iters:
                done[(r["image"], r["target"])] = r

    def append(row: dict) -> None:
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")

    asmr = asmr_command()
    formats = [f for f in FORMATS if f != "AVIF" or features.check("avif")]
    rows, sweeps, failed = [], {}, []
    with tempfile.TemporaryDirectory(prefix="rd_kodak_") as tmp:
        for path in paths:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            for fmt in formats:
                if (path.stem, fmt) not in swept:
                    swept[(path.stem, fmt)] = pillow_sweep(rgb, fmt)
                    append({"kind": "sweep", "image": path.stem, "format": fmt, "pillow": pillow_version,
                            "points": swept[(path.stem, fmt)]})
                sweeps[(path.stem, fmt)] = swept[(path.stem, fmt)]
            for rate in args.rates:
                if (path.stem, rate) in done:
                    rows.append(done[(path.stem, rate)])
                    continue
                row = encode_point(asmr, path, rgb, rate, args, Path(tmp))
                if row is None:
                    failed.append(f"{path.stem}@{rate}")
                    continue
                for fmt in formats:
                    b, p, q = at_bpp(sweeps[(path.stem, fmt)], row["bpp"])
                    row[f"{fmt.lower()}_bpp"], row[f"{fmt.lower()}_psnr"], row[f"{fmt.lower()}_q"] = b, p, q
                rows.append(row)
                print(json.dumps(row), flush=True)
                append(row)
    (OUT / "rd_kodak.json").write_text(json.dumps(rows, indent=1))
    print(f"\nimages ({selection}, {len(paths)}): {', '.join(p.stem for p in paths)}")
    if failed:
        print(f"failed encodes (not counted, not logged): {', '.join(failed)}")
    if rows:
        report(rows, sweeps, args, [p.stem for p in paths])
        plot(rows, args.plot)
    return 1 if failed else 0


def encode_point(asmr: list[str], path: Path, rgb: np.ndarray, rate: float, args, tmp: Path) -> dict | None:
    """One `asmr encode --bpp RATE --json` process, then `asmr decode` of its file; the row,
    or None (with the error printed) when either command fails."""
    from PIL import Image

    coded, decoded = tmp / f"{path.stem}_{rate}.asmr", tmp / f"{path.stem}_{rate}.png"
    cmd = [*asmr, "encode", str(path), "-o", str(coded), "-f", "--quiet", "--json",
           "--bpp", str(rate), "--preset", args.preset, "--device", "cpu"]
    if args.iters is not None:
        cmd += ["--iters", str(args.iters)]
    t0 = time.perf_counter()
    enc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if enc.returncode != 0:
        print(f"{path.stem} @ {rate} bpp: `{' '.join(cmd)}` exited {enc.returncode}: "
              f"{enc.stderr.strip()[-2000:]}", file=sys.stderr)
        return None
    try:
        stats = json.loads(enc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"{path.stem} @ {rate} bpp: no JSON on stdout: {enc.stdout[-500:]!r}", file=sys.stderr)
        return None
    dec = subprocess.run([*asmr, "decode", str(coded), "-o", str(decoded), "-f"], capture_output=True, text=True)
    if dec.returncode != 0:
        print(f"{path.stem} @ {rate} bpp: decode exited {dec.returncode}: {dec.stderr.strip()[-2000:]}",
              file=sys.stderr)
        return None
    out = np.asarray(Image.open(decoded).convert("RGB"))
    measured = psnr(rgb, out)
    if stats.get("psnr") is not None and abs(stats["psnr"] - measured) > 0.01:
        print(f"warning: {path.stem} @ {rate}: the encoder reported {stats['psnr']:.3f} dB, "
              f"the decoded file measures {measured:.3f} dB (the measured value is used)", file=sys.stderr)
    nbytes = coded.stat().st_size
    return {"image": path.stem, "target": rate, "bytes": nbytes, "bpp": nbytes * 8 / (rgb.shape[0] * rgb.shape[1]),
            "psnr": measured, "psnr_reported": stats.get("psnr"), "psnr_unquantised": stats.get("psnr_unquantised"),
            "seconds": stats.get("encode_seconds"), "wall_seconds": wall, "iterations": stats.get("iterations"),
            "hidden": stats.get("hidden"), "macs": stats.get("macs_per_pixel"),
            "latent_scale": stats.get("latent_scale"), "preset": args.preset, "iters": args.iters}


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def _fmt(v: float, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def report(rows: list[dict], sweeps: dict, args, images: list[str]) -> None:
    table = []
    for rate in args.rates:
        rs = [r for r in rows if math.isclose(r["target"], rate)]
        if not rs:
            continue
        dev = [abs(r["bpp"] / rate - 1) * 100 for r in rs]
        secs = [r["seconds"] for r in rs if r.get("seconds") is not None]
        qloss = _mean(r.get("psnr_unquantised") for r in rs) - _mean(r["psnr"] for r in rs)
        # the rate fit's fallback: latents rescaled after training (requantised; costs quality)
        rescaled = sum(1 for r in rs if r.get("latent_scale") not in (None, 1.0))
        table.append(["asmr", rate, len(rs), _fmt(_mean(r["bpp"] for r in rs), 3),
                      _fmt(_mean(r["psnr"] for r in rs)), beside("asmr", rate), _fmt(qloss),
                      f"{np.mean(dev):.1f} / {np.max(dev):.1f}",
                      f"{np.mean(secs):.1f} / {np.max(secs):.1f}" if secs else "-",
                      _fmt(_mean(r.get("macs") for r in rs), 0), str(rescaled)])
        for fmt, label in (("jpeg", "JPEG (Pillow, same run)"), ("webp", "WebP (Pillow, same run)"),
                           ("avif", "AVIF (Pillow, same run)")):
            if not all(f"{fmt}_psnr" in r for r in rs):
                continue
            table.append([label, rate, len(rs), _fmt(_mean(r[f"{fmt}_bpp"] for r in rs), 3),
                          _fmt(_mean(r[f"{fmt}_psnr"] for r in rs)), beside(fmt, rate), "", "", "", "", ""])
    print(f"\n## Kodak rate-distortion ({len(images)} images, preset {args.preset}"
          f"{', iters ' + str(args.iters) if args.iters else ''})\n")
    print(markdown_table(["codec", "target bpp", "images", "mean bpp", "mean PSNR (dB)",
                          "published PSNR at the target (dB)", "quant. loss (dB)", "rate error % (mean / max)",
                          "encode s (mean / max)", "MAC/px", "rescaled"],
                         table))
    print("\nPublished: mean over all 24 Kodak images (COIN, Cool-chic 1 beside asmr; Pillow's JPEG and WebP "
          "as published beside the same-run rows); the measured rows are over the images above.")
    print("\n" + "\n".join(bd_lines(rows, sweeps, args.rates)))
    print("\nPublished anchors (anchors.md; Cool-chic 1 is not in it), PSNR at 0.25 / 0.5 / 1.0 bpp:\n")
    print(markdown_table(["codec", "0.25", "0.5", "1.0"],
                         [[k, *[_fmt(v, 1) for v in vals]] for k, vals in ANCHORS.items()]))


def bd_lines(rows: list[dict], sweeps: dict, rates: list[float]) -> list[str]:
    """BD-rate of asmr against JPEG and WebP: per image (averaged) and on the mean curves."""
    if len(rates) < 2:
        return ["BD-rate: needs at least two rates (--rates), not computed."]
    by_image: dict[str, list[dict]] = {}
    for r in rows:
        if any(math.isclose(r["target"], t) for t in rates):
            by_image.setdefault(r["image"], []).append(r)
    mean_asmr = [(_mean(r["bpp"] for r in rows if math.isclose(r["target"], t)),
                  _mean(r["psnr"] for r in rows if math.isclose(r["target"], t))) for t in rates]
    mean_asmr = [(b, p) for b, p in mean_asmr if not math.isnan(b)]
    lines = ["BD-rate of asmr (VCEG-M33, log-rate cubic in PSNR fitted on the points near the shared PSNR "
             "range; positive = asmr needs more bits for the same PSNR):", ""]
    for fmt, label in (("JPEG", "JPEG (Pillow, same run)"), ("WEBP", "WebP (Pillow, same run)"),
                       ("AVIF", "AVIF (Pillow, same run)")):
        if not all((image, fmt) in sweeps for image in by_image):
            continue
        per, per_global, widths, without = [], [], [], []
        for image, rs in sorted(by_image.items()):
            if len(rs) < 2:
                without.append(image)
                continue
            b, p = [r["bpp"] for r in rs], [r["psnr"] for r in rs]
            sb, sp = [x[0] for x in sweeps[(image, fmt)]], [x[1] for x in sweeps[(image, fmt)]]
            value = bd_rate(sb, sp, b, p, local=True)
            if math.isnan(value):
                without.append(image)
                continue
            per.append(value)
            per_global.append(bd_rate(sb, sp, b, p))
            widths.append(min(max(p), max(sp)) - max(min(p), min(sp)))
        images = sorted(by_image)
        qualities = sorted({x[2] for im in images for x in sweeps[(im, fmt)]})
        mean_sweep = []
        for q in qualities:
            pts = [x for im in images for x in sweeps[(im, fmt)] if x[2] == q]
            mean_sweep.append((np.mean([x[0] for x in pts]), np.mean([x[1] for x in pts])))
        mb, mp = [x[0] for x in mean_asmr], [x[1] for x in mean_asmr]
        sb, sp = [x[0] for x in mean_sweep], [x[1] for x in mean_sweep]
        on_mean = bd_rate(sb, sp, mb, mp, local=True) if len(mean_asmr) >= 2 else float("nan")
        on_mean_global = bd_rate(sb, sp, mb, mp) if len(mean_asmr) >= 2 else float("nan")
        lo, hi = max(min(mp, default=0), min(sp)), min(max(mp, default=0), max(sp))
        lines.append(
            f"- against {label}: per image {_fmt(_mean(per), 1)}% (mean over {len(per)} of {len(by_image)} "
            f"images; median {_fmt(float(np.median(per)) if per else None, 1)}%, shared PSNR range "
            f"{_fmt(_mean(widths))} dB wide on average"
            f"{'; none shared or under 2 points: ' + ', '.join(without) if without else ''}); "
            f"mean curves {_fmt(on_mean, 1)}% over {_fmt(lo)}-{_fmt(hi)} dB"
            f"{'' if hi > lo else ' (no shared range)'}. One cubic over the whole sweep instead: "
            f"{_fmt(_mean(per_global), 1)}% / {_fmt(on_mean_global, 1)}%.")
    return lines


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
                                 ("WebP (same run)", "webp_bpp", "webp_psnr", "^--"),
                                 ("AVIF (same run)", "avif_bpp", "avif_psnr", "v--")]:
        if not all(kb in r for r in rows):
            continue
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
    sys.exit(main())
