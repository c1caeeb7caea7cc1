"""Window steps (issue 22): a step of an image's fit trains a random window of the image and
only the latents under it, so that a step's cost does not grow with the photo. Which cells a
window reads at each level, the context model's inputs for them, how windows are drawn (every
block equally often, with the factor that makes a window's bits an unbiased estimate of the
image's), and the Adam that moves only the window's latents. docs/rate-distortion.md has the
measurements."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .latents import REFINE_MARGIN, ArrayOps, Layout, up2

TORCH = ArrayOps(cat=lambda xs, axis: torch.cat(xs, dim=axis), stack=lambda xs, axis: torch.stack(xs, dim=axis),
                 relu=torch.relu)


def window_cells(layout: Layout, rows: tuple[int, int], cols: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Per level, the cells (r0, r1, c0, c1) a window of level-0 pixels rows x cols reads:
    the window and a cell around it at level 0 (the context model's neighbours), and at each
    coarser level the cells under the finer level's with one more around them (up2 reads a
    neighbour), clipped to the grids. Values computed on these cells equal the whole
    image's on the window (up2 and the context model only read neighbours). With the refine
    stage (format 8) the window's output is needed REFINE_MARGIN pixels further out."""
    out = []
    m = 1 + (REFINE_MARGIN if layout.refine else 0)
    r0, r1, c0, c1 = rows[0] - m, rows[1] + m, cols[0] - m, cols[1] + m
    for lv, (h, w) in enumerate(layout.shapes):
        if lv:
            r0, r1, c0, c1 = r0 // 2 - 1, -(-r1 // 2) + 1, c0 // 2 - 1, -(-c1 // 2) + 1
        r0, r1, c0, c1 = max(0, r0), min(h, r1), max(0, c0), min(w, c1)
        out.append((r0, r1, c0, c1))
    return out


def window_inputs(z: torch.Tensor, at: tuple[int, int], core: tuple[int, int, int, int],
                  parent: torch.Tensor | None, parent_at: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The values of the cells `core` (r0, r1, c0, c1, grid coordinates) of P grids of one
    level and the context model's inputs for them, (P, n) and (P, n, inputs), as grid_bits
    reads them on the whole grids: z (P, h, w) windows of the grids whose first cell is `at`
    and that hold the core and a cell around it (or the grid's edge); parent (P, h', w')
    windows of their coarser grids starting at parent_at that cover z's cells upsampled."""
    planes, h, w = z.shape
    dev = z.device
    rows = torch.arange(core[0] - at[0], core[1] - at[0], device=dev)
    cols = torch.arange(core[2] - at[1], core[3] - at[1], device=dev)
    rows, cols = [g.reshape(-1) for g in torch.meshgrid(rows, cols, indexing="ij")]
    anchor = ((rows + cols + at[0] + at[1]) % 2 == 0).float()
    centre = (rows + 1) * (w + 2) + cols + 1
    around = centre[:, None] + torch.tensor([0, -(w + 2), w + 2, -1, 1], device=dev)  # (n, 5): the cell, its 4
    pz = F.pad(z, (1, 1, 1, 1)).reshape(planes, -1)
    near = pz[:, around]  # (P, n, 5)
    x = near[..., 0]
    feats = [near[..., 1:] * (1 - anchor)[None, :, None]]
    if parent is None:
        feats.append(torch.zeros(planes, rows.shape[0], 5, device=dev))
    else:
        ph, pw = parent.shape[-2:]
        dr, dc = at[0] - 2 * parent_at[0], at[1] - 2 * parent_at[1]
        up = up2(TORCH, parent, (2 * ph, 2 * pw))[:, dr:dr + h, dc:dc + w]
        feats.append(F.pad(up, (1, 1, 1, 1)).reshape(planes, -1)[:, around])
    feats.append(anchor[None, :, None].expand(planes, -1, 1))
    return x, torch.cat(feats, -1)


def soft_round(x: torch.Tensor, temperature: float) -> torch.Tensor:
    """A differentiable rounding (Agustsson and Theis): the identity as temperature grows,
    rounding as it falls to 0, continuous at the bin edges."""
    floor = torch.floor(x).detach()
    r = x - floor - 0.5
    return floor + 0.5 + 0.5 * torch.tanh(r / temperature) / math.tanh(0.5 / temperature)


def draw_window(layout: Layout, pixels: int,
                gen: torch.Generator) -> tuple[tuple[int, int], tuple[int, int], float]:
    """A step's window, (rows, cols) of level-0 pixels: about `pixels` pixels in blocks of
    the coarsest level's cell, its start drawn so that every block is covered equally often
    (windows at the edges are clipped); and the factor from the window's bits to an
    unbiased estimate of the image's (1 / the chance that a block is in the window)."""
    block = 1 << (layout.levels - 1)
    side = max(block, -(-int(math.sqrt(pixels)) // block) * block)
    out, factor = [], 1.0
    for size, span in ((layout.height, side), (layout.width, max(block, pixels // side // block * block))):
        if span >= size:
            out.append((0, size))
            continue
        blocks, cover = -(-size // block), span // block
        first = int(torch.randint(-(cover - 1), blocks, (1,), generator=gen))
        out.append((max(0, first * block), min(size, (first + cover) * block)))
        factor *= (blocks + cover - 1) / cover
    return out[0], out[1], factor


class WindowAdam:
    """Adam for the latents of window steps: only the window's cells move (their moments
    and step counts are their own; cells outside the window keep still, where torch's Adam
    would move them by their momentum on a zero gradient)."""

    def __init__(self, params: list[torch.Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.betas, self.eps = params, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor | None], cells: list[tuple[int, int, int, int]], lr: float) -> None:
        """grads: per level, the gradient of the window's latents on `cells` (None: none)."""
        b1, b2 = self.betas
        for p, m, v, t, g, (r0, r1, c0, c1) in zip(self.params, self.m, self.v, self.t, grads, cells):
            if g is None:
                continue
            at = (slice(None), slice(r0, r1), slice(c0, c1))
            mw, vw, tw = m[at], v[at], t[at]
            mw.mul_(b1).add_(g, alpha=1 - b1)
            vw.mul_(b2).addcmul_(g, g, value=1 - b2)
            tw.add_(1)
            update = (mw / (1 - b1**tw)) / ((vw / (1 - b2**tw)).sqrt() + self.eps)
            p[at] -= lr * update
