"""Window steps in pairs (issue 22): a helper process computes the second window's gradient
on a second core, and the fit is the same floats with or without it (before it has started,
if it fails, or where there is none)."""

import dataclasses

import numpy as np
import pytest
import torch

from asmr_cli.latent import window_fit
from asmr_cli.latent.fit import LatentFitConfig, _fit_latents, fit_latents
from asmr_cli.latent.latents import Layout

LAYOUT = Layout(64, 96, 3, 4, 8, 8)
CFG = LatentFitConfig(iters=24, lam=1e-3, window_pixels=32 * 32, windows=2, soft_rounding=True, ste_fraction=0.25,
                      steer_from=0.25, steer_every=5, steer_memory=0.95, target_bits=2000.0)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0.5, 0.1, (3, 64, 96)), 0, 1).astype(np.float32)


def _fit(image, helper, cfg=CFG):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_latents(LAYOUT, image, cfg, None, None, 0.0, 10, "cpu", helper)
    finally:
        torch.set_num_threads(before)


def _same(a, b):
    for x, y in zip(a.latents, b.latents):
        np.testing.assert_array_equal(x, y)
    for k in a.synthesis:
        np.testing.assert_array_equal(a.synthesis[k], b.synthesis[k])
    for k in a.context:
        np.testing.assert_array_equal(a.context[k], b.context[k])
    assert a.lam == b.lam and a.iterations == b.iterations


def test_the_helper_process_changes_no_float(image, monkeypatch):
    alone = None

    def never_ready(self, win, phase):  # this process computes both windows of a pair
        return False

    with monkeypatch.context() as m:
        m.setattr(window_fit.Helper, "submit", never_ready)
        alone = _fit(image, helper=True)
    helped = _fit(image, helper=True)
    _same(alone, helped)
    one = _fit(image, helper=False, cfg=dataclasses.replace(CFG, windows=1))
    # pairs are not single steps under another name
    assert max(np.abs(x - y).max() for x, y in zip(one.latents, alone.latents)) > 0


def test_a_helper_that_fails_is_replaced_by_this_process(image, monkeypatch):
    calls = []
    collect = window_fit.Helper.collect

    def fail_once(self, win):
        calls.append(1)
        got = collect(self, win)
        return None if len(calls) == 3 else got

    monkeypatch.setattr(window_fit.Helper, "collect", fail_once)
    failed = _fit(image, helper=True)
    monkeypatch.undo()
    helped = _fit(image, helper=True)
    _same(failed, helped)


def test_the_helper_only_where_there_is_a_second_core_and_a_cpu():
    assert window_fit.helper_allowed(2, "cpu")
    assert not window_fit.helper_allowed(1, "cpu")  # OMP_NUM_THREADS=1: one core
    assert not window_fit.helper_allowed(2, "cuda")


def test_a_window_fit_trains_on_one_thread_and_gives_the_threads_back(image, monkeypatch):
    seen = []
    steps = window_fit.window_grads

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return steps(*args, **kwargs)

    monkeypatch.setattr(window_fit, "window_grads", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit_latents(LAYOUT, image, dataclasses.replace(CFG, windows=1, iters=3))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_a_rate_pass_every_fifth_step_forgets_as_fast_per_step():
    """steer_every: the rounded-rate pass every 5th step only; the moving average forgets
    memory ** 5 a call, as much as it would over five steps."""
    from asmr_cli.latent.schedule import Schedule

    sched = Schedule(dataclasses.replace(CFG, steer_memory=0.9), 0.0)
    sched.steer(1, 1000.0, every=5)
    sched.steer(6, 2000.0, every=5)
    assert sched.rate == pytest.approx(0.9**5 * 1000 + (1 - 0.9**5) * 2000)


def test_the_first_estimate_waits_for_the_helper():
    """While the helper starts, this process computes both windows of a pair: the first
    estimate of the encode's time waits until 64 steps after it has started."""
    import time

    from asmr_cli.latent.schedule import Schedule

    sched = Schedule(dataclasses.replace(CFG, iters=1000), time.perf_counter())
    sched.waiting = True
    for step in range(1, 21):
        sched.finished(step)
    assert sched.estimated is None
    sched.repace(20)
    for step in range(21, 85):
        sched.finished(step)
    assert sched.estimated is not None and sched.estimate_at == 84
