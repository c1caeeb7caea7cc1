"""Video rate-distortion: ASMR at several rates against x264 (PyAV libx264, preset medium,
yuv420p, a crf sweep), measured in the same run on the same decoded source frames.

PSNR is on 8-bit RGB, per frame, averaged over frames; bpp = bytes * 8 / (T * H * W).
For each ASMR point, x264's PSNR at the same bpp is read off its crf curve (linear in
log bpp) and the gap printed. Also times `asmr decode clip.asmr -o clip.y4m` as a whole
process (start-up included) for the default-rate file.

    python benchmarks/rd_video.py                    # carphone (120 frames, 176x144)
    python benchmarks/rd_video.py --long             # also bikes.mp4 (250 frames, 640x272)
    python benchmarks/rd_video.py --rates 0.1,0.2 --preset fast --frames 0:30

Prints a markdown table; writes benchmarks/out/rd_video_<clip>.png.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asmr_cli.codec import EncodeOptions, decode_video, encode_clip
from asmr_cli.video import frame_psnr, parse_frames, read_video

DATA = Path("/work/shared/data/video")
OUT = Path(__file__).resolve().parent / "out"
CRFS = [38, 33, 28, 23, 18]


def x264_point(frames: np.ndarray, fps, crf: int) -> dict:
    """Encode with libx264 (preset medium, yuv420p) in memory, decode, measure."""
    import av

    t, h, w, _ = frames.shape
    buf = io.BytesIO()
    start = time.perf_counter()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": "medium"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    seconds = time.perf_counter() - start
    data = buf.getvalue()
    buf.seek(0)
    with av.open(buf, "r") as inp:
        dec = np.stack([f.to_ndarray(format="rgb24") for f in inp.decode(video=0)])
    return {"codec": "x264 medium", "setting": f"crf {crf}", "bytes": len(data),
            "bpp": len(data) * 8 / (t * h * w), "psnr": float(np.mean(frame_psnr(frames, dec))),
            "encode_s": seconds}


def asmr_point(clip, bpp: float, preset: str, time_limit: float | None) -> tuple[dict, bytes]:
    res = encode_clip(clip, EncodeOptions(preset=preset, bpp=bpp, time_limit=time_limit))
    s = res.stats
    decoded = decode_video(res.data)
    psnr = float(np.mean(frame_psnr(clip.frames, decoded.frames)))
    return ({"codec": f"asmr {preset}", "setting": f"--bpp {bpp}", "bytes": len(res.data), "bpp": s["bpp"],
             "psnr": psnr, "encode_s": s["encode_seconds"], "iterations": s["iterations"],
             "macs_per_pixel": s["macs_per_pixel"], "siren_macs_per_pixel": s["siren_macs_per_pixel"],
             "hidden": s["hidden"], "bases": s["bases"]}, res.data)


def x264_at(points: list[dict], bpp: float) -> float | None:
    """x264 PSNR at this bpp, linear in log bpp between crf points (None outside the sweep)."""
    pts = sorted((math.log(p["bpp"]), p["psnr"]) for p in points)
    x = math.log(bpp)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def decode_process_seconds(data: bytes) -> float:
    """Wall time of `asmr decode f.asmr -o f.y4m` as a new process (start-up included)."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "clip.asmr"
        src.write_bytes(data)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "asmr_cli", "decode", str(src), "-o", str(Path(d) / "clip.y4m")],
                       check=True)
        return time.perf_counter() - start


def plot(rows: list[dict], name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for codec, style in [("x264", "s-"), ("asmr", "o-")]:
        pts = sorted((r["bpp"], r["psnr"]) for r in rows if r["codec"].startswith(codec))
        if pts:
            ax.plot(*zip(*pts), style, label=next(r["codec"] for r in rows if r["codec"].startswith(codec)))
    ax.set_xlabel("bits per pixel (bytes * 8 / (T * H * W))")
    ax.set_ylabel("PSNR (dB, RGB, mean over frames)")
    ax.set_title(name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def run_clip(path: Path, rates: list[float], preset: str, frames: str | None, time_limit: float | None) -> None:
    clip = read_video(path, parse_frames(frames))
    t, h, w = clip.count, clip.height, clip.width
    print(f"\n### {path.name}: {t} frames, {w}x{h}, {float(clip.fps):.3f} fps\n", flush=True)
    rows = [x264_point(clip.frames, clip.fps, crf) for crf in CRFS]
    x264 = list(rows)
    default_data, default_bpp = None, rates[0]
    for bpp in rates:
        row, data = asmr_point(clip, bpp, preset, time_limit)
        rows.append(row)
        if default_data is None or abs(bpp - 0.2) < abs(default_bpp - 0.2):
            default_data, default_bpp = data, bpp
        print(f"  asmr --bpp {bpp}: {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB, {row['encode_s']:.0f} s, "
              f"{row['iterations']} steps, peak RSS so far {peak_rss_mb():.0f} MB", flush=True)
    print("| codec | setting | bpp | PSNR (dB) | x264 at same bpp | encode s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ref = x264_at(x264, r["bpp"]) if r["codec"].startswith("asmr") else None
        gap = f"{ref:.2f} ({r['psnr'] - ref:+.2f})" if ref is not None else "-"
        print(f"| {r['codec']} | {r['setting']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {gap} | {r['encode_s']:.1f} |")
    a = next(r for r in rows if r["codec"].startswith("asmr"))
    print(f"\nASMR decoder: {a['macs_per_pixel']:.0f} MAC/pixel vs {a['siren_macs_per_pixel']:.0f} for the "
          f"per-pixel SIREN of the same widths ({a['siren_macs_per_pixel'] / a['macs_per_pixel']:.0f}x); "
          f"hidden {a['hidden']}, bases {a['bases']}")
    if default_data is not None:
        secs = decode_process_seconds(default_data)
        print(f"`asmr decode -o .y4m` ({default_bpp} bpp file), whole process: {secs:.2f} s = {t / secs:.0f} frames/s")
    out = OUT / f"rd_video_{path.stem}.png"
    plot(rows, f"{path.name} ({t} frames, {w}x{h})", out)
    (OUT / f"rd_video_{path.stem}.json").write_text(json.dumps(rows, indent=1))
    print(f"plot: {out}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DATA / "carphone_pristine.mp4")
    ap.add_argument("--long", action="store_true", help="also bikes.mp4 (250 frames, 640x272)")
    ap.add_argument("--rates", default="0.08,0.15,0.25", help="ASMR bpp targets, comma-separated")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--frames", default=None, help="START:END of the clip")
    ap.add_argument("--time-limit", type=float, default=None, help="per ASMR encode, seconds")
    args = ap.parse_args()
    print("command: python " + " ".join(sys.argv))
    rates = [float(x) for x in args.rates.split(",")]
    run_clip(args.clip, rates, args.preset, args.frames, args.time_limit)
    if args.long:
        run_clip(DATA / "bikes.mp4", rates, args.preset, args.frames, args.time_limit)


if __name__ == "__main__":
    main()
