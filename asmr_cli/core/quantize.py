"""Weight quantisation: uniform steps per output row (weights) or per tensor (biases,
latent grids), chosen for rate and distortion, the integers the bitstream stores, (the straight-through fake
quantisation that lets training adapt to them is coordinate/fit.py's)."""

from __future__ import annotations

import numpy as np


def step_groups(name: str, shape: tuple[int, ...]) -> int:
    """How many step sizes a tensor has: one per output row for weight matrices."""
    return shape[0] if name.endswith(".weight") else 1


# Step sizes are stored as one byte each: step = 2^((code - STEP_BIAS) / STEP_RES).
STEP_RES, STEP_BIAS = 8, 176  # 2^-22 .. 2^9.9, 9% apart


def step_codes(steps: np.ndarray) -> np.ndarray:
    codes = np.rint(np.log2(np.maximum(steps.astype(np.float64), 1e-30)) * STEP_RES) + STEP_BIAS
    return np.clip(codes, 0, 255).astype(np.uint8)


def step_values(codes: np.ndarray) -> np.ndarray:
    return np.exp2((codes.astype(np.float64) - STEP_BIAS) / STEP_RES).astype(np.float32)


def snap_steps(steps: np.ndarray) -> np.ndarray:
    """The nearest storable steps: what the decoder will use, so the encoder uses it too."""
    return step_values(step_codes(steps))


def expand_steps(steps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return steps.reshape(len(steps), *([1] * (len(shape) - 1))) if len(steps) > 1 else steps[:1]


def quantize(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    return np.rint(values / expand_steps(steps, values.shape)).astype(np.int32)


def dequantize(q: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The decoder's float32 weights; the encoder measures quality with these too."""
    return (q.astype(np.float32) * expand_steps(steps.astype(np.float32), q.shape)).astype(np.float32)


# -- rate allocation ---------------------------------------------------------------------
# Quantising a group of weights with step s adds noise of variance s^2/12; its effect on
# the loss is about sens * s^2/12, where sens is the mean squared gradient of the loss
# with respect to those weights (Adam's second moment: a diagonal Fisher estimate). Its
# rate falls by one bit per element each time s doubles. Equal distortion-rate slopes
# across groups then mean sens * s^2 is the same everywhere: s = lam / sqrt(sens), one
# global lam setting the rate.

MIN_STEP_RATIO = 2.0 ** -14  # never finer than peak * 2^-14: keeps symbol ranges small
SENS_FLOOR = 1e-20


def sensitivity_steps(params: dict[str, np.ndarray], sens: dict[str, np.ndarray], lam: float) -> dict[str, np.ndarray]:
    steps = {}
    for name, values in params.items():
        groups = step_groups(name, values.shape)
        peak = np.abs(values.reshape(groups, -1)).max(axis=1)
        s = lam / np.sqrt(np.maximum(sens[name], SENS_FLOOR))
        s = np.maximum(s, np.maximum(peak, 1e-12) * MIN_STEP_RATIO)
        steps[name] = snap_steps(s)
    return steps
