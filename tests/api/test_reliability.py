"""--time-limit ends training on time and still writes a valid file; the same input, options
and seed give the same bytes on CPU; decoding gives the same pixels on every run, whatever
the number of BLAS threads."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from asmr_cli.api import decode_bytes
from asmr_cli.cli.app import app

from ..conftest import ROOT, SAMPLES

runner = CliRunner()
FAST = ["--preset", "fast", "--device", "cpu", "--quiet", "-f"]


def _warm_torch():
    """Import torch and the optimiser once, so the timing below is of training, not imports."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


@pytest.mark.slow
def test_time_limit_stops_training_and_writes_the_model(tmp_path):
    _warm_torch()
    out = tmp_path / "t.asmr"
    t0 = time.perf_counter()
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim08_small.png"), "-o", str(out), *FAST,
                            "--iters", "100000", "--time-limit", "2", "--json"])
    elapsed = time.perf_counter() - t0
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)
    assert 1 <= stats["iterations"] < 100_000
    assert elapsed < 2 + 8, elapsed  # packing and the quality check come on top of the 2 s
    raster = decode_bytes(out.read_bytes())
    assert raster.pixels.shape == (64, 96, 3)


def test_time_limit_shorter_than_a_step(tmp_path):
    _warm_torch()
    out = tmp_path / "t.asmr"
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim08_small.png"), "-o", str(out), *FAST,
                            "--iters", "100000", "--time-limit", "0.001", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["iterations"] >= 1
    decode_bytes(out.read_bytes())


def _encode(tmp_path, name, seed):
    out = tmp_path / name
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim08_small.png"), "-o", str(out), *FAST,
                            "--iters", "20", "--seed", str(seed)])
    assert r.exit_code == 0, r.output
    return out.read_bytes()


@pytest.mark.slow
def test_same_seed_same_bytes_on_cpu(tmp_path):
    a, b = _encode(tmp_path, "a.asmr", 3), _encode(tmp_path, "b.asmr", 3)
    assert a == b
    assert _encode(tmp_path, "c.asmr", 4) != a


@pytest.mark.slow
def test_decoding_is_bit_exact_across_runs_and_thread_counts(tmp_path):
    data = _encode(tmp_path, "a.asmr", 0)
    here = decode_bytes(data).pixels
    np.testing.assert_array_equal(decode_bytes(data).pixels, here)
    for threads in ("1", "2"):
        out = tmp_path / f"d{threads}.png"
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        r = subprocess.run([sys.executable, "-m", "asmr_cli", "decode", str(tmp_path / "a.asmr"), "-o", str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        from asmr_cli.io.media import read_image

        np.testing.assert_array_equal(read_image(out).pixels, here)
