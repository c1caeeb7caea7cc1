import numpy as np
import pytest
from typer.testing import CliRunner

from asmr_cli.api import EncodeOptions, decode_bytes, encode_raster, render_image
from asmr_cli.coordinate import resample
from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import Decomposition
from asmr_cli.coordinate.synthesis import render_numpy
from asmr_cli.core.errors import AsmrError
from asmr_cli.io import sizes
from asmr_cli.io.media import Raster, read_image

from ..conftest import SAMPLES


def _random_params(arch, seed=0):
    rng = np.random.default_rng(seed)
    p = {}
    for name, shape in arch.param_shapes():
        scale = 0.05 if name.startswith(("layer", "mod", "proj")) else 0.3
        p[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return p


@pytest.fixture(scope="module")
def net():
    """A random 4-level network on 70 x 90 (padded, several tiles per axis)."""
    dec = Decomposition((70, 90), ((2, 3, 4, 3), (3, 2, 4, 4)))
    arch = Architecture(dec, 16, 3, latent_dim=2)
    return arch, _random_params(arch)


@pytest.fixture(scope="module")
def encoded():
    src = read_image(SAMPLES / "kodim08_small.png")
    small = Raster(src.pixels[:40, :56].copy(), src.bit_depth)
    return encode_raster(small, EncodeOptions(preset="fast", iters=12, device="cpu")).data


def _native_float(arch, p):
    return render_numpy(arch, p)[(slice(None),) + tuple(slice(0, n) for n in arch.decomposition.sizes)]


def _area_matrix(n, m):
    a = np.zeros((m, n))
    for o in range(m):
        e0, e1 = o * n / m, (o + 1) * n / m
        for y in range(n):
            a[o, y] = max(0.0, min(y + 1, e1) - max(y, e0)) / (e1 - e0)
    return a


# ---------------------------------------------------------------- output size and region


@pytest.mark.parametrize("kw,expected", [
    ({}, (768, 512)),
    ({"scale": 2.0}, (1536, 1024)),
    ({"scale": 0.25}, (192, 128)),
    ({"size": (1536, 1000)}, (1536, 1000)),
    ({"out_width": 1000}, (1000, 667)),
    ({"out_height": 100}, (150, 100)),
    ({"out_width": 10, "out_height": 30}, (10, 30)),
    ({"scale": 1e-6}, (1, 1)),
])
def test_output_size(kw, expected):
    assert sizes.output_size(768, 512, **kw) == expected


@pytest.mark.parametrize("kw,message", [
    ({"scale": 0.0}, "--scale"),
    ({"scale": -2.0}, "--scale"),
    ({"scale": float("nan")}, "--scale"),
    ({"out_width": 0}, "--width"),
    ({"out_height": -5}, "--height"),
    ({"size": (10, 10), "scale": 2.0}, "cannot be combined"),
    ({"size": (10, 10), "out_width": 5}, "cannot be combined"),
    ({"scale": 2.0, "out_height": 5}, "cannot be combined"),
    ({"scale": 1e7}, "at most"),
])
def test_output_size_rejects(kw, message):
    with pytest.raises(AsmrError, match=message):
        sizes.output_size(768, 512, **kw)


def test_render_limit():
    with pytest.raises(AsmrError, match="over the 100-pixel limit"):
        sizes.check_region(None, 20, 10, max_pixels=100)
    assert sizes.check_region((5, 5, 10, 10), 20000, 10000, max_pixels=100) == (5, 5, 10, 10)


@pytest.mark.parametrize("region", [(0, 0, 101, 10), (95, 0, 10, 10), (0, 60, 5, 5), (100, 0, 1, 1)])
def test_region_outside_rejected(region):
    with pytest.raises(AsmrError, match="outside the 100x64 output"):
        sizes.check_region(region, 100, 64)


# ---------------------------------------------------------------- the maths


@pytest.mark.parametrize("n,base,n_out", [(70, 3, 140), (90, 4, 271), (13, 1, 40), (70, 3, 35), (90, 4, 17),
                                          (9, 8, 2), (70, 3, 1)])
def test_taps_keep_a_constant_constant(n, base, n_out):
    t = resample.axis_taps(n, base, n_out, 0, n_out)
    np.testing.assert_allclose(t.weight.sum(axis=(1, 2)), 1.0, atol=1e-12)
    if n_out < n:  # area averages: no negative weight
        assert (t.weight >= 0).all()
    else:  # each output's own block at weight 1, plus a correction that sums to 0
        np.testing.assert_allclose(t.weight[:, 0, 0], 1.0)
    assert t.blocks.min() >= 0 and t.blocks.max() <= (n - 1) // base


def test_native_tiles_match_whole_grid_render(net):
    """Same numbers up to float rounding (a BLAS product over fewer rows may round differently)."""
    arch, p = net
    np.testing.assert_allclose(resample.render(arch, p, (70, 90)), _native_float(arch, p), atol=2e-5)


def test_native_region_is_bit_identical_to_the_crop(net):
    arch, p = net
    full = resample.render(arch, p, (70, 90))
    for start, stop in [((0, 0), (70, 90)), ((5, 7), (6, 8)), ((17, 30), (69, 89)), ((0, 40), (70, 41))]:
        part = resample.render(arch, p, (70, 90), start, stop)
        np.testing.assert_array_equal(part, full[:, start[0]:stop[0], start[1]:stop[1]])


def test_sampling_at_native_positions_is_the_native_output(net):
    """The off-grid path, asked for the native grid, computes the same numbers."""
    arch, p = net
    out = resample.render_resampled(arch, p, (70, 90), (0, 0), (70, 90))
    np.testing.assert_allclose(out, _native_float(arch, p), atol=2e-5)


def test_upscale_by_3_passes_through_native_samples(net):
    """At 3x every third output sits on a native pixel centre; with the narrowest blend
    (the gap between blocks only) the partition of unity is 1 there."""
    arch, p = net
    up = resample.render(arch, p, (210, 270), blend=0.5)
    assert up.shape == (3, 210, 270)
    np.testing.assert_allclose(up[:, 1::3, 1::3], _native_float(arch, p), atol=2e-5)


def test_upscale_spreads_block_jumps():
    """A jump between two blocks' native pixels is spread over the gap, not kept as a step."""
    dec = Decomposition((16, 16), ((2, 8), (2, 8)))
    arch = Architecture(dec, 8, 1)
    p = _random_params(arch)
    p["mod0.weight"] *= 0.1  # smooth inside blocks
    native = resample.render(arch, p, (16, 16))[0]
    up = resample.render(arch, p, (16, 128))[0]  # 8x along x: 8 outputs between native x = 7 and 8
    jump = np.abs(native[:, 8] - native[:, 7])
    inside = np.abs(np.diff(up[:, :56], axis=1)).max(axis=1)
    across = np.abs(np.diff(up[:, 59:69], axis=1)).max(axis=1)
    assert (jump > 4 * inside).any()  # the test has real jumps to spread
    assert (across <= 0.3 * jump + 3 * inside + 1e-6).all()


@pytest.mark.parametrize("size", [(35, 45), (23, 30), (70, 45), (7, 9), (1, 1)])
def test_downscale_is_the_area_average_of_the_native_output(net, size):
    arch, p = net
    ref = np.einsum("oy,cyx,px->cop", _area_matrix(70, size[0]), _native_float(arch, p), _area_matrix(90, size[1]))
    np.testing.assert_allclose(resample.render(arch, p, size), ref, atol=2e-5)


def test_resampled_region_matches_crop(net):
    arch, p = net
    full = resample.render(arch, p, (157, 203))
    part = resample.render(arch, p, (157, 203), (40, 71), (99, 150))
    np.testing.assert_allclose(part, full[:, 40:99, 71:150], atol=1e-6)


def test_video_resizes_space_and_keeps_frames():
    dec = Decomposition((5, 12, 20), ((1, 5), (3, 4), (4, 5)))
    arch = Architecture(dec, 8, 3, latent_dim=1)
    p = _random_params(arch)
    native = _native_float(arch, p)
    np.testing.assert_allclose(resample.render(arch, p, (5, 12, 20)), native, atol=2e-5)
    up = resample.render(arch, p, (5, 36, 60), blend=0.5)
    np.testing.assert_allclose(up[:, :, 1::3, 1::3], native, atol=2e-5)
    down = resample.render(arch, p, (5, 6, 10))
    ref = np.einsum("oy,ctyx,px->ctop", _area_matrix(12, 6), native, _area_matrix(20, 10))
    np.testing.assert_allclose(down, ref, atol=2e-5)


# ---------------------------------------------------------------- through the codec


def test_region_is_the_exact_crop_of_the_native_decode(encoded):
    full = render_image(encoded)
    assert full.pixels.shape == (40, 56, 3)
    assert np.abs(full.pixels.astype(int) - decode_bytes(encoded).pixels.astype(int)).max() <= 1
    for x, y, w, h in [(0, 0, 56, 40), (0, 0, 1, 1), (55, 39, 1, 1), (3, 5, 17, 30), (20, 0, 36, 13)]:
        part = render_image(encoded, region=(x, y, w, h))
        np.testing.assert_array_equal(part.pixels, full.pixels[y:y + h, x:x + w])


def test_render_image_sizes(encoded):
    assert render_image(encoded, scale=2).pixels.shape == (80, 112, 3)
    assert render_image(encoded, scale=0.25).pixels.shape == (10, 14, 3)
    assert render_image(encoded, width=28).pixels.shape == (20, 28, 3)
    assert render_image(encoded, size=(100, 30)).pixels.shape == (30, 100, 3)
    assert render_image(encoded, scale=4, region=(100, 60, 16, 8)).pixels.shape == (8, 16, 3)
    with pytest.raises(AsmrError, match="outside"):
        render_image(encoded, scale=2, region=(100, 0, 13, 1))


def test_cli_decode_sizes_and_errors(tmp_path, encoded):
    from asmr_cli.cli.app import app

    src = tmp_path / "x.asmr"
    src.write_bytes(encoded)
    runner = CliRunner()
    out = tmp_path / "o.png"
    r = runner.invoke(app, ["decode", str(src), "-o", str(out), "--width", "112", "-f"])
    assert r.exit_code == 0, r.output
    assert read_image(out).pixels.shape == (80, 112, 3)
    r = runner.invoke(app, ["decode", str(src), "-o", str(out), "--region", "10,10,8,4", "-f"])
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_image(out).pixels, render_image(encoded).pixels[10:14, 10:18])
    for args, message in [(["--scale", "0"], "--scale"), (["--size", "10"], "--size"),
                          (["--region", "50,0,10,10"], "outside the 56x40 output"),
                          (["--scale", "2", "--width", "5"], "cannot be combined")]:
        r = runner.invoke(app, ["decode", str(src), "-o", str(out), "-f", *args])
        assert r.exit_code == 1
        assert message in r.output and "Traceback" not in r.output


def test_video_decode_at_any_size(tmp_path):
    from fractions import Fraction

    from asmr_cli.api import decode_video, encode_clip, render_clip
    from asmr_cli.cli.app import app
    from asmr_cli.io.clips import Clip, FrameRange
    from asmr_cli.io.video import read_video

    rng = np.random.default_rng(0)
    clip = Clip(rng.integers(0, 256, (4, 16, 24, 3), dtype=np.uint8), Fraction(24))
    data = encode_clip(clip, EncodeOptions(preset="fast", iters=8, device="cpu", bpp=4.0)).data
    native = decode_video(data).frames
    same = render_clip(data).frames
    assert same.shape == native.shape
    assert np.abs(same.astype(int) - native.astype(int)).max() <= 1
    assert render_clip(data, scale=2).frames.shape == (4, 32, 48, 3)
    assert render_clip(data, width=12).frames.shape == (4, 8, 12, 3)
    part = render_clip(data, FrameRange(1, 3), region=(5, 2, 10, 7)).frames
    np.testing.assert_array_equal(part, same[1:3, 2:9, 5:15])
    src = tmp_path / "v.asmr"
    src.write_bytes(data)
    out = tmp_path / "v.y4m"
    r = CliRunner().invoke(app, ["decode", str(src), "-o", str(out), "--scale", "2", "-f"])
    assert r.exit_code == 0, r.output
    assert read_video(out).frames.shape == (4, 32, 48, 3)
    r = CliRunner().invoke(app, ["decode", str(src), "-o", str(out), "--region", "20,0,10,4", "-f"])
    assert r.exit_code == 1 and "outside the 24x16 output" in r.output
