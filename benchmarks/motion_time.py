"""How long format 9's motion estimate takes, try by try, for a clip's first group: the
encoder (clip/encoder7.encode) estimates, and estimates again with each bit 4x dearer
while the motion is over MOTION_SHARE of the group's bits (at most MOTION_TRIES more).

    python benchmarks/motion_time.py                                   # bikes, 0.1 bpp, default preset's layout
    python benchmarks/motion_time.py --clip ../shared/data/video/carphone_pristine.mp4 --frames 0:120 --bpp 0.025

Prints each try's seconds, motion bytes against the cap, and the slots' modes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from asmr_cli.clip import encoder as clip_encoder
from asmr_cli.clip import encoder7, format9
from asmr_cli.clip.fit import choose_clip_lambda
from asmr_cli.clip.format7 import overhead
from asmr_cli.container.file import KIND_VIDEO
from asmr_cli.io.clips import parse_frames
from asmr_cli.io.video import read_video
from asmr_cli.latent.encoder import network_bytes

DATA = Path("/work/shared/data/video")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DATA / "bikes.mp4")
    ap.add_argument("--frames", default=None)
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--preset", default="default")
    args = ap.parse_args()
    clip = read_video(args.clip, parse_frames(args.frames) if args.frames else None)
    t, h, w = clip.count, clip.height, clip.width
    lay = clip_encoder.clip_layout(t, h, w, clip.channels, args.preset, None, None)
    group = clip_encoder.group_size(t, h, w)
    header = format9.BHeader((t, h, w), clip.channels, 8, lay.levels, lay.hidden, lay.context_hidden, KIND_VIDEO,
                             25, 1, group, encoder7.period_for(group, args.bpp), encoder7.block_for(h, w),
                             encoder7.FILTER)
    x = clip.as_float()
    frames8 = np.clip(np.rint(np.moveaxis(x, 0, -1) * 255.0), 0, 255).astype(np.uint8)
    spans = header.group_spans()
    rough = (args.bpp * t * h * w / 8 - overhead(header) - network_bytes(lay) * len(spans)) * 8
    s, e = spans[0]
    cap = encoder7.MOTION_SHARE * rough * (e - s) / t / 8
    lam = choose_clip_lambda(lay, x[:, s:e], rough * (e - s) / t * clip_encoder.AIM_ABOVE)
    print(f"{args.clip.name}: {t} frames of {w}x{h}, group [{s}, {e}), period {header.period}, "
          f"{header.block}x{header.block} blocks, motion cap {cap:.0f} bytes")
    searched: dict = {}
    for k in range(1 + encoder7.MOTION_TRIES):
        start = time.perf_counter()
        mot = encoder7._group_motion(header, frames8, s, e, lam, searched)
        size = encoder7._bytes(mot)
        print(f"try {k}: {time.perf_counter() - start:.1f} s, {size} bytes, modes {encoder7.mode_counts([mot])}")
        if size <= cap:
            break
        lam *= 4


if __name__ == "__main__":
    main()
