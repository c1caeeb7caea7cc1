"""Format version 8: the synthesis's refine stage (two 3x3 convolutions over the output,
residual): numpy and torch agree, a window trains what the whole image decodes, the
header's field is capped, and any-size decoding keeps format 3's contracts."""

import numpy as np
import pytest
import torch

from asmr_cli.api import EncodeOptions, decode_bytes, encode_raster, formats, read_stats, render_image
from asmr_cli.container.file import frame, unframe
from asmr_cli.core.errors import AsmrError
from asmr_cli.io.media import Raster
from asmr_cli.latent import encoder
from asmr_cli.latent import format as fmt
from asmr_cli.latent.codec import decoder_macs
from asmr_cli.latent.fit import refine_torch
from asmr_cli.latent.latents import REFINE_MARGIN, Layout, refine_numpy, synthesize_numpy

from .test_recipe import _model, window_and_whole


def test_numpy_refine_is_torchs_convolution_with_the_edges_repeated():
    rng = np.random.default_rng(0)
    p = {"conv1": rng.normal(0, 0.3, (4, 3, 3, 3)), "c1": rng.normal(0, 0.1, 4),
         "conv2": rng.normal(0, 0.3, (3, 4, 3, 3)), "c2": rng.normal(0, 0.1, 3)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    out = rng.random((3, 37, 29), dtype=np.float32)
    ours = refine_numpy(p, out, rows=8)  # bands of rows: the same as one band
    m = REFINE_MARGIN
    x = torch.nn.functional.pad(torch.from_numpy(out)[None], (m, m, m, m), mode="replicate")[0]
    with torch.no_grad():
        ref = refine_torch({k: torch.from_numpy(v) for k, v in p.items()}, x).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(refine_numpy(p, out, rows=64), ours, atol=1e-6)


@pytest.mark.parametrize("rows,cols", [((8, 24), (16, 48)), ((0, 8), (56, 70)), ((40, 45), (0, 9)), ((0, 45), (0, 70))])
def test_a_window_with_the_refine_stage_renders_what_the_whole_image_does(rows, cols):
    layout, model = _model(refine=3)
    lat, _, _, part, full = window_and_whole(layout, model, rows, cols)
    with torch.no_grad():
        torch.testing.assert_close(part, full[:, rows[0]:rows[1], cols[0]:cols[1]].reshape(3, -1),
                                   rtol=1e-5, atol=1e-5)
        # and the numpy decoder's synthesis is the same function
        p = {k: v.detach().numpy() for k, v in model.synthesis_params().items()}
        ours = synthesize_numpy(layout, p, [z.numpy() for z in lat])
        np.testing.assert_allclose(ours, full.numpy(), atol=1e-4)
    with pytest.raises(ValueError):
        model.render(lat, torch.arange(10))


def _raster(h=40, w=36):
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w]
    px = np.stack([128 + 80 * np.sin(xx / 3 + c) * np.cos(yy / 4) for c in range(3)], -1)
    return Raster(np.clip(px + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8), 8)


@pytest.fixture
def refine_everywhere(monkeypatch):
    monkeypatch.setattr(encoder, "REFINE_FROM", 0)


def test_version_8_round_trip_region_and_any_size(refine_everywhere):
    r = _raster()
    res = encode_raster(r, EncodeOptions(preset="fast", iters=40, bpp=4.0))
    assert res.data == encode_raster(r, EncodeOptions(preset="fast", iters=40, bpp=4.0)).data  # deterministic
    f = formats.loads(res.data)
    assert f.version == fmt.VERSION_REFINE and f.header.refine == encoder.REFINE
    stats = read_stats(res.data)
    assert stats["format_version"] == 8 and stats["refine"] == encoder.REFINE
    plain = Layout(40, 36, 3, f.header.levels, f.header.hidden, f.header.context_hidden)
    assert stats["macs_per_pixel"] == pytest.approx(decoder_macs(plain) + 18 * 3 * encoder.REFINE, abs=0.1)
    full = decode_bytes(res.data).pixels
    assert abs(res.stats["psnr"] - 10 * np.log10(255**2 / np.mean((full.astype(float) - r.pixels) ** 2))) < 0.01
    np.testing.assert_array_equal(render_image(res.data, region=(3, 5, 7, 6)).pixels, full[5:11, 3:10])
    up = render_image(res.data, scale=2)
    assert up.pixels.shape == (80, 72, 3)
    assert np.abs(up.pixels.astype(float)[::2, ::2] - full).mean() < 12
    np.testing.assert_array_equal(render_image(res.data, scale=2, region=(10, 4, 20, 30)).pixels,
                                  up.pixels[4:34, 10:30])
    assert render_image(res.data, size=(9, 10)).pixels.shape == (10, 9, 3)


def test_small_images_stay_version_3():
    res = encode_raster(_raster(), EncodeOptions(preset="fast", iters=20, bpp=4.0))
    assert formats.loads(res.data).version == fmt.VERSION


def test_the_refine_width_is_capped_and_belongs_to_version_8_alone(refine_everywhere):
    data = encode_raster(_raster(), EncodeOptions(preset="fast", iters=5, bpp=4.0)).data
    version, header, payload = unframe(data, fmt.VERSIONS)
    for width in (0, fmt.MAX_REFINE + 1, 255):
        bad = frame(version, header[:-1] + bytes([width]), payload)
        with pytest.raises(AsmrError, match="refine width"):
            formats.loads(bad)
    with pytest.raises(AsmrError):  # the same header as version 3: one byte too many
        formats.loads(frame(fmt.VERSION, header, payload))
    with pytest.raises(AsmrError):  # a version-8 header without its byte
        formats.loads(frame(version, header[:-1], payload))
