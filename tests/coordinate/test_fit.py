"""The fitting loop's safety net: a diverging fit goes back to its best weights."""

import math
import types

import pytest
import torch

from asmr_cli.coordinate import fit as fitmod
from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import auto_bases
from asmr_cli.coordinate.model import ASMR


def _model_and_opt():
    model = ASMR(Architecture(auto_bases((12, 16), levels=3), 8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for p in model.parameters():  # one step, so Adam has moments to clear
        p.grad = torch.ones_like(p)
    opt.step()
    return model, opt


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_tensors().items()}


def test_guard_restores_the_best_weights_on_divergence():
    model, opt = _model_and_opt()
    guard = fitmod._DivergenceGuard(model, opt)
    guard.check(0.01, 10)
    best = _params(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # the weights move on ...
    guard.check(0.02, 20)  # ... a worse loss, but not a divergence: kept
    assert guard.restarts == 0 and guard.lr_factor == 1.0
    guard.check(0.05, 30)  # five times the best: restored, rate halved, moments cleared
    assert guard.restarts == 1 and guard.lr_factor == 0.5 and guard.restarted_at == 30
    assert all(torch.equal(v, best[k]) for k, v in model.named_tensors().items())
    assert len(opt.state) == 0
    guard.check(math.nan, 40)
    assert guard.restarts == 2 and guard.lr_factor == 0.25


def test_guard_waits_for_a_first_loss():
    model, opt = _model_and_opt()
    guard = fitmod._DivergenceGuard(model, opt)
    guard.check(math.inf, 10)  # nothing to restore yet
    assert guard.restarts == 0 and len(opt.state) > 0



def test_time_limit_right_after_a_guard_reset_still_gives_sensitivities(monkeypatch):
    """The guard clears Adam's moments; when the time limit stops training in that same
    step, the sensitivities must not need them (they raised KeyError 'exp_avg_sq')."""
    import numpy as np

    clock = [0.0]
    monkeypatch.setattr(fitmod, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    real_check = fitmod._DivergenceGuard.check
    resets = []

    def check(self, mse, step):
        real_check(self, mse, step)
        if step == 10:
            real_check(self, math.inf, step)  # a diverged loss: weights restored, moments cleared
            resets.append(len(self.opt.state))
            clock[0] += 100.0  # ... and the time limit runs out in this step

    monkeypatch.setattr(fitmod._DivergenceGuard, "check", check)
    arch = Architecture(auto_bases((12, 16), levels=3), 8, 3)
    target = np.random.default_rng(0).random((3, 12, 16), dtype=np.float32)
    seen = {}

    def policy(params, sens):
        seen.update(sens)
        return {k: np.full(len(v), 1e-3, np.float32) for k, v in sens.items()}

    cfg = fitmod.FitConfig(iters=200, time_limit=5.0, device="cpu")
    result = fitmod.fit(arch, target, policy, cfg)
    assert resets == [0] and result.iterations == 10
    assert set(seen) == {name for name, _ in arch.param_shapes()}
    for name, v in result.sensitivity.items():
        assert np.isfinite(v).all() and (v >= 0).all(), name


def test_sensitivity_reads_adams_moments_when_it_has_them():
    model, opt = _model_and_opt()  # one step with gradient 1: exp_avg_sq = (1 - beta2) * 1
    sens = fitmod._sensitivity(model, opt)
    for name, v in sens.items():
        assert v == pytest.approx(0.001), name
    opt.state.clear()
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    assert all((v == 9.0).all() for v in fitmod._sensitivity(model, opt).values())
