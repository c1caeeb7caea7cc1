"""How far motion-compensated prediction alone carries a clip: every intra frame taken as
the source frame, every other frame its prediction alone (no residual), its references
predicted the same way before it. Compares format 7's chain of P frames with format 9's
bisection between intra frames, the motion estimated as the encoder does (clip/estimate.py,
mu = 0: the best prediction whatever its bits), matched against the source frames
(`unchained`) or against the references as predicted (`chained`, the encoder's default).

    python benchmarks/prediction_chain.py                       # carphone frames 0:33, period 32
    python benchmarks/prediction_chain.py --frames 0:65 --period 64 --filter cubic

Prints the mean and lowest PSNR (RGB, dB) of the predicted frames, and each frame's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from asmr_cli.clip import estimate, motion
from asmr_cli.clip.format7 import MotionHeader
from asmr_cli.clip.format9 import BHeader
from asmr_cli.container.file import KIND_VIDEO
from asmr_cli.io.clips import frame_psnr, parse_frames
from asmr_cli.io.video import read_video

DATA = Path("/work/shared/data/video")


def predicted(frames: np.ndarray, header: MotionHeader, filt: int) -> np.ndarray:
    """Every frame of one group as the prediction alone would give it."""
    plan = header.plan(0, len(frames))
    est = estimate.estimate(frames, plan, header.block, filt, 0.0)
    out: dict[int, np.ndarray] = {t: frames[t] for t, refs in plan if not refs}
    first = header.first_slots(0, len(frames))
    for t, refs in plan:
        if refs:
            out[t] = motion.predict_from([out[r] for r in refs], est[first[t]:first[t] + len(refs)], header.block,
                                         filt)
    return np.stack([out[t] for t in range(len(frames))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DATA / "carphone_pristine.mp4")
    ap.add_argument("--frames", default="0:33")
    ap.add_argument("--period", type=int, default=32)
    ap.add_argument("--block", type=int, default=8)
    ap.add_argument("--filter", choices=("bilinear", "cubic"), default="bilinear")
    args = ap.parse_args()
    clip = read_video(args.clip, parse_frames(args.frames))
    frames = clip.frames
    t, h, w, c = frames.shape
    filt = motion.BILINEAR if args.filter == "bilinear" else motion.CUBIC
    fields = ((t, h, w), c, 8, 1, 0, 0, KIND_VIDEO, 25, 1, t, args.period, args.block, filt)
    print(f"{args.clip.name} frames {args.frames}, period {args.period}, {args.block}x{args.block} blocks, "
          f"{args.filter}; intra frames are the source")
    print("| structure | estimate | mean PSNR (dB) | lowest | predicted frames |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for name, cls in (("P chain (format 7)", MotionHeader), ("bisection (format 9)", BHeader)):
        header = cls(*fields)
        intra = {s for s, _ in header.segment_spans()}
        for chained in (False, True):
            estimate.CHAINED = chained
            p = frame_psnr(frames, predicted(frames, header, filt))
            mask = [i not in intra for i in range(t)]
            vals = np.asarray(p)[mask]
            print(f"| {name} | {'chained' if chained else 'unchained'} | {vals.mean():.2f} | {vals.min():.2f} | "
                  f"{len(vals)} |")
            rows.append((name, chained, p))
    for name, chained, p in rows:
        print(f"{name}, {'chained' if chained else 'unchained'}: " + " ".join(f"{x:.1f}" for x in p))


if __name__ == "__main__":
    main()
