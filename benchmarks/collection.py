"""Collections (format 5) against one file per image and against the usual ways to store
many small images: per-file JPEG and WebP (Pillow, the bytes a person would store,
headers included) and one WebP / AVIF of all tiles laid out as a mosaic. Names count in
every total: per-file codecs pay each file's name; the mosaic pays its names deflated
together, as a collection's index does.

Tiles of 32x32 and 64x64 are cut at fixed positions from the 24 Kodak images and from
frames of the sample clips (/work/shared/data/video/*.mp4). No constant of the
collection code was chosen on these tiles; the held-out Kodak five (02, 07, 12, 17, 21)
appear here only as part of the reported sets.

    OMP_NUM_THREADS=1 python benchmarks/collection.py --json benchmarks/out/collection.json \
        --plot docs/collections.png

PSNR is RGB, the mean over members of each member's PSNR; rates are total bytes * 8 over
the pixels of all members. BD-rates are the collection's against each baseline
(negative: the collection needs fewer bytes for the same mean PSNR). The load average
(/proc/loadavg) is recorded with every timing: this machine is shared.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import KODAK, ROOT, bd_rate, markdown_table  # noqa: E402

from asmr_cli.core.metrics import psnr  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"
HELD_OUT = ("kodim02", "kodim07", "kodim12", "kodim17", "kodim21")


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def pictures(frames_per_clip: int = 4) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) of every Kodak image and a few evenly spaced frames of each clip."""
    from PIL import Image

    out = [(p.stem, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(KODAK.glob("kodim*.png"))]
    import av

    for clip in sorted(VIDEO.glob("*.mp4")):
        with av.open(str(clip)) as c:
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        for t in np.linspace(0, len(frames) - 1, frames_per_clip).astype(int):
            out.append((f"{clip.stem}_f{t:03d}", frames[t]))
    return out


def tiles(pics: list[tuple[str, np.ndarray]], size: int, per_picture: int) -> list[tuple[str, np.ndarray]]:
    """per_picture tiles of size x size from each picture at fixed, spread positions."""
    out = []
    rng = np.random.default_rng(size)
    for name, rgb in pics:
        h, w = rgb.shape[:2]
        for _ in range(per_picture):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            out.append((f"{name}/y{y}_x{x}.png", rgb[y:y + size, x:x + size].copy()))
    return out


def names_bytes(names: list[str]) -> int:
    return len(zlib.compress("\0".join(names).encode(), 9))


def mean_psnr(refs, decs) -> float:
    return float(np.mean([psnr(a, b) for a, b in zip(refs, decs)]))


def pillow_bytes(rgb: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    from PIL import Image

    buf = io.BytesIO()
    kw = {"quality": quality}
    if fmt == "JPEG":
        kw["optimize"] = True
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    data = buf.getvalue()
    return len(data), np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


QUALITIES = (2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def per_file_curve(ts, fmt: str) -> list[dict]:
    pixels = sum(t.shape[0] * t.shape[1] for _, t in ts)
    out = []
    for q in QUALITIES:
        total, decs = 0, []
        for name, t in ts:
            n, d = pillow_bytes(t, fmt, q)
            total += n + len(name.encode())
            decs.append(d)
        out.append({"quality": q, "bytes": total, "bpp": total * 8 / pixels,
                    "psnr": mean_psnr([t for _, t in ts], decs)})
    return out


def mosaic_curve(ts, fmt: str) -> list[dict]:
    size = ts[0][1].shape[0]
    cols = math.ceil(math.sqrt(len(ts)))
    rows = math.ceil(len(ts) / cols)
    canvas = np.zeros((rows * size, cols * size, 3), np.uint8)
    for i, (_, t) in enumerate(ts):
        r, c = divmod(i, cols)
        canvas[r * size:(r + 1) * size, c * size:(c + 1) * size] = t
    pixels = len(ts) * size * size
    extra = names_bytes([n for n, _ in ts]) + 4  # the names and the grid's shape
    out = []
    for q in QUALITIES:
        n, d = pillow_bytes(canvas, fmt, q)
        decs = [d[(i // cols) * size:(i // cols + 1) * size, (i % cols) * size:(i % cols + 1) * size]
                for i in range(len(ts))]
        out.append({"quality": q, "bytes": n + extra, "bpp": (n + extra) * 8 / pixels,
                    "psnr": mean_psnr([t for _, t in ts], decs)})
    return out


def collection_curve(ts, rates: list[float], time_limit: float | None, preset: str) -> list[dict]:
    from asmr_cli.api import EncodeOptions, decode_member, encode_collection, open_collection
    from asmr_cli.io.media import Raster

    named = [(n, Raster(t, 8)) for n, t in ts]
    pixels = sum(t.shape[0] * t.shape[1] for _, t in ts)
    out = []
    for bpp in rates:
        t0 = time.perf_counter()
        res = encode_collection(named, EncodeOptions(bpp=bpp, preset=preset, time_limit=time_limit))
        seconds = time.perf_counter() - t0
        la = load()
        c = open_collection(res.data)
        decs = [decode_member(res.data, n, collection=c).pixels for n, _ in ts]
        # one member decoded alone, in process, from the bytes (parse, networks, its stream, synthesis)
        name = ts[len(ts) // 2][0]
        best = min(_timed(lambda d=res.data, n=name: decode_member(d, n)) for _ in range(5))
        out.append({"target_bpp": bpp, "bytes": len(res.data), "bpp": len(res.data) * 8 / pixels,
                    "psnr": mean_psnr([t for _, t in ts], decs), "encode_seconds": round(seconds, 1),
                    "iterations": res.stats["iterations"], "load": la, "member_decode_ms": round(best * 1000, 1),
                    "network_bytes": len(c.records), "index_bytes": c.header.index_bytes,
                    "stream_bytes": 4 * sum(m.words for m in c.members), "data": res.data})
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def per_file_asmr(ts, bpps: list[float], subset: int) -> list[dict]:
    """One format-3 file per tile (preset fast) on the first `subset` tiles; the totals are
    the subset's mean bytes per tile (its name included) times the number of tiles."""
    from asmr_cli.api import EncodeOptions, decode_bytes, encode_raster
    from asmr_cli.io.media import Raster

    part = ts[:subset]
    pixels = sum(t.shape[0] * t.shape[1] for _, t in ts)
    out = []
    for bpp in bpps:
        t0 = time.perf_counter()
        sizes, decs = [], []
        for name, t in part:
            res = encode_raster(Raster(t, 8), EncodeOptions(bpp=bpp, preset="fast"))
            sizes.append(len(res.data) + len(name.encode()))
            decs.append(decode_bytes(res.data).pixels)
        total = float(np.mean(sizes)) * len(ts)
        out.append({"target_bpp": bpp, "bytes": int(total), "bpp": total * 8 / pixels,
                    "psnr": mean_psnr([t for _, t in part], decs), "measured_on": len(part),
                    "encode_seconds_per_file": round((time.perf_counter() - t0) / len(part), 2), "load": load()})
    return out


def cli_member_decode(data: bytes, name: str) -> float:
    """`asmr decode set.asmr --member NAME -o x.png`, the whole process, best of 3."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "set.asmr"
        src.write_bytes(data)
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from asmr_cli.cli.entry import run; run()", "decode", str(src),
                            "--member", name, "-o", str(Path(d) / "x.png"), "-f"], check=True)
            best = min(best, time.perf_counter() - t0)
    return best


def add_timing(data: bytes, rgb: np.ndarray) -> dict:
    from asmr_cli.api import EncodeOptions, add_member
    from asmr_cli.io.media import Raster

    t0 = time.perf_counter()
    res = add_member(data, "added/new.png", Raster(rgb, 8), EncodeOptions())
    return {"seconds": round(time.perf_counter() - t0, 2), "load": load(), **res.stats}


def bd_table(curves: dict[str, list[dict]]) -> dict[str, float]:
    col = curves["asmr collection"]
    out = {}
    for k, v in curves.items():
        if k == "asmr collection":
            continue
        out[k] = bd_rate([p["bpp"] for p in v], [p["psnr"] for p in v], [p["bpp"] for p in col],
                         [p["psnr"] for p in col], local=True)
    return out


def psnr_gain(curves, ref: str) -> float:
    """The collection's mean PSNR gain over `ref` at equal bpp, where they overlap
    (piecewise-linear interpolation of ref's curve at the collection's rates)."""
    col = curves["asmr collection"]
    r = sorted(curves[ref], key=lambda p: p["bpp"])
    xs, ys = [p["bpp"] for p in r], [p["psnr"] for p in r]
    gains = [p["psnr"] - float(np.interp(p["bpp"], xs, ys)) for p in col if xs[0] <= p["bpp"] <= xs[-1]]
    return float(np.mean(gains)) if gains else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-picture32", type=int, default=4)
    ap.add_argument("--per-picture64", type=int, default=2)
    ap.add_argument("--rates32", default="0.5,1,2,3.5")
    ap.add_argument("--rates64", default="0.25,0.5,1,2")
    ap.add_argument("--time-limit", type=float, default=90.0, help="collection fit's cap per encode (s)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--asmr-subset", type=int, default=12)
    ap.add_argument("--sizes", default="32,64")
    ap.add_argument("--scale", default="", help="instead: encode time against members, e.g. 16,64,256 tiles")
    ap.add_argument("--scale-size", type=int, default=64)
    ap.add_argument("--scale-bpp", type=float, default=1.0)
    ap.add_argument("--replot", type=Path, help="only draw --plot from a saved --json report")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot)
        return
    pics = pictures()
    print(f"{len(pics)} pictures, load {load()}", flush=True)
    if args.scale:
        scale_run(pics, [int(x) for x in args.scale.split(",")], args.scale_size, args.scale_bpp, args.preset,
                  args.json)
        return
    report = {"load_start": load()}
    for size in map(int, args.sizes.split(",")):
        per = args.per_picture32 if size == 32 else args.per_picture64
        ts = tiles(pics, size, per)
        rates = [float(x) for x in (args.rates32 if size == 32 else args.rates64).split(",")]
        print(f"-- {size}x{size}: {len(ts)} tiles from {len(pics)} pictures", flush=True)
        curves = {}
        curves["asmr collection"] = collection_curve(ts, rates, args.time_limit, args.preset)
        print("collection", [(round(p["bpp"], 3), round(p["psnr"], 2), p["encode_seconds"], p["load"])
                             for p in curves["asmr collection"]], flush=True)
        single = [3.0, 6.0] if size == 32 else [1.0, 2.5]
        curves["asmr per file"] = per_file_asmr(ts, single, args.asmr_subset)
        for fmt, label in (("JPEG", "JPEG per file"), ("WEBP", "WebP per file")):
            curves[label] = per_file_curve(ts, fmt)
        for fmt, label in (("WEBP", "WebP mosaic"), ("AVIF", "AVIF mosaic")):
            curves[label] = mosaic_curve(ts, fmt)
        mid = curves["asmr collection"][len(rates) // 2]
        cli = cli_member_decode(mid["data"], ts[len(ts) // 2][0])
        extra = {"cli_member_decode_s": round(cli, 3), "cli_load": load()}
        if size == 64:
            from PIL import Image

            new = np.asarray(Image.open(KODAK / "kodim07.png").convert("RGB"))[300:364, 200:264].copy()
            extra["add_member"] = add_timing(mid["data"], new)
        for p in curves["asmr collection"]:
            p.pop("data")
        report[f"{size}"] = {"tiles": len(ts), "pictures": len(pics), "curves": curves,
                             "bd_rate": bd_table(curves),
                             "gain_db_vs_asmr_per_file": psnr_gain(curves, "asmr per file"),
                             **extra}
        print(json.dumps({k: v for k, v in report[f"{size}"].items() if k != "curves"}), flush=True)
        for label, pts in curves.items():
            print(markdown_table(["codec", "bpp", "PSNR"], [[label, p["bpp"], p["psnr"]] for p in pts]))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
    if args.plot:
        plot(report, args.plot)


def scale_run(pics, counts: list[int], size: int, bpp: float, preset: str, out: Path | None) -> None:
    """Encode time (the preset's own steps and time cap) against the number of members, and
    the peak memory of the process after each encode."""
    import resource

    from asmr_cli.api import EncodeOptions, encode_collection
    from asmr_cli.io.media import Raster

    rows = []
    for n in counts:
        per = math.ceil(n / len(pics))
        ts = tiles(pics, size, per)[:n]
        named = [(name, Raster(t, 8)) for name, t in ts]
        la0 = load()
        t0 = time.perf_counter()
        res = encode_collection(named, EncodeOptions(bpp=bpp, preset=preset))
        row = {"members": n, "size": size, "encode_seconds": round(time.perf_counter() - t0, 1),
               "iterations": res.stats["iterations"], "bpp": res.stats["bpp"], "psnr": res.stats["psnr"],
               "load_before": la0, "load_after": load(),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=1))


def plot(report: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [k for k in report if k.isdigit()]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5))
    axes = np.atleast_1d(axes)
    for ax, size in zip(axes, sizes):
        for label, pts in report[size]["curves"].items():
            pts = sorted(pts, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "o-" if "asmr" in label else ".-",
                    label=label, lw=2 if label == "asmr collection" else 1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks([0.125, 0.25, 0.5, 1, 2, 4, 8])
        ax.set_xlabel("total bits per pixel (names included)")
        ax.set_ylabel("mean PSNR (RGB, dB)")
        ax.set_title(f"{report[size]['tiles']} tiles of {size}x{size}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
