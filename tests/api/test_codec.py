import numpy as np
import pytest

from asmr_cli.api import EncodeOptions, decode_bytes, encode_raster, formats, read_stats
from asmr_cli.io.media import Raster, read_image, write_image

from ..conftest import SAMPLES

FAST = dict(preset="fast", iters=150, device="cpu", bpp=8.0)


def _crop(raster, h, w):
    return Raster(raster.pixels[:h, :w].copy(), raster.bit_depth)


@pytest.mark.slow
@pytest.mark.parametrize("mode,floor", [("RGB", 16.0), ("L", 17.0), ("RGBA", 16.0)])
def test_round_trip_modes(tmp_path, mode, floor):
    from PIL import Image

    im = Image.open(SAMPLES / "kodim08_small.png").convert(mode)
    path = tmp_path / "x.png"
    im.save(path)
    src = read_image(path)
    res = encode_raster(src, EncodeOptions(**FAST))
    out = decode_bytes(res.data)
    assert out.pixels.shape == src.pixels.shape and out.pixels.dtype == src.pixels.dtype
    assert res.stats["psnr"] >= floor
    out_path = tmp_path / "y.png"
    write_image(out_path, out)
    assert read_image(out_path).pixels.shape == src.pixels.shape


def test_round_trip_16bit(tmp_path):
    src = read_image(SAMPLES / "kodim08_small.png")
    px16 = src.pixels.astype(np.uint16) * 257
    r16 = Raster(px16, 16)
    res = encode_raster(r16, EncodeOptions(**FAST))
    out = decode_bytes(res.data)
    assert out.bit_depth == 16 and out.pixels.dtype == np.uint16
    assert res.stats["psnr"] >= 16.0
    write_image(tmp_path / "o.png", out)
    back = read_image(tmp_path / "o.png")
    assert back.bit_depth == 16
    np.testing.assert_array_equal(back.pixels, out.pixels)


@pytest.mark.slow
@pytest.mark.parametrize("h,w", [(1, 1), (3, 37), (29, 17), (1, 50)])
def test_odd_sizes(h, w, sample_rgb):
    src = _crop(sample_rgb, h, w)
    res = encode_raster(src, EncodeOptions(**{**FAST, "iters": 400}))  # tiny: cheap steps
    out = decode_bytes(res.data)
    assert out.pixels.shape == (h, w, 3)
    assert res.stats["psnr"] >= (30.0 if h * w == 1 else 13.0)


def test_same_seed_same_bytes(sample_rgb):
    src = _crop(sample_rgb, 24, 40)
    opts = EncodeOptions(preset="fast", iters=40, device="cpu", seed=3)
    assert encode_raster(src, opts).data == encode_raster(src, opts).data


def test_stats_fields(tmp_path, sample_rgb):
    res = encode_raster(sample_rgb, EncodeOptions(**FAST))
    s = read_stats(res.data, SAMPLES / "kodim08_small.png")
    for key in ["format_version", "width", "height", "channels", "bit_depth", "bytes", "bpp", "params",
                "latents", "levels", "hidden", "macs_per_pixel", "unshared_macs_per_pixel", "mac_reduction",
                "psnr", "ssim"]:
        assert key in s
    assert s["bytes"] == len(res.data)
    assert s["bpp"] == pytest.approx(len(res.data) * 8 / (96 * 64), rel=1e-3)
    assert s["psnr"] == pytest.approx(res.stats["psnr"], abs=1e-3)
    assert formats.loads(res.data).header.sizes == (64, 96)
