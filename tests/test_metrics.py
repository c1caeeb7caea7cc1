import numpy as np
import pytest

from asmr_cli.architecture import Architecture
from asmr_cli.decomposition import Decomposition
from asmr_cli.metrics import macs_per_pixel, psnr, siren_macs_per_pixel, ssim


def test_paper_kodak_macs_by_hand():
    arch = Architecture(Decomposition((512, 768), ((4, 4, 4, 8), (4, 4, 6, 8))), 256, 3)
    n = 512 * 768
    cells = [16, 256, 64 * 96]
    by_hand = ((2 * 256 + 256) * cells[0] + (256 * 256 + 256) * (cells[1] + cells[2])
               + 2 * 256 * (16 + 24 + 64) + 256 * sum(cells)) / n + (256 * 3 + 3)
    assert macs_per_pixel(arch) == pytest.approx(by_hand)
    assert 1700 < macs_per_pixel(arch) < 1900  # the paper's ~1.8K
    assert siren_macs_per_pixel(arch) == 2 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 3 + 3  # ~133K


def test_psnr_ssim_identity_and_noise():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 48, 3)).astype(np.uint8)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0)
    b = np.clip(a.astype(int) + rng.integers(-5, 6, a.shape), 0, 255)
    assert 30 < psnr(a, b) < 40
    assert 0.5 < ssim(a, b) < 1.0
