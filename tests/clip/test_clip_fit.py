"""The clip fit's lam: re-anchored on the group's measured rate, and the quantisation step moved with it."""

import math

import numpy as np
import pytest
import torch

from asmr_cli.clip import encoder as clip_encoder
from asmr_cli.clip import fit


def _model(lam=0.01):
    rng = np.random.default_rng(0)
    clip = torch.from_numpy(rng.random((3, 3, 16, 16), dtype=np.float32))
    layout = clip_encoder.clip_layout(3, 16, 16, 3, "fast", None, None)
    return layout, fit.ResidualClipModel(layout, clip - 0.5, lam)


def test_a_new_step_keeps_the_output_and_moves_the_latents_with_it():
    layout, model = _model()
    lat = [z.data for z in model.latents]
    moments = [(torch.ones_like(z), torch.ones_like(z)) for z in lat]
    pixels = torch.arange(3 * 16 * 16)
    before = model.render_window(lat, pixels).detach().clone()
    gains, latents = list(model.gains), [z.clone() for z in lat]
    grid = model.ctx["c_grid"].detach().clone()
    fit._restep(model, lat, moments, math.sqrt(0.01 / 0.04))  # lam 4x: steps twice as coarse
    assert torch.allclose(model.render_window(lat, pixels), before, atol=1e-5)
    assert model.gains == pytest.approx([2 * g for g in gains])
    assert all(torch.allclose(z, 0.5 * z0) for z, z0 in zip(lat, latents))
    assert all(torch.allclose(v, torch.full_like(v, 0.25)) for _, v in moments)
    assert torch.allclose(model.ctx["c_grid"][:, 1], grid[:, 1] + math.log(0.5))
    # ... the steps as a model started at that lam has them
    assert model.gains == pytest.approx(_model(0.04)[1].gains)


def test_lam_is_reanchored_as_the_rate_model_scales_and_within_its_range():
    def rate(lam):  # the bits fall as 1/lam
        return 1000.0 / lam

    lam, factor = fit.reanchored(rate, 0.01, measured=4000.0, aim=1000.0)  # 4x over
    assert lam == pytest.approx(0.04, rel=1e-3) and factor == pytest.approx(0.25, rel=1e-3)
    lam, _ = fit.reanchored(rate, 0.01, measured=1e6, aim=1.0)  # far off: at most REANCHOR_RANGE
    assert lam == pytest.approx(0.01 * fit.REANCHOR_RANGE)
    lam, factor = fit.reanchored(rate, 0.01, measured=1100.0, aim=1000.0)  # a little over: a little up
    assert lam == pytest.approx(0.011, rel=1e-3) and factor == pytest.approx(1 / 1.1, rel=1e-3)
    # under its aim, lam is left where it started (never a finer step)
    assert fit.reanchored(rate, 0.01, measured=200.0, aim=1000.0) == (0.01, 1.0)
    assert fit.reanchored(rate, 0.01, measured=0.0, aim=1.0) == (0.01, 1.0)


def test_a_lam_started_far_too_low_is_reanchored_when_the_steering_starts():
    from asmr_cli.latent.fit import LatentFitConfig

    rng = np.random.default_rng(1)
    clip = rng.random((3, 4, 16, 16), dtype=np.float32)
    layout = clip_encoder.clip_layout(4, 16, 16, 3, "fast", None, None)
    model = fit.clip_rate_model(layout, clip, 2000.0)
    right = fit.bisect_lambda(model, 2000.0)
    cfg = LatentFitConfig(iters=20, lam=right / 20, target_bits=2000.0, seed=0, steer_range=4.0)
    plain = fit.fit_clip(layout, clip, cfg)
    anchored = fit.fit_clip(layout, clip, cfg, rate_model=model)
    assert plain.lam <= cfg.lam * 4.0  # steering alone stays within its range of the start
    assert anchored.lam > cfg.lam * 4.0  # re-anchored on the measured rate, far above the start
