"""The learned starts (latent/start.py): which layouts they fit, and that a fit begins from one."""

import numpy as np
import pytest
import torch

from asmr_cli.latent import start
from asmr_cli.latent.encoder import layout_for
from asmr_cli.latent.fit import LatentModel


@pytest.mark.parametrize("size", [(512, 768), (256, 384), (128, 192)])  # widths 16, 8 and 4
def test_a_start_ships_for_every_image_width(size):
    lay = layout_for(*size, 3, "default", None, None)
    assert lay.hidden in start.WIDTHS
    arrays = start.start_for(lay)
    assert arrays is not None, f"asmr_cli/latent/starts/start_h{lay.hidden}.npz is missing from the package"
    for lv in range(min(lay.levels, start.LEVELS)):
        assert arrays[f"mod{lv}"].shape == (lay.features, len(lay.planes(lv)))
    assert "c_grid" not in arrays  # each image's own grid centres and spreads
    assert all(np.all(np.isfinite(v)) for v in arrays.values())


def test_other_widths_train_from_the_usual_start():
    assert start.start_for(layout_for(512, 768, 3, "default", 12, None)) is None  # --hidden 12: no such start
    assert start.start_for(layout_for(40, 60, 3, "default", None, None)) is None  # no networks at all


def test_a_fit_begins_from_the_start_and_keeps_its_own_grid_laplaces():
    lay = layout_for(512, 512, 3, "default", None, None)
    arrays = start.start_for(lay)
    image = torch.rand(3, 512, 512)
    plain = LatentModel(lay, image, 1e-3)
    model = LatentModel(lay, image, 1e-3, arrays)
    for lv in range(lay.levels):
        np.testing.assert_array_equal(model.mods[lv].detach().numpy(), arrays[f"mod{lv}"])
    np.testing.assert_array_equal(model.w2.detach().numpy(), arrays["w2"])
    np.testing.assert_array_equal(model.ctx["c_w1"].detach().numpy(), arrays["c_w1"])
    np.testing.assert_array_equal(model.ctx["c_grid"].detach().numpy(), plain.ctx["c_grid"].detach().numpy())
