"""The fitting loop's safety net: a diverging fit goes back to its best weights."""

import math

import torch

from asmr_cli import fit as fitmod
from asmr_cli.architecture import Architecture
from asmr_cli.decomposition import auto_bases
from asmr_cli.model import ASMR


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

