"""Format 7's ablations on one clip: one encode per variant, each its own process (so peak
RSS and timings are the variant's), PSNR measured on the decoded frames.

Variants (module constants of the clip encoder, set before the encode):
  v4       format 4, no motion (the baseline)
  motion   format 7 as shipped
  bframes  format 9 (hierarchical B frames); b:VARIANT is format 9 with another variant below
  nosearch format 7, every P frame predicted from the unmoved decoded frame before
  cubic    format 7 with the 4-tap cubic interpolation instead of bilinear
  period=N format 7 with an intra period of N frames
  layer=W  format 9 with a B frame's weight per temporal layer under it W (encoder7.LAYER_WEIGHT)
  intra=W  format 7 with the intra frames' distortion weighted W in training
  noforce  format 7 without the forced refreshes of the prediction (clip/fit.FORCED_REFRESH)
  unchained format 7 with each P frame's motion matched against the source frame before it
  visits=X format 7 with this share of the steps training an intra frame alone (clip/fit.INTRA_VISITS)
  steer=R  format 7 with lam steered within R times its start either way (encoder7.STEER_RANGE)
  anchor=R,E  lam re-anchored at most R times up (clip/fit.REANCHOR_RANGE; 1: measured, not
           moved), aiming at E x the target (encoder7.EARLY_RATE)
  lamx=F   every group's starting lam times F (a start as far off as bikes')
Variants joined by "+" apply together: b:lamx=0.2+anchor=1,1

    OMP_NUM_THREADS=1 python benchmarks/clip_motion.py --frames 0:32 --bpp 0.1 --preset fast v4 motion nosearch

`--drift FILE.asmr`: decodes a format-7 or -9 file with the synthesis on 1 and 2 threads, and in
processes with OMP_NUM_THREADS=1 and 2 (the BLAS's threads), and prints how far the frames
of each segment differ from the first decode, frame by frame down the segment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DATA = Path("/work/shared/data/video")

CHILD = r"""
import json, sys, time, resource
import numpy as np
from asmr_cli.api import EncodeOptions, decode_video, encode_clip
from asmr_cli.clip import encoder7, family
from asmr_cli.clip import motion
from asmr_cli.io.clips import frame_psnr, parse_frames
from asmr_cli.io.video import read_video

path, frames, variant, bpp, preset, time_limit, iters = sys.argv[1:8]
family.MOTION_VERSION = 7
name = variant
if variant == "bframes" or variant.startswith("b:"):  # format 9, with the variant after "b:"
    family.MOTION_VERSION = 9
    variant = "motion" if variant == "bframes" else variant[2:]
for variant in variant.split("+"):  # variants joined by "+" apply together
    if variant == "v4":
        family.WRITE_MOTION = False
    elif variant == "nosearch":
        encoder7.SEARCH_MOTION = False
    elif variant == "cubic":
        encoder7.FILTER = motion.CUBIC
    elif variant.startswith("period="):
        encoder7.INTRA_PERIOD = int(variant.split("=")[1])
    elif variant.startswith("layer="):
        encoder7.LAYER_WEIGHT = float(variant.split("=")[1])
    elif variant.startswith("intra="):
        encoder7.INTRA_WEIGHT = float(variant.split("=")[1])
    elif variant == "noforce":
        from asmr_cli.clip import fit
        fit.FORCED_REFRESH = ()
    elif variant == "unchained":
        from asmr_cli.clip import estimate
        estimate.CHAINED = False
    elif variant.startswith("visits="):
        from asmr_cli.clip import fit
        fit.INTRA_VISITS = float(variant.split("=")[1])
    elif variant.startswith("steer="):
        encoder7.STEER_RANGE = float(variant.split("=")[1])
    elif variant.startswith("anchor="):  # clip/fit.REANCHOR_RANGE (1: lam measured, not moved) and EARLY_RATE
        from asmr_cli.clip import fit
        rng, early = variant.split("=")[1].split(",")
        fit.REANCHOR_RANGE, encoder7.EARLY_RATE = float(rng), float(early)
    elif variant.startswith("lamx="):  # probe: every group's starting lam scaled (a start off as bikes' is)
        import dataclasses
        from asmr_cli.clip import fit
        _fit, _x = fit.fit_clip, float(variant.split("=")[1])

        def _scaled(layout, part, cfg, *a, **k):
            return _fit(layout, part, dataclasses.replace(cfg, lam=cfg.lam * _x), *a, **k)
        fit.fit_clip = _scaled
    elif variant != "motion":
        raise SystemExit(f"unknown variant {variant}")
family.WRITE_MOTION = "v4" not in name.split("+")
clip = read_video(path, parse_frames(frames))
opts = EncodeOptions(preset=preset, bpp=float(bpp), time_limit=float(time_limit) if time_limit != "-" else None,
                     iters=int(iters) if iters != "-" else None)
start = time.perf_counter()
res = encode_clip(clip, opts)
enc_s = time.perf_counter() - start
start = time.perf_counter()
dec = decode_video(res.data)
dec_s = time.perf_counter() - start
s = res.stats
per_frame = frame_psnr(clip.frames, dec.frames)
print(json.dumps({"variant": name, "bpp": s["bpp"], "psnr": float(np.mean(per_frame)),
                  "per_frame": [round(float(x), 2) for x in per_frame],
                  "bytes": s["bytes"], "iterations": s["iterations"], "encode_s": enc_s, "decode_s": dec_s,
                  "frames": clip.count, "format": s["format_version"], "motion_modes": s.get("motion_modes"),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


DRIFT_CHILD = r"""
import hashlib, sys
import numpy as np
from asmr_cli.api import formats
from asmr_cli.clip import codec7
f = formats.loads(open(sys.argv[1], "rb").read())
out = codec7.frames_uint8(codec7.unpack(f), 0, f.header.frames, int(sys.argv[2]))
np.save(sys.argv[3], out)
"""


def drift(path: Path) -> None:
    import os
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as d:
        runs = {}
        for omp in ("1", "2"):
            for threads in ("1", "2"):
                out = Path(d) / f"{omp}_{threads}.npy"
                env = dict(os.environ, OMP_NUM_THREADS=omp, OPENBLAS_NUM_THREADS=omp, MKL_NUM_THREADS=omp)
                subprocess.run([sys.executable, "-c", DRIFT_CHILD, str(path), threads, str(out)], check=True, env=env)
                runs[f"OMP {omp}, synthesis threads {threads}"] = np.load(out)
    base_name, base = next(iter(runs.items()))
    print(f"reference: {base_name}; {base.shape[0]} frames")
    for name, frames in runs.items():
        diff = np.abs(frames.astype(int) - base.astype(int)).reshape(frames.shape[0], -1).max(1)
        print(f"{name}: identical frames {int(np.sum(diff == 0))}/{len(diff)}, largest difference {int(diff.max())} "
              f"levels (per frame: {diff.tolist() if diff.any() else 'none'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="*")
    ap.add_argument("--drift", type=Path, default=None, help="a format-7 or -9 file: decode drift across thread counts")
    ap.add_argument("--clip", type=Path, default=DATA / "carphone_pristine.mp4")
    ap.add_argument("--frames", default="0:32")
    ap.add_argument("--bpp", type=float, default=0.1)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--time-limit", default="-")
    ap.add_argument("--iters", default="-")
    ap.add_argument("--per-frame", action="store_true", help="also print each variant's PSNR frame by frame")
    args = ap.parse_args()
    print("command: python " + " ".join(sys.argv), flush=True)
    if args.drift:
        drift(args.drift)
        return
    print("| variant | format | bpp | PSNR (dB) | steps | encode s | decode s | peak RSS MB "
          "| P modes none/global/field |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for v in args.variants:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.clip), args.frames, v, str(args.bpp), args.preset,
                               args.time_limit, args.iters], capture_output=True, text=True)
        if done.returncode:
            print(f"| {v} | failed: {done.stderr.strip().splitlines()[-1] if done.stderr else ''} |", flush=True)
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        m = r["motion_modes"]
        modes = "-" if not m else f"{m['none']}/{m['global']}/{m['field']}"
        print(f"| {v} | {r['format']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {r['iterations']} | {r['encode_s']:.0f} "
              f"| {r['decode_s']:.2f} | {r['peak_rss_mb']:.0f} | {modes} |  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
        if args.per_frame:
            print(f"  {v} per frame: {' '.join(f'{x:.1f}' for x in r['per_frame'])}", flush=True)


if __name__ == "__main__":
    main()
