"""What the clip rate fit does with a trained clip: every coding it tries (dead-zone width
or latent scale -> bytes, PSNR), and a sweep of dead zones, on one encode.

    OMP_NUM_THREADS=1 python benchmarks/clip_rate_probe.py samples/carphone_8f.mp4 --iters 4000 --bpp 0.5

(docs/video.md: the default preset's carphone_8f at --bpp 0.5, worse than 300 steps.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asmr_cli.api import EncodeOptions, decode_video, encode_clip  # noqa: E402
from asmr_cli.clip import encoder as clip_encoder  # noqa: E402
from asmr_cli.io.clips import frame_psnr  # noqa: E402
from asmr_cli.io.video import read_video  # noqa: E402

ZONES = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--iters", type=int, default=4000)
    ap.add_argument("--bpp", type=float, default=0.5)
    args = ap.parse_args()
    clip = read_video(args.clip)
    fit_rate = clip_encoder._fit_clip_rate

    def psnr(data: bytes) -> float:
        return round(float(np.mean(frame_psnr(clip.frames, decode_video(data).frames))), 2)

    def probed(file_at, target):
        print(f"budget {target.budget_bytes} bytes\n")
        print("| dead zone | bytes | of budget | PSNR dB |\n| --- | --- | --- | --- |")
        for k in ZONES:
            d = file_at(keep=k)
            print(f"| {k} | {len(d)} | {len(d) / target.budget_bytes:.3f} | {psnr(d)} |", flush=True)
        print("\nthe rate fit's codings:\n\n| call | bytes | PSNR dB |\n| --- | --- | --- |")

        def logged(*a, **k):
            d = file_at(*a, **k)
            print(f"| {a} {k} | {len(d)} | {psnr(d)} |", flush=True)
            return d

        return fit_rate(logged, target)

    clip_encoder._fit_clip_rate = probed
    r = encode_clip(clip, EncodeOptions(bpp=args.bpp, iters=args.iters, time_limit=100000))
    print(f"\nreturned: {r.stats['bytes']} bytes, {r.stats['psnr']} dB ({r.stats['iterations']} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
