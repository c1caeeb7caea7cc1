"""Speed and memory benchmark (issue 4), one run, printed as a markdown table.

1. Time per full-image training step of the paper's Kodak configuration (4 levels, hidden
   256, bases 4,4,4,8 x 4,4,6,8, no latents) in our engine (shared form, sin(a+m)
   factorisation, blocked loss) and in a plain per-pixel implementation of the same network
   written here (every pixel through every layer, as the paper's reference training does).
2. Network decode time (numpy, as `asmr decode`) for that configuration and for the default
   preset, against the MAC-bound limit from the fp32 matrix-product throughput measured in
   this run.
3. Whole-process `asmr decode x.asmr -o x.png` against Pillow opening a JPEG of the same
   image and saving it as PNG.
4. Peak RSS of `asmr encode` on 768x512 and on 4096x4096 (kodim23 upscaled, few iterations:
   only memory matters), and what happens to a 16384x16384 input.

    python benchmarks/speed.py            # about 10 minutes on an idle 2-core CPU

GPU rows are added where torch sees a CUDA device.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KODIM23 = ROOT.parent / "shared" / "data" / "kodak" / "kodim23.png"
PAPER_BASES = "4,4,4,8x4,4,6,8"
PAPER_HIDDEN = 256
ASMR = [sys.executable, "-m", "asmr_cli"]


CLOCK = time.perf_counter  # time.process_time with --threads: CPU time, robust to a busy machine


def median_time(fn, reps: int, warm: int = 1) -> float:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        t = CLOCK()
        fn()
        times.append(CLOCK() - t)
    return statistics.median(times)


def matmul_gflops(lib: str, n: int = 1024, reps: int = 10) -> float:
    """Best-of fp32 (n x n) @ (n x n) throughput, GFLOP/s."""
    if lib == "numpy":
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)

        def f():
            return a @ b
    else:
        import torch

        a, b = torch.randn(n, n), torch.randn(n, n)

        def f():
            return a @ b
    f()
    best = min(median_time(f, 1, warm=0) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def load_target(path: Path) -> np.ndarray:
    from asmr_cli.io.media import read_image

    return read_image(path).as_float()


def paper_arch(sizes: tuple[int, int]):
    from asmr_cli.coordinate.architecture import Architecture
    from asmr_cli.coordinate.decomposition import parse_bases

    return Architecture(parse_bases(PAPER_BASES, sizes), PAPER_HIDDEN, 3, 0)


class PerPixel:
    """The same network evaluated per pixel: coordinates of every level for every pixel,
    every pixel through every layer (the paper's reference training)."""

    def __init__(self, arch, params: dict, target: np.ndarray, device: str):
        import torch

        from asmr_cli.coordinate.decomposition import digits, normalised_digits

        dec = arch.decomposition
        idx = np.indices(dec.padded).reshape(dec.dims, -1).T
        dig = [digits(idx[:, a], dec.bases[a]) for a in range(dec.dims)]
        self.coords = [torch.from_numpy(np.stack([normalised_digits(dec.bases[a][lv])[dig[a][:, lv]]
                                                  for a in range(dec.dims)], -1).astype(np.float32)).to(device)
                       for lv in range(dec.levels)]
        self.arch = arch
        self.p = {k: torch.nn.Parameter(v.detach().clone().to(device)) for k, v in params.items()}
        self.target = torch.from_numpy(target.reshape(target.shape[0], -1).T.copy()).to(device)
        self.opt = torch.optim.Adam(self.p.values(), lr=1e-3)

    def loss(self):
        import torch

        p, w0 = self.p, self.arch.w0
        h = self.coords[0]
        for i in range(self.arch.levels - 1):
            pre = h @ p[f"layer{i}.weight"].T + p[f"layer{i}.bias"] + self.coords[i + 1] @ p[f"mod{i}.weight"].T
            h = torch.sin(w0 * pre)
        out = h @ p["head.weight"].T + p["head.bias"]
        return ((out - self.target) ** 2).mean()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        self.opt.step()
        return loss


class Engine:
    """One training step exactly as `fit` takes it (blocked loss, chunked when huge)."""

    def __init__(self, arch, target: np.ndarray, device: str):
        import torch

        from asmr_cli.coordinate import fit as fitmod
        from asmr_cli.coordinate.model import ASMR

        torch.manual_seed(0)
        self.fit = fitmod
        self.model = ASMR(arch).to(device)
        self.tgt, self.mask = fitmod._blocked_target(arch, target, device)
        self.count = float(target.size)
        self.chunk = fitmod._chunk_cells(arch)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.fit._loss_backward(self.model, self.tgt, self.mask, self.count, None, self.chunk)
        self.opt.step()
        return loss


def training_rows(target: np.ndarray, reps: int, pp_reps: int, device: str) -> list[tuple]:
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    arch = paper_arch(target.shape[1:])
    engine = Engine(arch, target, device)
    per_pixel = PerPixel(arch, engine.model.named_tensors(), target, device)
    with torch.no_grad():  # same network, same weights: same loss
        a = float(per_pixel.loss())
        b = _engine_loss(engine)
    assert abs(a - b) <= 1e-4 * max(a, b), (a, b)
    ours = median_time(lambda: (engine.step(), sync()), reps, warm=3)
    theirs = median_time(lambda: (per_pixel.step(), sync()), pp_reps, warm=1)
    tag = "" if device == "cpu" else f" ({device})"
    return [
        (f"training step, paper config{tag}: engine", f"{ours:.3f} s", ""),
        (f"training step, paper config{tag}: per-pixel", f"{theirs:.2f} s", ""),
        (f"training speed-up{tag}", f"{theirs / ours:.0f}x", ">= 100x" if device == "cpu" else ""),
    ]


def _engine_loss(engine) -> float:
    from asmr_cli.coordinate.model import TORCH
    from asmr_cli.coordinate.synthesis import last_level

    out = last_level(TORCH, *engine.model.forward_coarse())
    err = (out - engine.tgt) ** 2
    if engine.mask is not None:
        err = err * engine.mask
    return float(err.sum() / engine.count)


def decode_rows(target: np.ndarray, asmr_file: Path, gflops: float, reps: int) -> list[tuple]:
    import torch

    from asmr_cli.api import formats
    from asmr_cli.coordinate.architecture import macs_per_pixel
    from asmr_cli.coordinate.codec import unpack
    from asmr_cli.coordinate.model import ASMR
    from asmr_cli.coordinate.synthesis import render_numpy

    torch.manual_seed(0)
    arch = paper_arch(target.shape[1:])
    paper_params = {k: v.detach().numpy() for k, v in ASMR(arch).named_tensors().items()}
    preset_arch, preset_params = unpack(formats.loads(asmr_file.read_bytes()))
    rows = []
    for name, a, p in (("paper config", arch, paper_params), ("default preset", preset_arch, preset_params)):
        t = median_time(lambda a=a, p=p: render_numpy(a, p), reps, warm=2)
        macs = macs_per_pixel(a) * math.prod(a.decomposition.padded)
        limit = 2 * macs / (gflops * 1e9)
        rows.append((f"network decode, {name} (hidden {a.hidden}, {a.levels} levels; "
                     f"{macs / 1e6:.0f}M MAC, limit {limit * 1e3:.1f} ms)",
                     f"{t * 1e3:.1f} ms = {t / limit:.1f}x limit", "<= 3x limit"))
    return rows


def wall(cmd: list[str], reps: int) -> float:
    """Median wall time of a command; with --threads, its CPU time (user + system)."""
    times = []
    for i in range(reps + 1):
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, cmd
        if i:
            cpu = usage.ru_utime + usage.ru_stime
            times.append(time.perf_counter() - t if CLOCK is time.perf_counter else cpu)
    return statistics.median(times)


def process_rows(asmr_file: Path, jpeg: Path, tmp: Path, reps: int) -> list[tuple]:
    asmr_bin = Path(sys.executable).with_name("asmr")
    cmd = [str(asmr_bin)] if asmr_bin.exists() else ASMR
    ours = wall(cmd + ["decode", str(asmr_file), "-o", str(tmp / "x.png"), "-f"], reps)
    pil = wall([sys.executable, "-c", "import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])",
                str(jpeg), str(tmp / "pil.png")], reps)
    torch_import = wall([sys.executable, "-c", "import torch"], max(1, reps // 2))
    return [
        ("`asmr decode x.asmr -o x.png` (768x512), whole process", f"{ours:.2f} s", "<= 0.5 s"),
        ("Pillow: open JPEG, save PNG, whole process", f"{pil:.2f} s", ""),
        ("(`python -c 'import torch'`, for scale)", f"{torch_import:.2f} s", ""),
    ]


# Linux carries a parent's peak RSS into a forked child's ru_maxrss, so the child is
# started by a fresh small Python that reports the peak of its own child alone.
_MEASURE = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
            "_, status, usage = os.wait4(p.pid, 0)\n"
            "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, file=sys.stdout)")


def peak_rss(cmd: list[str]) -> tuple[int, float, int, str]:
    """(exit code, seconds, peak RSS in bytes, last stderr line) of one process."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    code, rss = (int(x) for x in r.stdout.split())
    lines = r.stderr.strip().splitlines()
    return code, time.perf_counter() - t, rss, lines[-1] if lines else ""


def encode_cmd(src: Path, out: Path, iters: int, device: str = "cpu") -> list[str]:
    return ASMR + ["encode", str(src), "-o", str(out), "-f", "--quiet", "--iters", str(iters), "--device", device]


def memory_rows(small: tuple, src: Path, tmp: Path, big: int, big_iters: int) -> list[tuple]:
    from PIL import Image

    rows = [("peak RSS, `asmr encode` 768x512", f"{small[2] / 2**30:.2f} GB", "")]
    big_png = tmp / f"big{big}.png"
    Image.open(src).convert("RGB").resize((big, big), Image.BICUBIC).save(big_png, compress_level=1)
    code, secs, rss, last = peak_rss(encode_cmd(big_png, tmp / "big.asmr", big_iters))
    rows.append((f"peak RSS, `asmr encode` {big}x{big} (--iters {big_iters}, {secs:.0f} s)",
                 f"{rss / 2**30:.2f} GB" + ("" if code == 0 else f" (exit {code}: {last})"), "<= 6 GB"))
    per_mp = (rss - small[2]) / ((big * big - 768 * 512) / 1e6)
    rows.append(("encode memory per megapixel (slope of the two)", f"{per_mp / 2**20:.0f} MB", ""))
    huge_png = tmp / "huge.png"
    Image.new("1", (16384, 16384)).save(huge_png)
    code, secs, rss, last = peak_rss(encode_cmd(huge_png, tmp / "huge.asmr", 1))
    rows.append(("`asmr encode` 16384x16384", f"exit {code} in {secs:.1f} s, {rss / 2**20:.0f} MB: {last}",
                 "refused up front or encoded"))
    return rows


class Rows(list):
    """Table rows, echoed to stderr as they are measured (a full run takes minutes)."""

    def __iadd__(self, more):
        for r in more:
            self.append(r)
        return self

    def append(self, row) -> None:
        print(" | ".join(row), file=sys.stderr, flush=True)
        super().append(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=Path, default=KODIM23)
    ap.add_argument("--reps", type=int, default=10, help="timed repetitions of the fast measurements")
    ap.add_argument("--per-pixel-reps", type=int, default=2)
    ap.add_argument("--big", type=int, default=4096, help="side of the large encode")
    ap.add_argument("--big-iters", type=int, default=3, help="steps of the large encode (memory peaks in the first)")
    ap.add_argument("--threads", type=int, default=0,
                    help="run on this many threads and time in CPU seconds (for a busy machine); 0: as is, wall time")
    ap.add_argument("--skip-memory", action="store_true", help="leave out the peak-RSS rows")
    args = ap.parse_args()
    if args.threads and os.environ.get("OMP_NUM_THREADS") != str(args.threads):
        n = str(args.threads)  # the BLAS libraries read these at import: start again with them set
        env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if args.threads:
        global CLOCK
        CLOCK = time.process_time
    import torch

    target = load_target(args.image)
    rows = Rows()
    np_gflops, torch_gflops = matmul_gflops("numpy"), matmul_gflops("torch")
    rows.append(("fp32 matrix product, 1024^3 (numpy / torch)", f"{np_gflops:.0f} / {torch_gflops:.0f} GFLOP/s", ""))
    rows += training_rows(target, args.reps, args.per_pixel_reps, "cpu")
    if torch.cuda.is_available():
        rows += training_rows(target, args.reps, args.per_pixel_reps, "cuda")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from PIL import Image

        jpeg = tmp / "x.jpg"
        Image.open(args.image).convert("RGB").save(jpeg, quality=90)
        small = peak_rss(encode_cmd(args.image, tmp / "x.asmr", 20))
        assert small[0] == 0, small[3]
        rows += decode_rows(target, tmp / "x.asmr", np_gflops, args.reps)
        rows += process_rows(tmp / "x.asmr", jpeg, tmp, max(3, args.reps // 2))
        if not args.skip_memory:
            rows += memory_rows(small, args.image, tmp, args.big, args.big_iters)
    clock = f"CPU seconds on {args.threads} thread(s)" if args.threads else "wall time"
    print(f"\n{args.image.name}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, times in {clock}, "
          f"torch {torch.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| measure | result | target |\n| --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
