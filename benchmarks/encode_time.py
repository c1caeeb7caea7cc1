"""Encode time, memory and quality against photo size, at the default preset.

    python benchmarks/encode_time.py                    # 0.4, 1.5, 3.4, 6 and 12 MP
    python benchmarks/encode_time.py --sizes 0.4,3.4    # a subset

The photos are made from Kodak (../shared/data/kodak): kodim01, 05, 13 and 23 tiled 2 x 2
(1536 x 1024, 1.57 MP) and resized with Lanczos to each size at 3:2 (0.4 MP is kodim23
itself). Upscaled tiles are smoother than a camera's photo of the same size, so the
rates and PSNRs are those of these test images, not of real photos; the time and memory
do not depend on content. Each encode is one `asmr encode PHOTO --json` process (default
preset, default -q) timed by /usr/bin/time (wall seconds, peak RSS), then one `asmr
decode` process (wall seconds, peak RSS); JPEG (Pillow) is measured at the file's bpp.
Prints a markdown table and writes benchmarks/out/encode_time.png (time against
megapixels).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import at_bpp, kodak, markdown_table, pillow_sweep  # noqa: E402

from asmr_cli.core.metrics import psnr  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TILES = ["kodim01", "kodim05", "kodim13", "kodim23"]


def photo(megapixels: float) -> np.ndarray:
    paths = kodak(TILES)
    if megapixels <= 0.4:
        return np.asarray(Image.open(paths[-1]).convert("RGB"))
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    mosaic = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    width = int(round(math.sqrt(megapixels * 1e6 * 1.5)))
    height = int(round(width / 1.5))
    return np.asarray(Image.fromarray(mosaic).resize((width, height), Image.LANCZOS))


def asmr_command() -> list[str]:
    script = Path(sys.executable).parent / "asmr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "asmr_cli"]


def run(megapixels: float, workdir: Path, extra: list[str]) -> dict:
    rgb = photo(megapixels)
    src = workdir / f"photo_{megapixels}.png"
    Image.fromarray(rgb).save(src, compress_level=1)
    dst = workdir / f"photo_{megapixels}.asmr"
    cmd = ["/usr/bin/time", "-f", "TIME %e %M", *asmr_command(), "encode", str(src), "-o", str(dst), "-f",
           "--json", "--quiet", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"encode failed: {proc.stderr.strip()[-500:]}")
    wall, rss_kb = next(line for line in proc.stderr.splitlines() if line.startswith("TIME ")).split()[1:]
    stats = json.loads(proc.stdout)
    dec = workdir / f"photo_{megapixels}.png.decoded.png"
    proc = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *asmr_command(), "decode", str(dst), "-o", str(dec),
                           "-f"], check=True, capture_output=True, text=True)
    dec_wall, dec_rss = next(line for line in proc.stderr.splitlines() if line.startswith("TIME ")).split()[1:]
    decoded = np.asarray(Image.open(dec).convert("RGB"))
    _, jpeg_psnr, _ = at_bpp(pillow_sweep(rgb, "JPEG"), stats["bpp"])
    return {"megapixels": round(rgb.shape[0] * rgb.shape[1] / 1e6, 2), "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
            "wall_s": float(wall), "estimated_s": stats.get("estimated_seconds"),
            "peak_rss_gb": round(int(rss_kb) / 1024**2, 2), "iterations": stats["iterations"],
            "bpp": stats["bpp"], "psnr": round(psnr(rgb, decoded, 255.0), 2), "jpeg_psnr": round(jpeg_psnr, 2),
            "decode_s": float(dec_wall), "decode_rss_gb": round(int(dec_rss) / 1024**2, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="0.4,1.5,3.4,6,12", help="megapixels, comma-separated")
    ap.add_argument("--extra", default="", help="more `asmr encode` options, e.g. '--preset fast'")
    args = ap.parse_args()
    if not kodak(TILES):
        print("Kodak images not found under ../shared/data/kodak (skipped)")
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in [float(x) for x in args.sizes.split(",")]:
            r = run(mp, Path(tmp), args.extra.split())
            print(json.dumps(r), flush=True)
            rows.append(r)
    keys = ["megapixels", "size", "wall_s", "estimated_s", "peak_rss_gb", "iterations", "bpp", "psnr", "jpeg_psnr",
            "decode_s", "decode_rss_gb"]
    print(markdown_table(keys, [[r[k] for k in keys] for r in rows]))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    OUT.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["megapixels"] for r in rows], [r["wall_s"] for r in rows], "o-")
    ax.set_xlabel("megapixels")
    ax.set_ylabel("encode wall time (s)")
    ax.set_title("asmr encode, default preset, 2-core CPU")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(OUT / "encode_time.png", dpi=120)


if __name__ == "__main__":
    main()
