"""The speed and memory paths give the same results as the plain ones: chunked training
(exact full-batch gradient), the in-place blocked target, the numpy decoder (same pixels
as torch), and the light `asmr decode` entry (same file as the typer command)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from asmr_cli.coordinate import fit as fitmod
from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import Decomposition, auto_bases
from asmr_cli.coordinate.fit import fake_quant
from asmr_cli.coordinate.model import ASMR, TORCH
from asmr_cli.coordinate.synthesis import block as to_blocked


def _model(sizes, hidden=16, k=2, levels=4, seed=0):
    torch.manual_seed(seed)
    arch = Architecture(auto_bases(sizes, levels=levels), hidden, 3, k)
    model = ASMR(arch)
    with torch.no_grad():
        for name, p in model.named_tensors().items():
            if name.startswith("latent"):
                p.normal_(0, 0.5)
    return arch, model


def _grads(model, tgt, mask, count, transform, chunk_cells):
    model.zero_grad(set_to_none=True)
    loss = fitmod._loss_backward(model, tgt, mask, count, transform, chunk_cells)
    return float(loss), {n: p.grad.clone() for n, p in model.named_tensors().items()}


@pytest.mark.parametrize("sizes", [(37, 29), (32, 48), (5, 11, 13)])
@pytest.mark.parametrize("quantised", [False, True])
def test_chunked_step_equals_whole_step(sizes, quantised):
    arch, model = _model(sizes)
    rng = np.random.default_rng(0)
    target = rng.random((3, *sizes), dtype=np.float32)
    tgt, mask = fitmod._blocked_target(arch, target, "cpu")
    transform = None
    if quantised:
        steps = {n: np.array([float(p.detach().abs().max()) / 127 + 1e-8], np.float32)
                 for n, p in model.named_tensors().items()}

        def transform(name, t):
            return fake_quant(t, steps[name])

    count = float(target.size)
    loss0, g0 = _grads(model, tgt, mask, count, transform, None)
    cells = tgt.shape[0]
    for chunk in (1, 3, cells - 1, cells):
        loss1, g1 = _grads(model, tgt, mask, count, transform, max(1, chunk))
        assert loss1 == pytest.approx(loss0, rel=1e-5)
        for name in g0:
            torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("sizes,bases", [
    ((13, 21), None), ((16, 24), None), ((1, 5), None), ((7, 3, 5), None),
    ((32, 48), ((2, 2, 8), (2, 3, 8))), ((9, 8), ((3, 4), (2, 4))),
])
def test_blocked_target_equals_pad_then_permute(sizes, bases):
    dec = Decomposition(sizes, bases) if bases else auto_bases(sizes, levels=3)
    arch = Architecture(dec, 8, 2, 0)
    target = np.random.default_rng(1).random((2, *sizes), dtype=np.float32)
    grid, lb = dec.grid(dec.levels - 2), dec.level_bases(dec.levels - 1)
    pad = [(0, 0)] + [(0, p - s) for s, p in zip(dec.sizes, dec.padded)]
    want = to_blocked(TORCH, torch.from_numpy(np.pad(target, pad)), grid, lb)
    tgt, mask = fitmod._blocked_target(arch, target, "cpu")
    torch.testing.assert_close(tgt, want.contiguous(), rtol=0, atol=0)
    if mask is None:
        assert dec.sizes == dec.padded
    else:
        m = np.zeros((1, *dec.padded), np.float32)
        m[(slice(None),) + tuple(slice(0, s) for s in sizes)] = 1
        want_mask = to_blocked(TORCH, torch.from_numpy(m), grid, lb)
        assert mask.dtype == torch.bool
        torch.testing.assert_close(mask.float(), want_mask.contiguous(), rtol=0, atol=0)


def test_large_grids_train_in_chunks(monkeypatch):
    arch, _ = _model((37, 29))
    assert fitmod._chunk_cells(arch) is None
    monkeypatch.setattr(fitmod, "CHUNK_THRESHOLD", 100)
    monkeypatch.setattr(fitmod, "CHUNK_SAMPLES", 64)
    q = arch.decomposition.level_bases(arch.levels - 1)
    assert fitmod._chunk_cells(arch) == max(1, 64 // int(np.prod(q)))


def test_latent_grids_get_their_own_learning_rate():
    arch = Architecture(auto_bases((20, 24), levels=3), 8, 3, latent_dim=1)
    model = ASMR(arch)
    groups = fitmod._param_groups(model, (("latent", 10.0),))
    by_scale = {g["scale"]: {id(p) for p in g["params"]} for g in groups}
    latents = {id(p) for n, p in model.named_tensors().items() if n.startswith("latent")}
    assert set(by_scale) == {1.0, 10.0} and by_scale[10.0] == latents
    assert sum(len(g["params"]) for g in groups) == len(arch.param_shapes())


@pytest.fixture(scope="module")
def small_asmr(tmp_path_factory):
    from asmr_cli.api import EncodeOptions, encode_raster
    from asmr_cli.io.media import read_image

    from ..conftest import SAMPLES

    res = encode_raster(read_image(SAMPLES / "kodim08_small.png"), EncodeOptions(preset="fast", iters=80, device="cpu",
                                                                                   model="coordinate"))
    path = tmp_path_factory.mktemp("dec") / "a.asmr"
    path.write_bytes(res.data)
    return path


def test_numpy_decoder_gives_the_torch_pixels(small_asmr):
    """The decoder's numpy path and the trainer's torch path, on a trained network, give
    the same 8-bit raster. Both are float32 but sum in different orders (OpenBLAS vs torch's
    kernels, ~1e-6 relative), so a value lying within that of a rounding boundary
    (k + 0.5) / 255 can round either way: a few pixels in 10^4 may differ by one level,
    none by more."""
    from asmr_cli.api import formats
    from asmr_cli.coordinate.codec import unpack
    from asmr_cli.coordinate.synthesis import render_numpy
    from asmr_cli.io.media import float_raster as to_raster

    arch, params = unpack(formats.loads(small_asmr.read_bytes()))
    sizes = arch.decomposition.sizes
    model = ASMR(arch)
    with torch.no_grad():
        for name, p in model.named_tensors().items():
            p.copy_(torch.from_numpy(params[name]))
        t = to_raster(model().numpy(), sizes, 8).pixels.astype(int)
    n = to_raster(render_numpy(arch, params), sizes, 8).pixels.astype(int)
    diff = np.abs(t - n)
    assert diff.max() <= 1
    assert (diff > 0).mean() <= 1e-3


@pytest.mark.parametrize("argv,want", [
    (["decode", "a.asmr"], {"input": "a.asmr", "output": None, "force": False, "json": False}),
    (["decode", "-f", "a.asmr", "--output", "b.png", "--json"],
     {"input": "a.asmr", "output": "b.png", "force": True, "json": True}),
    (["decode", "a.asmr", "-o", "b.png", "--force"],
     {"input": "a.asmr", "output": "b.png", "force": True, "json": False}),
    (["decode"], None), (["decode", "a.asmr", "b.asmr"], None), (["decode", "a.asmr", "-o"], None),
    (["decode", "a.asmr", "-o", "-x.png"], None), (["decode", "a.asmr", "--scale", "2"], None),
    (["decode", "a.asmr", "--help"], None), (["--debug", "decode", "a.asmr"], None),
    (["decode", "a.asmr", "-o", "b.png", "-o", "c.png"], None), (["encode", "a.png"], None), ([], None),
])
def test_plain_decode_args(argv, want):
    from asmr_cli.cli.entry import plain_decode_args

    assert plain_decode_args(argv) == want


def test_light_decode_matches_the_typer_command(small_asmr, tmp_path, capsys):
    from typer.testing import CliRunner

    from asmr_cli.cli.app import app
    from asmr_cli.cli.entry import plain_decode
    from asmr_cli.io.media import read_image

    runner = CliRunner()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r = runner.invoke(app, ["decode", str(small_asmr), "-o", str(a), "--json"])
    assert r.exit_code == 0, r.output
    assert plain_decode({"input": str(small_asmr), "output": str(b), "force": False, "json": True}) == 0
    fast = json.loads(capsys.readouterr().out)
    slow = json.loads(r.stdout)
    assert fast.keys() == slow.keys() and fast["width"] == slow["width"] and fast["height"] == slow["height"]
    np.testing.assert_array_equal(read_image(a).pixels, read_image(b).pixels)

    bad = tmp_path / "bad.asmr"
    bad.write_bytes(b"ASMR\x01" + b"\xff" * 40)
    cases = [
        ({"input": str(tmp_path / "missing.asmr"), "output": None}, ["decode", str(tmp_path / "missing.asmr")]),
        ({"input": str(small_asmr), "output": str(a)}, ["decode", str(small_asmr), "-o", str(a)]),
        ({"input": str(bad), "output": str(tmp_path / "x.png")}, ["decode", str(bad), "-o", str(tmp_path / "x.png")]),
        ({"input": str(tmp_path), "output": None}, ["decode", str(tmp_path)]),
    ]
    for args, argv in cases:
        code = plain_decode({"force": False, "json": False, **args})
        err = capsys.readouterr().err
        r = runner.invoke(app, argv)
        assert (code, err.strip()) == (r.exit_code, r.output.strip())
    assert not (tmp_path / "x.png").exists()


def test_decode_imports_neither_torch_nor_typer(small_asmr, tmp_path):
    import subprocess
    import sys

    code = ("import sys\nsys.argv = ['asmr', 'decode', sys.argv[1], '-o', sys.argv[2]]\n"
            "from asmr_cli.cli.entry import run\n"
            "try:\n    run()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print(sorted(m for m in ('torch', 'typer', 'rich', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(small_asmr), str(tmp_path / "o.png")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert (tmp_path / "o.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_during_light_decode(tmp_path, sig, code):
    import signal

    from ..cli.test_signals import _interrupt, _leftovers, _slow_file, _start, _wait_for_library

    src, out = tmp_path / "slow.asmr", tmp_path / "out.png"
    _slow_file(src)
    p = _start(["decode", str(src), "-o", str(out)])  # a plain decode: the light path
    _wait_for_library(p, "constriction")
    rc, err = _interrupt(p, getattr(signal, sig))
    assert rc == code, err
    assert "Traceback" not in err
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise():
    code = "import asmr_cli, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
