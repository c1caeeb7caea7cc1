"""The image fit's recipe (issue 22): soft rounding, and window steps whose cost does not
grow with the photo (a window's synthesis and rate equal the whole image's on it)."""

import dataclasses

import numpy as np
import pytest
import torch

from asmr_cli.latent.fit import LatentFitConfig, LatentModel, fit_latents, grid_bits
from asmr_cli.latent.latents import Layout
from asmr_cli.latent.windows import draw_window, soft_round, window_cells


def _model(h=45, w=70, levels=4, seed=0, refine=0):
    torch.manual_seed(seed)
    layout = Layout(h, w, 3, levels, 8, 8, refine)
    image = torch.rand(3, h, w)
    model = LatentModel(layout, image, 1e-3)
    with torch.no_grad():  # networks away from their start, so every path carries weight
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return layout, model


def test_soft_round_goes_from_identity_to_rounding():
    x = torch.linspace(-2.45, 2.45, 50)  # no half-integers (where rounding is a step)
    assert torch.allclose(soft_round(x, 50.0), x, atol=1e-3)
    assert torch.allclose(soft_round(x, 0.01), torch.round(x), atol=1e-3)
    # continuous where floor jumps (the integers), and odd
    edge = torch.tensor([1 - 1e-4, 1 + 1e-4])
    assert float((soft_round(edge, 0.2)[1] - soft_round(edge, 0.2)[0]).abs()) < 1e-2
    assert torch.allclose(soft_round(-x, 0.2), -soft_round(x, 0.2), atol=1e-5)


@pytest.mark.parametrize("rows,cols", [((0, 45), (0, 70)), ((8, 24), (16, 48)), ((0, 8), (56, 70)), ((40, 45), (0, 9))])
def test_a_window_renders_and_costs_what_the_whole_image_does_there(rows, cols):
    layout, model = _model()
    lat, windows, cells, part, full = window_and_whole(layout, model, rows, cols)
    with torch.no_grad():
        torch.testing.assert_close(part, full[:, rows[0]:rows[1], cols[0]:cols[1]].reshape(3, -1),
                                   rtol=1e-5, atol=1e-5)
        # the whole image's bits, per cell, summed over the cells the window's pixels fall in
        expect = torch.zeros(())
        for k, (lv, plane, (h, w)) in enumerate(layout.grids()):
            z = lat[lv][layout.planes(lv).index(plane)][None]
            parent = lat[lv + 1][layout.planes(lv + 1).index(plane)][None] if lv + 1 < layout.levels else None
            per_cell = grid_bits(model.ctx, k, z, parent, 1.0, None)  # per frame: (1,)
            assert per_cell.shape == (1,)
            r0, r1 = rows[0] >> lv, -(-rows[1] // (1 << lv))
            c0, c1 = cols[0] >> lv, -(-cols[1] // (1 << lv))
            sub = torch.zeros(1, h, w, dtype=torch.bool)
            sub[:, r0:r1, c0:c1] = True
            expect = expect + _bits_where(model, k, z, parent, sub)
        torch.testing.assert_close(model.window_rate(windows, cells, rows, cols), expect, rtol=1e-4, atol=1e-3)


def window_and_whole(layout, model, rows, cols):
    """A window's render and the whole image's, from the model's latents: (latents, their
    windows, the cells, the window's (C, n) output, the whole (C, H, W) output)."""
    lat = [z.detach() for z in model.latents]
    cells = window_cells(layout, rows, cols)
    windows = [z[:, r0:r1, c0:c1] for z, (r0, r1, c0, c1) in zip(lat, cells)]
    with torch.no_grad():
        full = model.render(lat).reshape(layout.channels, layout.height, layout.width)
        part = model.render_window(windows, cells, rows, cols)
    return lat, windows, cells, part, full


def _bits_where(model, k, z, parent, mask):
    """grid_bits restricted to the cells in mask: the whole grid's bits less those of a grid
    whose outside cells' own terms are dropped (through a per-cell evaluation)."""
    from asmr_cli.latent import fit

    captured = {}
    original = fit.laplace_bits

    def keep(x, mean, log_scale):
        captured["bits"] = original(x, mean, log_scale)
        return captured["bits"]

    fit.laplace_bits = keep
    try:
        grid_bits(model.ctx, k, z, parent, 1.0, None)
    finally:
        fit.laplace_bits = original
    return captured["bits"][mask.reshape(-1)].sum()


def test_windows_cover_every_block_and_stay_in_the_image():
    layout = Layout(300, 500, 3, 5, 8, 8)
    gen = torch.Generator().manual_seed(1)
    hits = np.zeros((300, 500))
    for _ in range(400):
        (r0, r1), (c0, c1), factor = draw_window(layout, 96 * 96, gen)
        assert factor == (19 + 6 - 1) / 6 * (32 + 6 - 1) / 6  # blocks of 16: 19 x 32, windows of 6 x 6
        assert 0 <= r0 < r1 <= 300 and 0 <= c0 < c1 <= 500
        assert r0 % 16 == 0 and c0 % 16 == 0
        hits[r0:r1, c0:c1] += 1
    assert hits.min() > 0
    small = Layout(40, 60, 3, 3, 8, 8)
    assert draw_window(small, 1 << 16, gen) == ((0, 40), (0, 60), 1.0)


def test_window_steps_train_and_are_deterministic():
    layout = Layout(64, 96, 3, 4, 8, 8)
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(0.5, 0.1, (3, 64, 96)), 0, 1).astype(np.float32)
    cfg = LatentFitConfig(iters=12, lam=1e-3, window_pixels=32 * 32, soft_rounding=True, ste_fraction=0.25,
                          steer_memory=0.95, target_bits=2000.0)
    a = fit_latents(layout, image, cfg)
    b = fit_latents(layout, image, cfg)
    for x, y in zip(a.latents, b.latents):
        np.testing.assert_array_equal(x, y)
    plain = fit_latents(layout, image, dataclasses.replace(cfg, window_pixels=0))
    assert a.iterations == plain.iterations == 12
    moved = [np.abs(x - y).max() for x, y in zip(a.latents, plain.latents)]
    assert max(moved) > 0  # a different recipe, not the plain one under another name


def test_visit_cap_stops_small_images_only():
    """A preset's steps stop at MAX_VISITS per pixel: the README sample (192x128) gets 3,000,
    a Kodak image more than the default preset's 150 s give it."""
    from asmr_cli.core.presets import LATENT_PRESETS
    from asmr_cli.latent.encoder import MAX_VISITS, visit_cap

    assert visit_cap(192 * 128) == MAX_VISITS * 192 * 128 // (1 << 14)
    assert visit_cap(768 * 512) >= 10 * 4000  # ~4,000-5,500 steps fit in 150 s
    assert visit_cap(64 * 64) == MAX_VISITS  # a window bigger than the image covers it all
    assert visit_cap(4000 * 3000) > LATENT_PRESETS["default"].iters


def test_the_latents_learning_rate_follows_the_photo_size():
    from asmr_cli.latent import encoder

    small = encoder.recipe_for(encoder.REFINE_FROM - 1)
    kodak = encoder.recipe_for(768 * 512)
    large = encoder.recipe_for(encoder.LARGE_FROM)
    assert small["latent_lr"] == encoder.SMALL_RECIPE["latent_lr"]
    assert kodak["latent_lr"] == encoder.IMAGE_RECIPE["latent_lr"]
    assert large["latent_lr"] == encoder.LARGE_RECIPE["latent_lr"]
    assert small["latent_lr"] < kodak["latent_lr"] < large["latent_lr"]
    # the rest of the recipe is the image recipe's, with the window the size gives
    assert {k: v for k, v in large.items() if k != "latent_lr"} == dict(
        {k: v for k, v in encoder.IMAGE_RECIPE.items() if k != "latent_lr"},
        window_pixels=encoder.window_pixels(encoder.LARGE_FROM))
    # every key is a field of the fit's configuration
    names = {f.name for f in dataclasses.fields(LatentFitConfig)}
    assert set(small) | set(large) <= names
