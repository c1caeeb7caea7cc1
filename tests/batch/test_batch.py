"""Batches: a folder with good images, a corrupt one and a subfolder, through the local
worker pool and through a real local Ray cluster; outputs mirrored, byte-identical to
single-file runs, failures reported, exit 1; an interrupted batch resumes."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asmr_cli.batch import expand_inputs, plan_batch
from asmr_cli.batch.run import worker_plan
from asmr_cli.cli.app import app

from ..conftest import ROOT, SAMPLES

runner = CliRunner()
ENC = ["--preset", "fast", "--iters", "20", "--device", "cpu", "--seed", "3"]
GOOD = ["kodim08_small.png", "kodim23_small.png", "sub/kodim04_small.png"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """24x16 crops of the samples, one in a subfolder, a truncated PNG and a file that is
    not an image (left out of the batch)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("batch") / "photos"
    (root / "sub").mkdir(parents=True)
    for i, name in enumerate(GOOD):
        Image.open(SAMPLES / Path(name).name).crop((8 * i, 4 * i, 8 * i + 24, 4 * i + 16)).save(root / name)
    (root / "broken.png").write_bytes((SAMPLES / "kodim08_small.png").read_bytes()[:100])
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def singles(tree, tmp_path_factory):
    """Each good file through the single-file command: what a batch must reproduce."""
    out = tmp_path_factory.mktemp("singles")
    data = {}
    for name in GOOD:
        dst = out / Path(name).with_suffix(".asmr").name
        r = runner.invoke(app, ["encode", str(tree / name), "-o", str(dst), "--quiet", *ENC])
        assert r.exit_code == 0, r.output
        png = dst.with_suffix(".png")
        r = runner.invoke(app, ["decode", str(dst), "-o", str(png)])
        assert r.exit_code == 0, r.output
        data[name] = (dst.read_bytes(), png.read_bytes())
    return data


def _lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _check_encoded(out: Path, objs: list[dict], singles: dict) -> None:
    *files, summary = objs
    assert summary["summary"] and summary["files"] == 4 and summary["ok"] == 3 and summary["failed"] == 1
    assert [Path(f["input"]).name for f in summary["failures"]] == ["broken.png"]
    by_name = {Path(f["input"]).name: f for f in files}
    assert by_name["broken.png"]["status"] == "failed" and "broken.png" in by_name["broken.png"]["error"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == \
        sorted(str(Path(n).with_suffix(".asmr")) for n in GOOD)
    for name in GOOD:
        assert by_name[Path(name).name]["status"] == "ok" and by_name[Path(name).name]["bytes"] > 0
        assert (out / name).with_suffix(".asmr").read_bytes() == singles[name][0], name


def _check_decoded(out: Path, singles: dict) -> None:
    for name in GOOD:
        assert (out / name).with_suffix(".png").read_bytes() == singles[name][1], name


def test_expand_and_plan(tree, tmp_path):
    files, failed = expand_inputs("encode", [tree], recursive=True)
    assert sorted(str(f.relative_to(tree)) for f, _ in files) == sorted(GOOD + ["broken.png"])
    assert not failed
    files, failed = expand_inputs("encode", [str(tree / "*.png"), tree / "kodim08_small.png", tmp_path / "nope.png"])
    assert sorted(f.name for f, _ in files) == ["broken.png", "kodim08_small.png", "kodim23_small.png"]
    assert len(failed) == 1 and "no such file" in failed[0].error
    _, failed = expand_inputs("decode", [tree])
    assert "--recursive" in failed[0].error
    batch = plan_batch("encode", [tree / "sub", tree / "kodim08_small.png"], tmp_path / "o", recursive=True)
    assert sorted(j.output for j in batch.jobs) == sorted(str(tmp_path / "o" / p) for p in
                                                          ["sub/kodim04_small.asmr", "kodim08_small.asmr"])
    batch = plan_batch("encode", [tree / "sub", tree / "kodim08_small.png"], tmp_path / "o")  # a clip's frames
    assert sorted(j.output for j in batch.jobs) == sorted(str(tmp_path / "o" / p) for p in
                                                          ["sub.asmr", "kodim08_small.asmr"])
    from asmr_cli.cli.entry import plain_decode_args

    assert plain_decode_args(["decode", "archive/*.asmr"]) is None  # the fast path leaves globs to the batch
    assert worker_plan(16, cores=2) == (2, 1) and worker_plan(1, cores=8) == (1, 8)
    assert worker_plan(3, cores=16) == (3, 5) and worker_plan(16, threads=2, cores=8) == (4, 2)


@pytest.mark.slow
def test_local_pool(tree, singles, tmp_path):
    out = tmp_path / "enc"
    r = runner.invoke(app, ["encode", str(tree), "-r", "-o", str(out), "--jobs", "2", "--json", *ENC])
    assert r.exit_code == 1, r.output
    _check_encoded(out, _lines(r.stdout), singles)
    assert "1 of 4 files failed" in r.stderr and "broken.png" in r.stderr
    dec = tmp_path / "dec"
    r = runner.invoke(app, ["decode", str(out), "-r", "-o", str(dec), "--jobs", "2"])
    assert r.exit_code == 0, r.output
    _check_decoded(dec, singles)
    r = runner.invoke(app, ["encode", str(tree), "-r", "-o", str(out), "--json", *ENC])  # all done: skipped
    assert r.exit_code == 1 and [o.get("status") for o in _lines(r.stdout)].count("skipped") == 3


def _start(args: list[str]) -> subprocess.Popen:
    # SIGINT back to the default in the child: a shell without job control ignores it for background jobs
    return subprocess.Popen([sys.executable, "-m", "asmr_cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _gone(pids: list[int], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc and ps")
def test_interrupted_batch_resumes(tree, tmp_path):
    out = tmp_path / "enc"
    slow = ["--preset", "fast", "--iters", "300", "--device", "cpu", "--seed", "3"]
    p = _start(["encode", str(tree), "-r", "-o", str(out), "--jobs", "1", "--json", *slow])
    end = time.monotonic() + 240
    while not list(out.rglob("*.asmr")):
        assert p.poll() is None and time.monotonic() < end, p.communicate()
        time.sleep(0.05)
    workers = [int(x) for x in subprocess.run(["ps", "-o", "pid=", "--ppid", str(p.pid)], capture_output=True,
                                              text=True).stdout.split()]
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert (128 - p.returncode if p.returncode < 0 else p.returncode) == 130, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert workers and _gone(workers), "a worker outlived the interrupted batch"
    done = sorted(out.rglob("*.asmr"))
    assert 1 <= len(done) < 3, "interrupted too late to test a resume"
    assert not [q for q in out.rglob("*") if ".part" in q.name]
    kept = {q: q.read_bytes() for q in done}
    r = runner.invoke(app, ["encode", str(tree), "-r", "-o", str(out), "--json", *slow])
    assert r.exit_code == 1, r.output
    status = {Path(o["input"]).name: o["status"] for o in _lines(r.stdout)[:-1]}
    assert sorted(status.values()) == sorted(["failed"] + ["skipped"] * len(done) + ["ok"] * (3 - len(done)))
    assert all(q.read_bytes() == b for q, b in kept.items())
    assert len(list(out.rglob("*.asmr"))) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """A Ray head on 127.0.0.1 with 2 CPUs, in its own process group so that stopping it
    touches no other Ray on the machine (`ray stop` would end every one of this user's)."""
    pytest.importorskip("ray")
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="asmr-ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    log = Path(temp) / "start.log"
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--node-ip-address", "127.0.0.1", "--dashboard-agent-listen-port", str(_free_port()),
                             "--include-dashboard=false",
                             "--disable-usage-stats", "--object-store-memory", str(100 << 20), "--temp-dir", temp],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        end = time.monotonic() + 180
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:  # SIGTERM drains for up to 30 s; what is left after 5 is killed
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
            try:
                os.killpg(head.pid, sig)
                head.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_cluster(tree, singles, tmp_path, ray_cluster):
    out = tmp_path / "enc"
    p = subprocess.run([sys.executable, "-m", "asmr_cli", "encode", str(tree), "-r", "-o", str(out), "--ray",
                        ray_cluster, "--json", *ENC], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stderr
    _check_encoded(out, _lines(p.stdout), singles)
    dec = tmp_path / "dec"
    p = subprocess.run([sys.executable, "-m", "asmr_cli", "decode", str(out), "-r", "-o", str(dec), "--ray",
                        ray_cluster, "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    _check_decoded(dec, singles)


@pytest.mark.slow
def test_without_ray_installed(singles, tmp_path, monkeypatch):
    src = tmp_path / "a.asmr"
    src.write_bytes(singles[GOOD[0]][0])
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    r = runner.invoke(app, ["decode", str(src), "--ray", "auto", "-o", str(tmp_path / "out")])
    assert r.exit_code == 1 and "pip install 'asmr[ray]'" in r.stderr
    assert not (tmp_path / "out").exists()
