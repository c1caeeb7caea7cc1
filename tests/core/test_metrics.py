import numpy as np
import pytest
from PIL import Image

from asmr_cli.coordinate.architecture import Architecture, macs_per_pixel, siren_macs_per_pixel
from asmr_cli.coordinate.decomposition import Decomposition
from asmr_cli.core.metrics import psnr, ssim

from ..conftest import SAMPLES


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


def _ssim_by_windows(a: np.ndarray, b: np.ndarray, peak: float, r: int) -> float:
    """SSIM as Wang et al. define it (eq. 13, C1 = (0.01 L)^2, C2 = (0.03 L)^2), window by
    window: a (2r+1)^2 uniform window at every position where it fits, sample (n - 1)
    variances as scikit-image's default; mean over windows, then over channels."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    k = 2 * r + 1
    n = k * k
    per_channel = []
    for c in range(a.shape[2]):
        values = []
        for y in range(a.shape[0] - k + 1):
            for x in range(a.shape[1] - k + 1):
                u, v = a[y:y + k, x:x + k, c].ravel(), b[y:y + k, x:x + k, c].ravel()
                mu, mv = u.sum() / n, v.sum() / n
                var_u, var_v = ((u - mu) ** 2).sum() / (n - 1), ((v - mv) ** 2).sum() / (n - 1)
                cov = ((u - mu) * (v - mv)).sum() / (n - 1)
                values.append((2 * mu * mv + c1) * (2 * cov + c2) / ((mu * mu + mv * mv + c1) * (var_u + var_v + c2)))
        per_channel.append(sum(values) / len(values))
    return sum(per_channel) / len(per_channel)


@pytest.fixture(scope="module")
def fixed_pair():
    """A crop of a sample image and a fixed distortion of it: a 3x3 box blur plus noise
    from a seeded generator (no codec whose output could change between library versions)."""
    with Image.open(SAMPLES / "kodim08_small.png") as im:
        a = np.asarray(im.convert("RGB"))[8:40, 20:60].copy()
    pad = np.pad(a.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(pad[dy:dy + a.shape[0], dx:dx + a.shape[1]] for dy in range(3) for dx in range(3)) / 9
    noise = np.random.default_rng(7).normal(0, 6, a.shape)
    return a, np.clip(np.rint(blur + noise), 0, 255).astype(np.uint8)


def test_ssim_matches_a_window_by_window_reference(fixed_pair):
    a, b = fixed_pair
    want = _ssim_by_windows(a, b, 255.0, 3)
    assert 0.3 < want < 0.95  # a real distortion, far from both ends
    assert ssim(a, b) == pytest.approx(want, abs=1e-9)
    assert ssim(b, a) == pytest.approx(want, abs=1e-9)  # symmetric


def test_ssim_on_small_images_and_16_bit(fixed_pair):
    a, b = fixed_pair
    assert ssim(a[:5, :9], b[:5, :9]) == pytest.approx(_ssim_by_windows(a[:5, :9], b[:5, :9], 255.0, 2), abs=1e-9)
    wide_a, wide_b = a.astype(np.uint16) * 257, b.astype(np.uint16) * 257
    assert ssim(wide_a, wide_b, 65535.0) == pytest.approx(ssim(a, b), abs=1e-9)  # scale-free with L


def test_ssim_of_two_flat_images_is_the_luminance_term():
    """No structure, no contrast: SSIM = (2 x y + C1) / (x^2 + y^2 + C1), by hand."""
    a, b = np.full((9, 9, 1), 100, np.uint8), np.full((9, 9, 1), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
