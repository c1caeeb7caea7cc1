"""The torch model's initialisation: the last level starts as a DCT-like basis."""

import numpy as np

from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import Decomposition
from asmr_cli.coordinate.model import ASMR, last_level_frequencies


def test_last_level_starts_as_paired_frequencies_up_to_nyquist():
    steps = last_level_frequencies((8, 6), 60)
    assert steps.shape == (60, 2)
    np.testing.assert_array_equal(steps[0::2], steps[1::2])  # each frequency held by two units
    assert (steps >= 0).all() and (steps[:, 0] <= 7 * np.pi / 8).all() and (steps[:, 1] <= 5 * np.pi / 6).all()
    assert (np.diff(((steps[0::2] / np.pi) ** 2).sum(axis=1)) >= -1e-12).all()  # lowest first
    assert len({tuple(r) for r in steps[0::2]}) == 30  # 30 distinct frequencies for 60 units
    assert tuple(steps[0]) == (0.0, 0.0)
    # an axis with base 1 (a video's time axis at the last level) has no frequency
    assert (last_level_frequencies((1, 8, 8), 16)[:, 0] == 0).all()


def test_model_uses_them_for_the_last_modulator():
    arch = Architecture(Decomposition((16, 12), ((2, 8), (2, 6))), 10, 3)
    model = ASMR(arch)
    w = model.named_tensors()["mod0.weight"].detach().numpy()
    steps = arch.w0 * w * 2 / np.array([7, 5])  # phase step per pixel
    np.testing.assert_allclose(steps, last_level_frequencies((8, 6), 10), atol=1e-5)
