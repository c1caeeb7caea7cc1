from dataclasses import replace

import pytest

from asmr_cli.api import EncodeOptions, encode_raster
from asmr_cli.coordinate.encoder import image_architecture as _architecture
from asmr_cli.coordinate.encoder import learning_rate
from asmr_cli.coordinate.ratecontrol import hidden_for
from asmr_cli.core.errors import AsmrError
from asmr_cli.core.presets import LATENT_MIN_BPP, PRESETS
from asmr_cli.core.rates import quality_to_bpp, target_for


def test_quality_maps_monotonically_onto_rate():
    rates = [quality_to_bpp(q) for q in range(0, 101, 5)]
    assert all(a < b for a, b in zip(rates, rates[1:]))
    with pytest.raises(AsmrError):
        quality_to_bpp(101)


def test_width_grows_with_budget():
    widths = [hidden_for(b, 7) for b in (500, 5_000, 20_000, 60_000, 200_000)]
    assert widths == sorted(widths) and widths[0] < widths[-1]


def test_conflicting_targets_rejected():
    with pytest.raises(AsmrError):
        target_for(1000, 1.0, 500, None)
    with pytest.raises(AsmrError):
        target_for(1000, -1.0, None, None)


@pytest.mark.parametrize("bpp", [3.0, 6.0])
def test_bpp_target_hit_within_5_percent(sample_rgb, bpp):
    res = encode_raster(sample_rgb, EncodeOptions(preset="fast", iters=60, bpp=bpp, device="cpu"))
    achieved = len(res.data) * 8 / (96 * 64)
    assert abs(achieved / bpp - 1) <= 0.05
    assert res.stats["target_bpp"] == bpp


def test_size_cap_never_exceeded(sample_rgb):
    for cap in (2000, 4000):
        res = encode_raster(sample_rgb, EncodeOptions(preset="fast", iters=40, size=cap, device="cpu"))
        assert len(res.data) <= cap


def test_size_cap_below_any_network_refused(sample_rgb):
    with pytest.raises(AsmrError, match="needs at least"):
        encode_raster(sample_rgb, EncodeOptions(preset="fast", iters=5, size=400, device="cpu", model="coordinate"))


def test_size_cap_below_the_latent_models_smallest_file_refused(sample_rgb):
    with pytest.raises(AsmrError, match="too small for this image"):
        encode_raster(sample_rgb, EncodeOptions(preset="fast", iters=5, size=330, device="cpu"))


def test_higher_quality_gives_bigger_files(sample_rgb):
    sizes = [len(encode_raster(sample_rgb, EncodeOptions(preset="fast", iters=40, quality=q, device="cpu")).data)
             for q in (60, 90)]
    assert sizes[0] < sizes[1]


def test_latent_grids_chosen_by_rate():
    p = PRESETS["default"]
    assert p.latents_for(LATENT_MIN_BPP / 2) == 0
    assert p.latents_for(LATENT_MIN_BPP) == 1
    assert replace(p, latent_dim=3).latents_for(0.01) == 3
    shape = (512, 768)
    low = _architecture(shape, 3, EncodeOptions(bpp=0.25), int(0.25 * 512 * 768 / 8))
    high = _architecture(shape, 3, EncodeOptions(bpp=1.0), int(1.0 * 512 * 768 / 8))
    forced = _architecture(shape, 3, EncodeOptions(bpp=1.0, latent_dim=0), int(1.0 * 512 * 768 / 8))
    assert (low.latent_dim, high.latent_dim, forced.latent_dim) == (0, 1, 0)


def test_learning_rate_grows_for_small_images_only():
    assert learning_rate(2e-3, 768 * 512) == 2e-3
    assert learning_rate(2e-3, 10) == pytest.approx(5e-3)
    rates = [learning_rate(2e-3, n) for n in (10, 1000, 20000, 65536, 10**6)]
    assert rates == sorted(rates, reverse=True) and min(rates) == 2e-3


def test_least_budget_counts_latent_values_at_a_bit():
    from asmr_cli.coordinate.architecture import Architecture
    from asmr_cli.coordinate.decomposition import Decomposition
    from asmr_cli.coordinate.ratecontrol import MIN_BITS_PER_LATENT, MIN_BITS_PER_PARAM, TENSOR_OVERHEAD, fit_budget
    from asmr_cli.core.rates import Target

    arch = Architecture(Decomposition((40, 64, 64), ((1, 40, 1), (1, 8, 8), (1, 8, 8))), 16, 3, latent_dim=4)
    shapes = arch.param_shapes()
    latents = sum(s[0] * s[1] * s[2] * s[3] for n, s in shapes if n.startswith("latent"))
    assert latents > arch.param_count() / 2  # a latent-heavy (video-like) network
    least = TENSOR_OVERHEAD * len(shapes) + int(((arch.param_count() - latents) * MIN_BITS_PER_PARAM
                                                 + latents * MIN_BITS_PER_LATENT) / 8)
    assert fit_budget(Target(100), 0, arch) == least  # a tiny target is raised to it
    assert fit_budget(Target(least + 500), 0, arch) == least + 500


@pytest.mark.parametrize("sens_scale", [1e-4, 1e-12, 1e-20])
def test_step_search_fills_the_budget_whatever_the_sensitivity_scale(sens_scale):
    """A whole clip's per-sample-mean loss has tiny gradients; the search must still reach
    the budget instead of stopping at the edge of its bracket."""
    import numpy as np

    from asmr_cli.coordinate.ratecontrol import search_steps

    rng = np.random.default_rng(0)
    params = {"layer1.weight": rng.normal(0, 0.05, (32, 32)).astype(np.float32),
              "latent4": rng.normal(0, 0.5, (20, 8, 8, 4)).astype(np.float32)}
    sens = {"layer1.weight": np.full(32, sens_scale), "latent4": np.full(1, sens_scale / 10)}
    steps, size = search_steps(params, sens, 6000)
    assert 0.95 * 6000 <= size <= 6000


def test_wide_networks_train_at_half_the_rate():
    from asmr_cli.core.presets import WIDE_HIDDEN

    p = PRESETS["default"]
    assert p.lr_for(WIDE_HIDDEN) == p.lr
    assert p.lr_for(WIDE_HIDDEN + 4) == p.lr / 2
