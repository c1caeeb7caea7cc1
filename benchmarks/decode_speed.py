"""Decoder speed (issue 24): whole-process `asmr decode` beside `python -c "import numpy"` and
Pillow's JPEG -> PNG round trip of the same picture, and where the time goes, by stage.

    OMP_NUM_THREADS=1 python benchmarks/decode_speed.py            # kodim23 and carphone
    OMP_NUM_THREADS=1 python benchmarks/decode_speed.py --large     # + a 3.4 MP photo (slow encode)

The .asmr files are encoded once with a short fixed training (quality does not matter for
decode speed, the rate does) and kept in benchmarks/out/decode_speed/:

    asmr encode kodim23.png --bpp 0.5 --iters 60 --time-limit 100000
    asmr encode carphone_pristine.mp4 --frames 0:120 --iters 40 --time-limit 100000
    (--large: 4 x 3 Kodak images tiled, 2304 x 1536, --bpp 0.5 --iters 20)

Whole-process times are the best of --repeat runs (3), one at a time, in wall seconds and
in CPU seconds (user + system of the child: what a descheduled process does not count).
The per-stage table is one in-process decode after a warm-up (the best of --repeat), stage
by stage in CPU seconds and without the clip pipeline's second thread: parse, weights (the
networks' tensors), entropy decoding split into the context network's predictions and the
rest (range decoder, contexts, bookkeeping), synthesis split into the 2x upsampling and
the rest (modulation, per-pixel MLP), conversion to integers, and writing the output.
Prints markdown tables and the load average (this machine's 2 cores are shared with other
sessions).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "out" / "decode_speed"
NO_LIMIT = "100000"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def asmr(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "asmr_cli", *args], capture_output=True, text=True, env=_env())
    if proc.returncode:
        raise SystemExit(f"asmr {' '.join(args)} failed: {proc.stderr.strip()}")


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def best_of(cmd: list[str], repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds: user + system) of `repeat` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        c, t = _children_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=_env())
        walls.append(time.perf_counter() - t)
        cpus.append(_children_cpu() - c)
    return min(walls), min(cpus)


# -- inputs -----------------------------------------------------------------------------------

def prepare(large: bool) -> dict[str, Path]:
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    kodim = DATA / "kodak" / "kodim23.png"
    files["kodim23"] = OUT / "kodim23.asmr"
    if not files["kodim23"].exists():
        asmr("encode", str(kodim), "-o", str(files["kodim23"]), "-f", "--quiet", "--bpp", "0.5",
             "--iters", "60", "--time-limit", NO_LIMIT)
    jpg = OUT / "kodim23.jpg"
    if not jpg.exists():
        Image.open(kodim).convert("RGB").save(jpg, quality=90)
    if large:
        big = OUT / "tiled_3.4mp.png"
        if not big.exists():
            names = [f"kodim{i:02d}.png" for i in (1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 14, 15)]
            ims = [np.asarray(Image.open(DATA / "kodak" / n).convert("RGB").resize((768, 512))) for n in names]
            rows = [np.concatenate(ims[r * 3:r * 3 + 3], axis=1) for r in range(4)]
            Image.fromarray(np.concatenate(rows, axis=0)[:1536, :2304]).save(big)
        files["3.4 MP"] = OUT / "large.asmr"
        if not files["3.4 MP"].exists():
            asmr("encode", str(big), "-o", str(files["3.4 MP"]), "-f", "--quiet", "--bpp", "0.5",
                 "--iters", "20", "--time-limit", NO_LIMIT)
    files["carphone"] = OUT / "carphone.asmr"
    if not files["carphone"].exists():
        asmr("encode", str(DATA / "video" / "carphone_pristine.mp4"), "-o", str(files["carphone"]), "-f",
             "--quiet", "--frames", "0:120", "--iters", "40", "--time-limit", NO_LIMIT)
    return files


# -- per stage, in process ---------------------------------------------------------------------

class Stages:
    """Accumulated seconds per stage; `wrap` times every call of a module's function."""

    def __init__(self):
        self.t: dict[str, float] = defaultdict(float)
        self._undo: list = []

    @contextlib.contextmanager
    def stage(self, name: str):
        t = time.process_time()  # CPU seconds: steadier than wall time on a shared machine
        try:
            yield
        finally:
            self.t[name] += time.process_time() - t

    def wrap(self, module, name: str, stage: str) -> None:
        fn = getattr(module, name, None)
        if fn is None:
            return

        def timed(*a, **k):
            with self.stage(stage):
                return fn(*a, **k)

        setattr(module, name, timed)
        self._undo.append((module, name, fn))

    def restore(self) -> None:
        for module, name, fn in reversed(self._undo):
            setattr(module, name, fn)
        self._undo.clear()


def _instrument(s: Stages) -> None:
    from asmr_cli.latent import context_model as cm
    from asmr_cli.latent import latents

    s.wrap(cm, "predict", "predictions")  # the context network: the per-grid path (before issue 24)
    if hasattr(cm, "FixedNet"):
        s.wrap(cm.FixedNet, "predict", "predictions")  # the batched path
    for name in ("up2", "up2_into"):
        s.wrap(latents, name, "upsampling")


def image_stages(path: Path, dst: Path) -> dict[str, float]:
    from asmr_cli.api.formats import loads
    from asmr_cli.io.media import float_raster, write_image
    from asmr_cli.latent import codec
    from asmr_cli.latent import context_model as cm

    data = path.read_bytes()
    s = Stages()
    _instrument(s)
    try:
        with s.stage("parse"):
            f = loads(data)
        lay = f.header.layout
        with s.stage("weights"):
            syn, ctx = codec.unpack_networks(lay, f.tensors)
        with s.stage("entropy"):
            z = cm.decode_grids(f.grids, lay.grids(), ctx)
        img = codec.LatentImage(lay, syn, ctx, z)
        with s.stage("synthesis"):
            out = codec.render_native(img)
        with s.stage("to integers"):
            raster = float_raster(out, (lay.height, lay.width), f.header.bit_depth)
        with s.stage("write PNG"):
            write_image(dst, raster)
    finally:
        s.restore()
    t = dict(s.t)
    t["entropy"] -= t.get("predictions", 0.0)
    t["synthesis"] -= t.get("upsampling", 0.0)
    return t


def clip_stages(path: Path, dst: Path) -> dict[str, float]:
    from asmr_cli.api.formats import loads
    from asmr_cli.clip import codec as clip_codec
    from asmr_cli.io.clips import Clip
    from asmr_cli.io.video import write_video
    from asmr_cli.latent import codec

    data = path.read_bytes()
    s = Stages()
    _instrument(s)
    try:
        with s.stage("parse"):
            f = loads(data)
        with s.stage("weights"):
            clip = clip_codec.unpack_clip(f)
        lay = clip.layout
        n = f.header.sizes[0]
        frames = np.empty((n, lay.height, lay.width, lay.channels), np.uint8)
        for t in range(n):
            with s.stage("entropy"):
                img = clip.frame(t)
            with s.stage("synthesis"):
                out = codec.render_native(img)
            with s.stage("to integers"):
                frames[t] = np.moveaxis(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), 0, -1)
        from fractions import Fraction

        with s.stage("write .mp4"):
            write_video(dst, Clip(frames, Fraction(f.header.fps_num, f.header.fps_den)))
    finally:
        s.restore()
    t = dict(s.t)
    t["entropy"] -= t.get("predictions", 0.0)
    t["synthesis"] -= t.get("upsampling", 0.0)
    return t


def macs(path: Path) -> float:
    from asmr_cli.api.images import describe

    return describe(path.read_bytes())["macs_per_pixel"]


STAGES = ["parse", "weights", "predictions", "entropy", "upsampling", "synthesis", "to integers", "write"]
LABELS = {"predictions": "context predictions", "entropy": "range decoding and the rest of entropy decoding",
          "upsampling": "synthesis: 2x upsampling", "synthesis": "synthesis: modulation and MLP",
          "write": "writing the output (PNG level 1 / .mp4)"}


def best_stages(fn, path: Path, dst: Path, repeat: int) -> dict[str, float]:
    fn(path, dst)  # warm-up (imports, caches)
    runs = [fn(path, dst) for _ in range(repeat)]
    best = min(runs, key=lambda r: sum(r.values()))
    return {("write" if k.startswith("write") else k): v for k, v in best.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large", action="store_true", help="also a 3.4 MP photo (4 x 3 Kodak images, slow to encode)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    files = prepare(args.large)
    tmp = OUT / "decoded"
    tmp.mkdir(exist_ok=True)
    py = sys.executable

    print(f"load average before: {loadavg()}; OMP_NUM_THREADS={_env()['OMP_NUM_THREADS']}")
    print()
    print(f"| whole process (best of {args.repeat}) | wall seconds | CPU seconds | load average |")
    print("| --- | --- | --- | --- |")
    rows = [("`python -c \"import numpy\"`", [py, "-c", "import numpy"]),
            ("imports of the decode path (numpy, constriction, asmr_cli.api; Pillow too before issue 24)",
             [py, "-c", "import asmr_cli.api.files, asmr_cli.api.images, asmr_cli.io.media"]),
            ("Pillow: kodim23 JPEG (q90) -> PNG",
             [py, "-c", f"from PIL import Image; Image.open({str(OUT / 'kodim23.jpg')!r}).save("
                        f"{str(tmp / 'pillow.png')!r})"])]
    for name, path in files.items():
        dst = tmp / (f"{name}.mp4" if name == "carphone" else f"{name.replace(' ', '_')}.png")
        rows.append((f"`asmr decode` {name}", [py, "-m", "asmr_cli", "decode", str(path), "-o", str(dst), "-f"]))
    whole = {}
    for name, cmd in rows:
        sec, cpu = best_of(cmd, args.repeat)
        whole[name] = (sec, cpu)
        fps = (lambda t: f" ({120 / t:.1f} frames/s)") if "carphone" in name else (lambda t: "")
        print(f"| {name} | {sec:.3f}{fps(sec)} | {cpu:.3f}{fps(cpu)} | {loadavg()} |", flush=True)
    print()
    if "carphone" in files:  # the clip's critical path: the entropy decoding thread (synthesis runs beside it)
        code = ("import time; t = time.thread_time(); from asmr_cli.api.files import decode_file; "
                f"decode_file({str(files['carphone'])!r}, {str(tmp / 'main.mp4')!r}, force=True); "
                "print(time.thread_time() - t)")
        main = min(float(subprocess.run([py, "-c", code], check=True, capture_output=True, text=True,
                                        env=_env()).stdout) for _ in range(args.repeat))
        print(f"carphone: CPU seconds of the main thread (imports, entropy decoding, writing the .mp4; the "
              f"synthesis runs on a second thread), best of {args.repeat}: {main:.3f} ({120 / main:.1f} frames/s); "
              f"load average {loadavg()}")
        print()

    per = {}
    for name, path in files.items():
        if name == "carphone":
            per[name] = best_stages(clip_stages, path, tmp / "stages.mp4", args.repeat)
        else:
            per[name] = best_stages(image_stages, path, tmp / "stages.png", args.repeat)
    names = list(per)
    print("| stage, in process (CPU seconds) | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for st in STAGES:
        print(f"| {LABELS.get(st, st)} | " + " | ".join(f"{per[n].get(st, 0.0):.3f}" for n in names) + " |")
    print("| total | " + " | ".join(f"{sum(per[n].values()):.3f}" for n in names) + " |")
    print("| MAC/pixel | " + " | ".join(f"{macs(files[n]):.0f}" for n in names) + " |")
    imports = whole[rows[1][0]]
    print()
    for n in names:
        if n != "carphone":
            sec, cpu = whole[f"`asmr decode` {n}"]
            own = [t - i - per[n]["write"] for t, i in zip((sec, cpu), imports)]
            print(f"{n}: the decode's own work (whole process - the decode path's imports - writing the PNG): "
                  f"{own[0]:.3f} s wall, {own[1]:.3f} s CPU")
    print(f"\nload average after: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
