"""The rate fit on a model of a coder: a file whose size grows with the latents' scale and
shrinks with each latent pruned, and a record of every setting the fit asked for."""

from __future__ import annotations

import math

import pytest

from asmr_cli.core.errors import AsmrError
from asmr_cli.core.rates import Target
from asmr_cli.latent.ratefit import RATE_TOLERANCE, SCALE_RESOLUTION, fit_rate


def coder(trained: int, per_log_scale: float = 30000.0, per_prune: int = 3, floor: int = 500):
    asked = []

    def file_at(scale: float = 1.0, prune: int = 0) -> bytes:
        asked.append((scale, prune))
        size = trained + per_log_scale * math.log(scale) - per_prune * prune
        return bytes(max(floor, int(size)))

    return file_at, asked


def test_as_trained_when_within_the_tolerance():
    file_at, asked = coder(9800)
    data, scale = fit_rate(file_at, Target(10000, bpp=1.0), prunable=100)
    assert (len(data), scale) == (9800, 1.0) and asked == [(1.0, 0)]


def test_under_an_explicit_rate_the_least_scale_that_meets_it():
    file_at, asked = coder(9000, per_log_scale=10000.0)  # 10% under: rescaled up
    data, scale = fit_rate(file_at, Target(10000, bpp=1.0), prunable=100)
    assert (1 - RATE_TOLERANCE) * 10000 <= len(data) <= 10000
    least = math.exp(((1 - RATE_TOLERANCE) * 10000 - 9000) / 10000)  # the scale where the window starts
    assert least <= scale <= least * math.exp(SCALE_RESOLUTION)
    assert len(asked) <= 15


def test_under_a_size_cap_the_file_as_trained():
    file_at, _ = coder(6000)
    data, scale = fit_rate(file_at, Target(10000, cap=True), prunable=100)
    assert (len(data), scale) == (6000, 1.0)


def test_over_the_budget_pruned_not_rescaled():
    file_at, asked = coder(10300)
    data, scale = fit_rate(file_at, Target(10000, bpp=1.0), prunable=1000)
    assert scale == 1.0 and 10000 * (1 - RATE_TOLERANCE) <= len(data) <= 10000
    assert all(s == 1.0 for s, _ in asked)


def test_over_the_budget_beyond_pruning_rescaled_down():
    file_at, _ = coder(14000)
    data, scale = fit_rate(file_at, Target(10000, bpp=1.0), prunable=10)
    assert scale < 1.0 and len(data) <= 10000


def test_a_cap_below_the_smallest_file_is_an_error():
    file_at, _ = coder(14000, floor=2000)
    with pytest.raises(AsmrError, match="too small"):
        fit_rate(file_at, Target(1000, cap=True), prunable=0)
