import numpy as np
import pytest
import torch

from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import Decomposition, auto_bases
from asmr_cli.coordinate.model import ASMR, TORCH
from asmr_cli.coordinate.synthesis import NUMPY, render_numpy
from asmr_cli.coordinate.synthesis import block as to_blocked
from asmr_cli.coordinate.synthesis import unblock as to_raster

from ..conftest import per_pixel_reference


def _random_model(sizes, hidden=8, channels=3, k=2, bases=None, seed=0):
    torch.manual_seed(seed)
    dec = Decomposition(sizes, bases) if bases else auto_bases(sizes, levels=4)
    arch = Architecture(dec, hidden, channels, k)
    model = ASMR(arch)
    with torch.no_grad():
        for name, p in model.named_tensors().items():
            if name.startswith("latent"):
                p.normal_(0, 0.5)
    return arch, model


@pytest.mark.parametrize("sizes,k", [((13, 21), 2), ((16, 24), 0), ((1, 5), 1), ((7, 3, 5), 2)])
def test_shared_forward_equals_per_pixel(sizes, k):
    arch, model = _random_model(sizes, k=k)
    params = {n: p.detach().numpy().astype(np.float64) for n, p in model.named_tensors().items()}
    ref = per_pixel_reference(arch, params)
    with torch.no_grad():
        shared = model().numpy()
    np.testing.assert_allclose(shared, ref, atol=2e-4)


def test_paper_config_shared_equals_per_pixel():
    arch, model = _random_model((32, 48), hidden=16, k=0, bases=((2, 2, 8), (2, 3, 8)))
    params = {n: p.detach().numpy().astype(np.float64) for n, p in model.named_tensors().items()}
    with torch.no_grad():
        np.testing.assert_allclose(model().numpy(), per_pixel_reference(arch, params), atol=2e-4)


def test_numpy_decoder_matches_torch():
    arch, model = _random_model((37, 29), hidden=16)
    params = {n: p.detach().numpy() for n, p in model.named_tensors().items()}
    with torch.no_grad():
        t = model().numpy()
    np.testing.assert_allclose(render_numpy(arch, params), t, atol=1e-5)


def test_blocked_layout_round_trips():
    x = np.arange(2 * 12 * 20, dtype=np.float32).reshape(2, 12, 20)
    grid, bases = (3, 5), (4, 4)
    blocked = to_blocked(NUMPY, x, grid, bases)
    assert blocked.shape == (15, 2, 16)
    np.testing.assert_array_equal(to_raster(NUMPY, blocked, grid, bases), x)
    tb = to_blocked(TORCH, torch.from_numpy(x), grid, bases)
    np.testing.assert_array_equal(tb.numpy(), blocked)
