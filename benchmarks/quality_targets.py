"""Constant quality and the ETA (issue 22): -q as lambda, --psnr, estimated_seconds.

    python benchmarks/quality_targets.py q       # -q 50/75/90 on the crops (bpp, PSNR)
    python benchmarks/quality_targets.py psnr    # --psnr 26/30/34 on the crops (error)
    python benchmarks/quality_targets.py eta     # estimated vs actual seconds, 0.39, 1.57 and 2.46 MP

The crops are the 384x256 centres of kodim04, 19, 23 (the tuning images the constants
were fitted on) and kodim15, 10 (a check); kodim02, 07, 12, 17 and 21 stay held out. The
1.57 MP photo is kodim23 resized with Lanczos to 1536x1024, the 2.46 MP one kodim19 to
1280x1920. Every encode is one `asmr
encode --preset fast --json` process with OMP_NUM_THREADS=1 (the ETA runs: in-process,
with the progress callback's reports timed). Kodak from ../shared/data/kodak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
CROPS = ["kodim04", "kodim19", "kodim23", "kodim15", "kodim10"]
WORK = Path(os.environ.get("TMPDIR", "/tmp")) / "asmr_quality_targets"


def crop(name: str) -> Path:
    out = WORK / f"{name}_c.png"
    if not out.exists():
        im = Image.open(KODAK / f"{name}.png").convert("RGB")
        w, h = im.size
        x, y = (w - 384) // 2, (h - 256) // 2
        im.crop((x, y, x + 384, y + 256)).save(out)
    return out


def resized(name: str, size: tuple[int, int]) -> Path:
    out = WORK / f"{name}_{size[0]}x{size[1]}.png"
    if not out.exists():
        Image.open(KODAK / f"{name}.png").convert("RGB").resize(size, Image.LANCZOS).save(out)
    return out


def encode(src: Path, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "asmr_cli", "encode", str(src), "-o", str(WORK / "out.asmr"), "-f", "--json",
           "--quiet", "--preset", "fast", *args]
    s = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout)
    return {k: s.get(k) for k in ("bpp", "psnr", "lam", "iterations", "estimated_seconds", "encode_seconds")}


def eta(src: Path, opts: dict) -> dict:
    import torch

    from asmr_cli.api.images import encode_raster
    from asmr_cli.core.options import EncodeOptions
    from asmr_cli.io.media import read_image

    torch.set_num_threads(1)
    r = read_image(src, 10**8)
    t0 = time.perf_counter()
    res = encode_raster(r, EncodeOptions(preset="fast", **opts))
    actual = time.perf_counter() - t0
    est = res.stats["estimated_seconds"]
    return {"image": src.name, "opts": opts, "iterations": res.stats["iterations"], "estimated_s": est,
            "actual_s": round(actual, 1), "error_pct": round(100 * (est / actual - 1), 1), "bpp": res.stats["bpp"],
            "psnr": res.stats["psnr"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["q", "psnr", "eta"])
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    print(open("/proc/loadavg").read().strip() if Path("/proc/loadavg").exists() else "", flush=True)
    if args.what == "q":
        for q in (50, 75, 90):
            for name in CROPS:
                print(json.dumps({"image": name, "q": q, **encode(crop(name), "-q", str(q))}), flush=True)
    elif args.what == "psnr":
        for target in (26, 30, 34):
            for name in CROPS:
                r = encode(crop(name), "--psnr", str(target))
                print(json.dumps({"image": name, "target": target, "error_db": round(r["psnr"] - target, 3), **r}),
                      flush=True)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"
        for src in (KODAK / "kodim04.png", resized("kodim23", (1536, 1024)), resized("kodim19", (1280, 1920))):
            for opts in ({"quality": 75}, {"bpp": 1.0}, {"psnr": 33.0}):
                print(json.dumps(eta(src, opts)), flush=True)
    print(open("/proc/loadavg").read().strip() if Path("/proc/loadavg").exists() else "", flush=True)


if __name__ == "__main__":
    main()
