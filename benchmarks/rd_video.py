"""Video rate-distortion: ASMR at several rates against x264 medium, x265 medium and VP9
(libvpx-vp9, good, cpu-used 2) through PyAV (yuv420p, a crf sweep each; their bare streams'
bytes, as `asmr compare` counts them: io/video.encode_stream), measured in the same run on
the same decoded source frames.

PSNR is on 8-bit RGB, per frame, averaged over frames; bpp = bytes * 8 / (T * H * W).
Every ASMR encode runs as its own `asmr encode ... --json` process under /usr/bin/time
(wall time and peak RSS of the whole process). For each ASMR point, x264's PSNR at the
same bpp is read off its crf curve (linear in log bpp) and the gap printed, and the
BD-rate of ASMR against each anchor over the shared PSNR range. Also times
`asmr decode clip.asmr -o clip.y4m` as a whole process (start-up included).

    python benchmarks/rd_video.py                    # carphone (120 frames, 176x144) at 0.05 / 0.1 / 0.25 bpp
    python benchmarks/rd_video.py --long             # also bikes.mp4 (250 frames, 640x272) at 0.1 bpp
    python benchmarks/rd_video.py --hd               # also bikes' first 100 frames upscaled to 1280x720
    python benchmarks/rd_video.py --rates 0.1 --preset fast --frames 0:30
    python benchmarks/rd_video.py --motion           # asmr encode --motion (format 9, B frames)

Prints markdown tables; writes benchmarks/out/rd_video_<clip>.png and .json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bd_rate  # noqa: E402

from asmr_cli.api import decode_video  # noqa: E402
from asmr_cli.io.clips import frame_psnr, parse_frames
from asmr_cli.io.video import read_video  # noqa: E402

DATA = Path("/work/shared/data/video")
OUT = Path(__file__).resolve().parent / "out"
CRFS = {"x264": [45, 40, 35, 30, 25, 20, 17], "x265": [45, 40, 35, 30, 25, 20, 17],
        "vp9": [63, 58, 52, 46, 40, 32, 24]}
KEEP: Path | None = None  # --keep: where the asmr files are copied
MOTION = False  # --motion: `asmr encode --motion` (format 9)
ANCHOR_NAMES = {"x264": "x264 medium", "x265": "x265 medium", "vp9": "VP9 (libvpx)"}


def anchor_point(clip, codec: str, crf: int) -> dict:
    """One anchor encode (io/video.encode_stream: yuv420p, in memory), decoded and measured;
    bytes are the bare stream's (packets and codec headers, no container)."""
    from asmr_cli.io.video import decode_stream, encode_stream

    t, h, w = clip.count, clip.height, clip.width
    start = time.perf_counter()
    data, nbytes = encode_stream(clip, codec, crf=crf)
    seconds = time.perf_counter() - start
    dec = decode_stream(data, w, h)
    return {"codec": ANCHOR_NAMES[codec], "setting": f"crf {crf}", "bytes": nbytes,
            "bpp": nbytes * 8 / (t * h * w), "psnr": float(np.mean(frame_psnr(clip.frames, dec))),
            "encode_s": seconds}


def asmr_point(path: Path, frames: str | None, clip, bpp: float, preset: str,
               time_limit: float | None, workdir: Path) -> tuple[dict, bytes]:
    """`asmr encode` as its own process: its JSON stats, wall time and peak RSS."""
    out = workdir / f"{path.stem}_{bpp}.asmr"
    cmd = [sys.executable, "-m", "asmr_cli", "encode", str(path), "-o", str(out), "--bpp", str(bpp),
           "--preset", preset, "--json", "-f"] + (["--motion"] if MOTION else [])
    cmd += ["--frames", frames] if frames else []
    cmd += ["--time-limit", str(time_limit)] if time_limit else []
    timing = workdir / "time.txt"
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(timing), *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"asmr encode failed: {done.stdout} {done.stderr}")
    s = json.loads(done.stdout.strip().splitlines()[-1])
    data = out.read_bytes()
    decoded = decode_video(data)
    psnr = float(np.mean(frame_psnr(clip.frames, decoded.frames)))
    rss = int(timing.read_text().split()[-1]) / 1024
    setting = f"--bpp {bpp}" + (" --motion" if MOTION else "")
    return ({"codec": f"asmr {preset}", "setting": setting, "bytes": len(data), "bpp": s["bpp"],
             "psnr": psnr, "encode_s": wall, "iterations": s["iterations"], "peak_rss_mb": rss,
             "macs_per_pixel": s["macs_per_pixel"],
             "unshared_macs_per_pixel": s.get("unshared_macs_per_pixel", s.get("siren_macs_per_pixel")),
             "format_version": s["format_version"], "groups": s.get("groups")}, data)


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
    for codec, style in [("x264", "s-"), ("x265", "^-"), ("VP9", "v-"), ("asmr", "o-")]:
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


def run_clip(path: Path, rates: list[float], preset: str, frames: str | None, time_limit: float | None,
             label: str | None = None) -> None:
    clip = read_video(path, parse_frames(frames))
    t, h, w = clip.count, clip.height, clip.width
    name = label or path.name
    print(f"\n### {name}: {t} frames, {w}x{h}, {float(clip.fps):.3f} fps\n", flush=True)
    anchors = {c: [anchor_point(clip, c, crf) for crf in CRFS[c]] for c in CRFS}
    x264 = anchors["x264"]
    rows = [r for c in CRFS for r in anchors[c]]
    files = []
    with tempfile.TemporaryDirectory() as d:
        for bpp in rates:
            row, data = asmr_point(path, frames, clip, bpp, preset, time_limit, Path(d))
            rows.append(row)
            files.append((bpp, data))
            if KEEP:
                KEEP.mkdir(parents=True, exist_ok=True)
                (KEEP / f"{Path(name).stem}_{bpp}.asmr").write_bytes(data)
            print(f"  asmr --bpp {bpp}: {row['bpp']:.4f} bpp, {row['psnr']:.2f} dB, {row['encode_s']:.0f} s, "
                  f"{row['iterations']} steps, peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)
    print("| codec | setting | bpp | PSNR (dB) | x264 at same bpp | encode s | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ref = x264_at(x264, r["bpp"]) if r["codec"].startswith("asmr") else None
        gap = f"{ref:.2f} ({r['psnr'] - ref:+.2f})" if ref is not None else "-"
        rss = f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "-"
        print(f"| {r['codec']} | {r['setting']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {gap} | {r['encode_s']:.1f} "
              f"| {rss} |")
    ours = [r for r in rows if r["codec"].startswith("asmr")]
    if len(ours) >= 2:
        for c, pts in anchors.items():
            bd = bd_rate([r["bpp"] for r in pts], [r["psnr"] for r in pts], [r["bpp"] for r in ours],
                         [r["psnr"] for r in ours])
            print(f"\nBD-rate of asmr against {ANCHOR_NAMES[c]}: {bd:+.1f}% (over the PSNR range both cover)")
    a = ours[0]
    print(f"\nASMR decoder (format {a['format_version']}): {a['macs_per_pixel']:.0f} MAC/pixel vs "
          f"{a['unshared_macs_per_pixel']:.0f} without activation sharing; groups of frames: {a['groups']}")
    for bpp, data in files:
        secs = decode_process_seconds(data)
        print(f"`asmr decode -o .y4m` ({bpp} bpp file), whole process: {secs:.2f} s = {t / secs:.0f} frames/s")
    stem = Path(name).stem
    out = OUT / f"rd_video_{stem}.png"
    plot(rows, f"{name} ({t} frames, {w}x{h})", out)
    (OUT / f"rd_video_{stem}.json").write_text(json.dumps(rows, indent=1))
    print(f"plot: {out}", flush=True)


def hd_clip(workdir: Path, frames: int = 100) -> Path:
    """bikes.mp4's first `frames` frames resized (Lanczos) to 1280x720, written near-losslessly."""
    from PIL import Image

    from asmr_cli.io.clips import Clip
    from asmr_cli.io.video import write_video

    src = read_video(DATA / "bikes.mp4", parse_frames(f"0:{frames}"))
    big = np.stack([np.asarray(Image.fromarray(f).resize((1280, 720), Image.LANCZOS)) for f in src.frames])
    path = workdir / "bikes_720p.mp4"
    write_video(path, Clip(big, src.fps))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DATA / "carphone_pristine.mp4")
    ap.add_argument("--long", action="store_true", help="also bikes.mp4 (250 frames, 640x272) at --long-rate")
    ap.add_argument("--hd", action="store_true", help="also bikes' first 100 frames at 1280x720 at --long-rate")
    ap.add_argument("--only-extra", action="store_true", help="skip --clip (run only --long / --hd)")
    ap.add_argument("--rates", default="0.025,0.05,0.1,0.25", help="ASMR bpp targets, comma-separated")
    ap.add_argument("--long-rate", type=float, default=0.1)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--frames", default=None, help="START:END of the clip")
    ap.add_argument("--time-limit", type=float, default=None, help="per ASMR encode, seconds")
    ap.add_argument("--keep", type=Path, default=None, help="copy the asmr files into this folder")
    ap.add_argument("--motion", action="store_true", help="asmr encode --motion (format 9: B frames)")
    args = ap.parse_args()
    global KEEP, MOTION
    KEEP, MOTION = args.keep, args.motion
    print("command: python " + " ".join(sys.argv) + f"  (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    rates = [float(x) for x in args.rates.split(",")]
    if not args.only_extra:
        run_clip(args.clip, rates, args.preset, args.frames, args.time_limit)
    if args.long:
        run_clip(DATA / "bikes.mp4", [args.long_rate], args.preset, None, args.time_limit)
    if args.hd:
        with tempfile.TemporaryDirectory() as d:
            run_clip(hd_clip(Path(d)), [args.long_rate], args.preset, None, args.time_limit, "bikes_720p.mp4")


if __name__ == "__main__":
    main()
