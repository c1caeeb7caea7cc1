"""The quantiser: one-byte step codes and their range, rounding onto the steps (per output
row for weights, per tensor otherwise), and the straight-through gradient of training."""

import numpy as np
import pytest
import torch

from asmr_cli.coordinate.fit import fake_quant
from asmr_cli.core.quantize import (
    STEP_BIAS,
    STEP_RES,
    dequantize,
    quantize,
    sensitivity_steps,
    snap_steps,
    step_codes,
    step_groups,
    step_values,
)


def test_step_codes_cover_one_byte_and_round_trip():
    codes = np.arange(256, dtype=np.uint8)
    values = step_values(codes)
    assert values.dtype == np.float32
    assert values[0] == pytest.approx(2.0 ** (-STEP_BIAS / STEP_RES))  # 2^-22
    assert values[-1] == pytest.approx(2.0 ** ((255 - STEP_BIAS) / STEP_RES))  # 2^9.875
    np.testing.assert_allclose(values[1:] / values[:-1], 2.0 ** (1 / STEP_RES), rtol=1e-6)  # 9% apart
    np.testing.assert_array_equal(step_codes(values), codes)


def test_steps_outside_the_range_clip_to_the_end_codes():
    steps = np.array([0.0, 1e-30, 2.0 ** -30, 2.0 ** 12, 1e30], np.float32)
    np.testing.assert_array_equal(step_codes(steps), [0, 0, 0, 255, 255])


def test_snapping_picks_the_nearest_code_and_is_idempotent():
    steps = np.geomspace(2.0 ** -21, 2.0 ** 9, 1000).astype(np.float32)
    snapped = snap_steps(steps)
    ratio = np.log2(snapped / steps) * STEP_RES  # distance in codes
    assert np.abs(ratio).max() <= 0.5 + 1e-4
    np.testing.assert_array_equal(snap_steps(snapped), snapped)


def test_step_groups_per_output_row_for_weights_only():
    assert step_groups("layer1.weight", (16, 8)) == 16
    assert step_groups("head.weight", (3, 16)) == 3
    assert step_groups("layer1.bias", (16,)) == 1
    assert step_groups("latent0", (4, 5, 2)) == 1


def test_quantize_rounds_each_row_onto_its_own_step():
    values = np.array([[0.24, 0.26, -0.74, 1.0], [0.24, 0.26, -0.74, 1.0]], np.float32)
    steps = np.array([0.5, 0.1], np.float32)
    q = quantize(values, steps)
    assert q.dtype == np.int32
    np.testing.assert_array_equal(q, [[0, 1, -1, 2], [2, 3, -7, 10]])
    back = dequantize(q, steps)
    assert back.dtype == np.float32
    assert (np.abs(back - values) <= steps[:, None] / 2 + 1e-7).all()


def test_quantize_ties_round_to_even_and_one_step_serves_a_whole_tensor():
    steps = np.array([1.0], np.float32)
    np.testing.assert_array_equal(quantize(np.array([0.5, 1.5, 2.5, -0.5, -1.5], np.float32), steps),
                                  [0, 2, 2, 0, -2])
    grid = np.random.default_rng(0).normal(0, 1, (3, 4, 2)).astype(np.float32)
    step = np.array([0.25], np.float32)
    np.testing.assert_array_equal(quantize(grid, step), np.rint(grid / 0.25).astype(np.int32))
    np.testing.assert_array_equal(dequantize(quantize(grid, step), step), np.rint(grid / 0.25) * np.float32(0.25))


def test_fake_quant_forward_is_the_decoders_weights():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.3, (6, 5)).astype(np.float32)
    steps = snap_steps(rng.uniform(0.01, 0.1, 6))
    out = fake_quant(torch.from_numpy(w), steps).numpy()
    np.testing.assert_allclose(out, dequantize(quantize(w, steps), steps), rtol=0, atol=1e-6)


def test_fake_quant_gradient_is_straight_through():
    """Rounding has zero gradient almost everywhere; training passes the gradient through
    as if fake quantisation were the identity."""
    t = torch.tensor([[0.26, -0.74, 1.01], [0.1, 0.2, 0.3]], requires_grad=True)
    upstream = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]])
    (fake_quant(t, np.array([0.5, 0.1], np.float32)) * upstream).sum().backward()
    torch.testing.assert_close(t.grad, upstream, rtol=0, atol=0)


def test_sensitivity_steps_follow_one_over_root_sensitivity():
    params = {"layer0.weight": np.ones((2, 4), np.float32)}
    sens = {"layer0.weight": np.array([1e-2, 1e-4])}
    s = sensitivity_steps(params, sens, lam=1e-3)["layer0.weight"]
    np.testing.assert_array_equal(s, snap_steps(s))  # storable as they are
    assert s[1] / s[0] == pytest.approx(10.0, rel=0.1)  # 100x less sensitive: 10x coarser
