"""Format version 3: the latent pyramid's synthesis (numpy against torch), the context
model's fixed-point arithmetic (bit-identical across thread counts, close to the float
model it was trained as), and the file round trip."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from asmr_cli.api import EncodeOptions, decode_bytes, encode_raster, formats, read_stats, render_image
from asmr_cli.io.media import Raster
from asmr_cli.latent import context_model as cm
from asmr_cli.latent import format as fmt3
from asmr_cli.latent.codec import _resample, axis_taps, unpack
from asmr_cli.latent.fit import TORCH, LatentModel, laplace_bits
from asmr_cli.latent.latents import NUMPY, Layout, default_levels, features, synthesize, up2

from ..conftest import ROOT


def test_up2_is_torch_bilinear_and_its_integer_form_is_exact():
    rng = np.random.default_rng(0)
    for h, w, oh, ow in [(5, 7, 10, 13), (1, 3, 2, 5), (4, 4, 8, 8)]:
        x = rng.normal(size=(2, h, w)).astype(np.float32)
        ours = up2(NUMPY, x, (oh, ow))
        ref = F.interpolate(torch.from_numpy(x)[None], scale_factor=2, mode="bilinear",
                            align_corners=False)[0, :, :oh, :ow].numpy()
        np.testing.assert_allclose(ours, ref, atol=1e-6)
        z = rng.integers(-50, 50, size=(h, w))
        np.testing.assert_array_equal(cm.up2_int(z, (oh, ow)), 16 * up2(NUMPY, z.astype(np.float64), (oh, ow)))


def _random_model(layout, seed=0):
    rng = np.random.default_rng(seed)
    p = {name: rng.normal(0, 0.3, shape).astype(np.float32) for name, shape in layout.synthesis_shapes()}
    lat = [rng.integers(-3, 4, size=(len(layout.planes(lv)), *s)).astype(np.float32)
           for lv, s in enumerate(layout.shapes)]
    return p, lat


def test_synthesis_numpy_matches_torch():
    layout = Layout(11, 9, 3, default_levels(11, 9), 6, 4)
    p, lat = _random_model(layout)
    ours = synthesize(NUMPY, layout, {k: v.copy() for k, v in p.items()}, [z.copy() for z in lat])
    with torch.no_grad():
        ref = synthesize(TORCH, layout, {k: torch.from_numpy(v) for k, v in p.items()},
                         [torch.from_numpy(z) for z in lat])
    np.testing.assert_allclose(ours, ref.numpy(), atol=1e-5)
    a = features(NUMPY, layout, p, lat)
    assert a.shape == (layout.features, 11, 9)


def _context_case(seed=0, hidden=8):
    layout = Layout(23, 17, 3, 4, 4, hidden)
    rng = np.random.default_rng(seed)
    grids = layout.grids()
    shapes = cm.parameter_shapes(len(grids), hidden)
    params = {name: rng.normal(0, 0.5, shape) for name, shape in shapes}
    params["c_grid"][:, 1] = 0.5
    latents = [rng.laplace(0, 1.5, size=s).round().astype(np.int64) for _, _, s in grids]
    return layout, grids, params, latents


def test_context_coding_round_trip():
    layout, grids, params, latents = _context_case()
    q = cm.to_fixed(params)
    coded = cm.encode_grids(latents, grids, q)
    decoded = cm.decode_grids(coded, grids, q)
    for a, b in zip(latents, decoded):
        np.testing.assert_array_equal(a, b)


def test_fixed_point_context_model_follows_the_float_model():
    """The file's integer network predicts what the trained float network predicts, to its
    rounding: means within a few 1/16 steps, scales within a few table steps."""
    layout, grids, params, latents = _context_case(seed=1, hidden=16)
    q = cm.to_fixed(params)
    k = next(i for i, g in enumerate(grids) if g[0] == layout.levels - 2)
    _, plane, shape = grids[k]
    parent = latents[[i for i, g in enumerate(grids) if g[0] == grids[k][0] + 1 and g[1] == plane][0]]
    rows, cols = cm.positions(shape, False)
    x = cm.contexts(latents[k], cm.up2_int(parent, shape), rows, cols, False)
    mean, scale = cm.predict(q, k, x)
    xf = torch.from_numpy(x / (1 << cm.ACT_BITS))
    t = {n: torch.from_numpy(v) for n, v in params.items()}
    h = torch.relu(xf @ t["c_w1"].T + t["c_b1"])
    h = torch.relu(h @ t["c_w2"].T + t["c_b2"])
    out = (h @ t["c_w3"].T + t["c_b3"] + t["c_grid"][k]).numpy()
    assert np.median(np.abs(mean - out[:, 0])) < 0.05
    inside = (out[:, 1] > -3.5) & (out[:, 1] < 5.5)
    assert np.median(np.abs(np.log(scale[inside]) - out[inside, 1])) < 0.05


PREDICT_SCRIPT = """
import hashlib, json, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests.latent.test_latents import _context_case
from asmr_cli.latent import context_model as cm
layout, grids, params, latents = _context_case(seed=3, hidden=16)
q = cm.to_fixed(params)
h = hashlib.sha256()
for k, (_, _, shape) in enumerate(grids):
    for anchor in (True, False):
        rows, cols = cm.positions(shape, anchor)
        x = cm.contexts(latents[k], None, rows, cols, anchor)
        mean, scale = cm.predict(q, k, x)
        h.update(mean.tobytes()); h.update(scale.tobytes())
print(json.dumps(h.hexdigest()))
"""


@pytest.mark.slow
def test_context_predictions_bit_identical_across_thread_counts():
    digests = set()
    for threads in ("1", "2", "4"):
        env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", PREDICT_SCRIPT.format(root=str(ROOT))], env=env,
                             capture_output=True, text=True, check=True, timeout=120)
        digests.add(json.loads(out.stdout))
    assert len(digests) == 1


def test_training_rate_is_close_to_the_coded_size():
    """The differentiable bit count the encoder trains on is what the coder spends (within
    a few percent plus the coder's few words per grid)."""
    layout, grids, params, latents = _context_case(seed=2, hidden=8)
    image = torch.zeros(3, layout.height, layout.width)
    model = LatentModel(layout, image, 1e-3)
    with torch.no_grad():
        for name, v in params.items():
            model.ctx[name].copy_(torch.from_numpy(np.rint(v * 256) / 256))
        by_level = [[None] * len(layout.planes(lv)) for lv in range(layout.levels)]
        for (lv, p, _), z in zip(grids, latents):
            by_level[lv][layout.planes(lv).index(p)] = torch.from_numpy(z.astype(np.float32))
        bits = float(model.rate_bits([torch.stack(g) for g in by_level]))
    coded = cm.encode_grids(latents, grids, cm.to_fixed(params))
    actual = sum(32 * c.words.size for c in coded)
    assert abs(actual - bits) < 0.05 * bits + 64 * len(grids)


def test_laplace_bits_sum_to_a_distribution():
    x = torch.arange(-200, 201, dtype=torch.float32)
    p = torch.exp2(-laplace_bits(x, torch.tensor(0.3), torch.tensor(1.2)))
    assert abs(float(p.sum()) - 1) < 1e-4


def _tiny_raster(h=24, w=20, channels=3):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w]
    base = [128 + 80 * np.sin(xx / 4 + c) * np.cos(yy / 5) for c in range(channels)]
    px = np.clip(np.stack(base, -1) + rng.normal(0, 6, (h, w, channels)), 0, 255).astype(np.uint8)
    return Raster(px, 8)


def _encode(raster, **kw):
    opts = dict(preset="fast", iters=30, bpp=4.0, device="cpu")
    opts.update(kw)
    return encode_raster(raster, EncodeOptions(**opts))


def test_encode_decode_round_trip_is_deterministic():
    r = _tiny_raster(48, 40)
    a, b = _encode(r), _encode(r)
    assert a.data == b.data
    f = formats.loads(a.data)
    assert f.version == fmt3.VERSION and isinstance(f.header, fmt3.LatentHeader)
    out = decode_bytes(a.data)
    assert out.pixels.shape == r.pixels.shape
    assert a.stats["psnr"] > 20
    assert abs(a.stats["bpp"] / 4.0 - 1) <= 0.05
    assert _encode(r, seed=1).data != a.data


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_every_channel_count(channels):
    r = _tiny_raster(12, 10, channels)
    res = _encode(r, bpp=8.0)
    assert decode_bytes(res.data).pixels.shape == (12, 10, channels)
    assert read_stats(res.data)["channels"] == channels


def test_any_resolution_native_region_is_the_crop_and_other_sizes_render():
    r = _tiny_raster()
    data = _encode(r).data
    full = decode_bytes(data).pixels
    part = render_image(data, region=(3, 5, 7, 6)).pixels
    np.testing.assert_array_equal(part, full[5:11, 3:10])
    assert render_image(data, scale=2).pixels.shape == (48, 40, 3)
    up = render_image(data, scale=2).pixels.astype(float)
    assert np.abs(up[::2, ::2] - full).mean() < 12  # the enlargement follows the native image
    assert render_image(data, size=(7, 5)).pixels.shape == (5, 7, 3)


def test_axis_taps_preserve_constants_and_area():
    for n_in, n_out in [(10, 23), (23, 10), (7, 7), (5, 1), (60000, 60000)]:
        idx, w = axis_taps(n_in, n_out, 0, n_out)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
        assert idx.min() >= 0 and idx.max() < n_in
    x = np.arange(12.0)[None, :, None]
    np.testing.assert_allclose(_resample(x, axis_taps(12, 4, 0, 4), 1).ravel(), [1, 4, 7, 10])


def test_stats_of_a_latent_file():
    data = _encode(_tiny_raster()).data
    s = read_stats(data)
    assert s["format_version"] == 3 and s["model"] == "latent"
    assert 0 < s["macs_per_pixel"] < s["unshared_macs_per_pixel"]
    img = unpack(formats.loads(data))
    assert len(img.latents) == len(img.layout.grids())


def test_size_cap_is_never_exceeded_and_too_small_is_a_clear_error():
    r = _tiny_raster(32, 32)
    res = _encode(r, bpp=None, size=700)
    assert len(res.data) <= 700
    from asmr_cli.core.errors import AsmrError

    with pytest.raises(AsmrError, match="--size"):
        _encode(r, bpp=None, size=200)


def test_model_option(tmp_path):
    from typer.testing import CliRunner

    from asmr_cli.cli.app import app
    from asmr_cli.io.media import write_image

    src = tmp_path / "a.png"
    write_image(src, _tiny_raster(16, 12))
    runner = CliRunner()
    for model, version in (("coordinate", 2), ("latent", 3)):
        out = tmp_path / f"{model}.asmr"
        r = runner.invoke(app, ["encode", str(src), "-o", str(out), "--model", model, "--iters", "5", "--quiet"])
        assert r.exit_code == 0, r.output
        assert formats.loads(out.read_bytes()).version == version
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "x.asmr"), "--model", "latent",
                            "--bases", "4,4x4,3", "--quiet"])
    assert r.exit_code == 1 and "coordinate" in r.output
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "y.asmr"), "--model", "pixels", "--quiet"])
    assert r.exit_code == 1 and "expected latent or coordinate" in r.output


def test_banded_numpy_synthesis_equals_the_whole(monkeypatch):
    import asmr_cli.latent.latents as lt

    layout = Layout(37, 23, 3, 4, 5, 4)
    p, lat = _random_model(layout, seed=4)
    whole = synthesize(NUMPY, layout, p, [z.copy() for z in lat])
    monkeypatch.setattr(lt, "TILE_PIXELS", 50)  # bands of two rows
    np.testing.assert_allclose(lt.synthesize_numpy(layout, p, lat), whole, atol=1e-5)
