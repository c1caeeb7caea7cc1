"""The opt-in ring ("halo") training term: its target is the ring of pixels around each
finest block, and its predictions are the blocks' continuous extensions that
`resample.point_taps` blends when decoding off the grid."""

import numpy as np
import torch

from asmr_cli.coordinate import resample
from asmr_cli.coordinate.architecture import Architecture
from asmr_cli.coordinate.decomposition import Decomposition
from asmr_cli.coordinate.halo import HaloTarget
from asmr_cli.coordinate.model import ASMR, TORCH
from asmr_cli.coordinate.synthesis import render_blocked


def test_halo_target_is_the_ring_of_pixels_around_each_block():
    dec = Decomposition((7, 13), ((2, 4), (3, 5)))
    arch = Architecture(dec, 8, 2)
    img = np.random.default_rng(1).random((2, 7, 13)).astype(np.float32)
    halo = HaloTarget(arch, img, "cpu")
    assert halo.target.shape == (6, 2, 6 * 7 - 4 * 5)
    ring = [(dy, dx) for dy in range(-1, 5) for dx in range(-1, 6) if not (0 <= dy < 4 and 0 <= dx < 5)]
    for p, (gy, gx) in enumerate([(a, b) for a in range(2) for b in range(3)]):
        for q, (dy, dx) in enumerate(ring):
            y, x = gy * 4 + dy, gx * 5 + dx
            inside = 0 <= y < 7 and 0 <= x < 13
            assert float(halo.weight[p, 0, q]) == float(inside)
            if inside:
                np.testing.assert_array_equal(halo.target[p, :, q].numpy(), img[:, y, x])
    model = ASMR(arch)
    model.zero_grad()
    loss = halo.backward(model, None, 1.0)
    assert float(loss) > 0 and model.params["head_weight"].grad is not None
    with torch.no_grad():
        p_np = {k: v.detach().numpy() for k, v in model.named_tensors().items()}
    # the ring values are the blocks' continuous extensions that point_taps blends
    a = resample.coarse_preactivation(arch, p_np, (0, 0), (2, 3)).reshape(6, -1)
    c = halo.coords.numpy()
    ext = np.sin(a[:, None, :] + arch.w0 * c @ p_np["mod0.weight"].T) @ p_np["head.weight"].T + p_np["head.bias"]
    p_t, coords = model._inputs(None)
    out = render_blocked(TORCH, arch, p_t, coords[:-1] + [halo.coords]).detach().numpy()
    np.testing.assert_allclose(out, np.transpose(ext, (0, 2, 1)), atol=1e-5)
