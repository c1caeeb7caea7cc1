"""The image encoder's learned start (issue 22, item 3): networks pre-trained on public
photos (tools/pretrain_start.py names the corpus and redoes it), the first state of a
format-3 fit instead of the usual initialisation. The encoder fine-tunes them per image
and the file carries its own networks as before, so the bitstream and the decoder do not
depend on this file (the decoder never imports this module).

How it maps to a layout: one start per network width (WIDTHS; the synthesis's hidden
layer and the context model's are equally wide in every image layout, latent/encoder's
small_width: 16 from 256K pixels, 8 from 32K, 4 from 4K, none below); level l's modulator
is the start's level l (levels past the start's keep the usual initialisation); the
modulators are stored per unit gain, so they apply at any lam; each grid's Laplace centre
and spread stay the image's own.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from .latents import Layout

STARTS = Path(__file__).with_name("starts")
WIDTHS = (4, 8, 16)  # the network widths a start ships for (the synthesis's and the context model's alike)
LEVELS = 7
SHARED = ("b1", "w2", "b2", "head_w", "head_b")


def start_file(width: int) -> Path:
    return STARTS / f"start_h{width}.npz"


@lru_cache(maxsize=len(WIDTHS))
def _arrays(width: int) -> dict[str, np.ndarray] | None:
    path = start_file(width)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as f:
        return {k: np.asarray(f[k], np.float32) for k in f.files}


def start_for(layout: Layout) -> dict[str, np.ndarray] | None:
    """The start's arrays that fit this layout (per-unit-gain modulators `mod{l}` for the
    levels both have, the synthesis's shared layers, the context model's shared layers),
    or None where no start has the layout's widths."""
    if layout.hidden != layout.context_hidden or layout.hidden not in WIDTHS:
        return None
    a = _arrays(layout.hidden)
    if a is None:
        return None
    out = {k: a[k] for k in SHARED}
    for lv in range(min(layout.levels, LEVELS)):
        m = a[f"mod{lv}"]
        if m.shape != (layout.features, len(layout.planes(lv))):
            return None
        out[f"mod{lv}"] = m
    out.update({k: v for k, v in a.items() if k.startswith("c_")})
    return out
