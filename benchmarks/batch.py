"""Batch throughput: Kodak images at half size, `--preset fast`, encoded by one process (one
worker with every core's threads: `--jobs 1 --threads CORES`), by the local pool
(`--jobs CORES`, one thread each) and as tasks on a local Ray cluster started here
(`--ray`, one CPU each). Prints wall time, files/minute, peak RSS and whether every
mode wrote the same bytes.

    python benchmarks/batch.py               # 16 images, about 6 min on 2 cores
    python benchmarks/batch.py --images 4    # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, kodak, markdown_table  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(roots: list[int]) -> tuple[int, int]:
    """(largest process, sum) of resident memory over these processes and their descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
            rss[int(d.name)] = int((d / "statm").read_text().split()[1]) * PAGE
        except (OSError, ValueError):
            continue
    seen, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack += children.get(pid, [])
    sizes = [rss.get(p, 0) for p in seen]
    return max(sizes, default=0), sum(sizes)


class PeakRSS:
    """Samples a process tree's memory every 0.2 s while a command runs."""

    def __init__(self, roots: list[int]):
        self.roots, self.largest, self.total = roots, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            big, tot = _tree_rss(self.roots)
            self.largest, self.total = max(self.largest, big), max(self.total, tot)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mode(name: str, src: Path, out: Path, extra: list[str], watch: list[int]) -> dict:
    cmd = [sys.executable, "-m", "asmr_cli", "encode", str(src), "-r", "-o", str(out), "--preset", "fast",
           "--quiet", *extra]
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.Popen(cmd, cwd=ROOT)
    with PeakRSS([p.pid, *watch]) as mem:
        code = p.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # asmr and its workers (not Ray's: not our children)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    files = len(list(out.rglob("*.asmr")))
    print(f"{name}: {files} files, {wall:.1f} s, exit {code}", flush=True)
    return {"mode": name, "wall": wall, "cpu": cpu, "files": files, "largest": mem.largest, "total": mem.total,
            "digest": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.asmr")}}


def start_ray(cpus: int, temp: str) -> tuple[subprocess.Popen, str, float]:
    port = _free_port()
    log = Path(temp) / "start.log"
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    start = time.perf_counter()
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--port", str(port), "--num-cpus", str(cpus),
                             "--node-ip-address", "127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
                             "--object-store-memory", str(200 << 20), "--temp-dir", temp],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None:
            raise SystemExit(log.read_text())
        time.sleep(0.2)
    return head, f"127.0.0.1:{port}", time.perf_counter() - start


def stop_ray(head: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
        try:
            os.killpg(head.pid, sig)
            head.wait(wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16, help="how many Kodak images (kodim01 ...)")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray row")
    args = ap.parse_args()
    paths = kodak()[:args.images]
    if not paths:
        print("benchmarks/batch.py: Kodak images not found (../shared/data/kodak); skipped")
        return
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="asmr-batch-bench-"))
    try:
        src = work / "in"
        src.mkdir()
        for p in paths:
            with Image.open(p) as im:
                im.resize((im.width // 2, im.height // 2), Image.BOX).save(src / p.name)
        print(f"load average before: {os.getloadavg()}", flush=True)
        c = str(args.cores)
        rows = [run_mode(f"one process (--jobs 1 --threads {c})", src, work / "one",
                         ["--jobs", "1", "--threads", c], []),
                run_mode(f"local pool (--jobs {c})", src, work / "pool", ["--jobs", c], [])]
        ray_start = None
        if not args.no_ray:
            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray is not installed: no Ray row (pip install -e '.[ray]')")
            else:
                temp = tempfile.mkdtemp(prefix="asmr-ray-", dir="/tmp")
                head, address, ray_start = start_ray(args.cores, temp)
                try:
                    rows.append(run_mode(f"Ray, local cluster ({c} CPUs)", src, work / "ray", ["--ray", address],
                                         [head.pid]))
                finally:
                    stop_ray(head)
                    shutil.rmtree(temp, ignore_errors=True)
        print(f"load average after: {os.getloadavg()}", flush=True)
        base = rows[0]
        table = []
        for r in rows:
            table.append([r["mode"], f"{r['wall']:.1f}", f"{r['files'] * 60 / r['wall']:.2f}",
                          f"{base['wall'] / r['wall']:.2f}x",
                          f"{r['cpu'] / r['files']:.1f}" if "Ray" not in r["mode"] else "(on the cluster)",
                          f"{r['largest'] / 2**20:.0f}",
                          f"{r['total'] / 2**20:.0f}", "yes" if r["digest"] == base["digest"] else "NO"])
        print()
        print(f"{len(paths)} Kodak images at half size, --preset fast, {args.cores} cores")
        print(markdown_table(["mode", "wall s", "files/min", "speed-up", "CPU s per file",
                              "peak RSS, largest process (MB)",
                              "peak RSS, all processes (MB)", "same bytes as one process"], table))
        if ray_start is not None:
            print(f"\nRay cluster start-up (not counted above): {ray_start:.1f} s; the Ray row's 'all processes' "
                  "includes the cluster's own daemons")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
