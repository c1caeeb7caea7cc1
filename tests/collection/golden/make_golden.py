"""Writes tests/collection/golden/set_v5.asmr, a collection (format version 5) of three
members of different sizes in two folders, made by the encoder (a few steps), and the
checksums of each member's decoded pixels. Run once, from the repository root:

    python tests/collection/golden/make_golden.py

and commit what it writes. Never rerun it to make a failing golden test pass. Seeds are
tried until no decoded value lies within MARGIN of a rounding boundary, so that float
rounding differences between BLAS builds cannot move a checksum."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from asmr_cli.api import EncodeOptions, decode_member, encode_collection, open_collection  # noqa: E402
from asmr_cli.collection.codec import render_member  # noqa: E402
from asmr_cli.io.media import Raster  # noqa: E402

MARGIN = 0.002
MEMBERS = [("a/one.png", 12, 10), ("a/b/two.png", 8, 16), ("three.png", 9, 9)]


def _smooth(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = [0.5 + 0.3 * np.sin(3 * (y * rng.uniform(0.5, 2) + x * rng.uniform(0.5, 2)) + c) for c in range(3)]
    return np.clip(np.rint(np.stack(out, -1) * 255 + rng.normal(0, 4, (h, w, 3))), 0, 255).astype(np.uint8)


def main() -> None:
    named = [(n, Raster(_smooth(h, w, i), 8)) for i, (n, h, w) in enumerate(MEMBERS)]
    for seed in range(50):
        data = encode_collection(named, EncodeOptions(iters=60, bpp=2.0, seed=seed, preset="fast")).data
        c = open_collection(data)
        clear = True
        for i, m in enumerate(c.members):
            v = render_member(c, i, (m.height, m.width), (0, 0), (m.height, m.width)) * 255.0
            frac = np.abs(v - np.floor(v) - 0.5)
            if np.any((frac < MARGIN) & (v > 0) & (v < 255)):
                clear = False
        if clear:
            break
    (HERE / "set_v5.asmr").write_bytes(data)
    sums = {}
    for n, _, _ in MEMBERS:
        px = decode_member(data, n).pixels
        sums[n] = {"shape": list(px.shape), "dtype": str(px.dtype),
                   "sha256": hashlib.sha256(np.ascontiguousarray(px).tobytes()).hexdigest()}
    (HERE / "checksums.json").write_text(json.dumps({"set_v5.asmr": {"version": 5, "seed": seed, "members": sums}},
                                                    indent=1) + "\n")
    print(f"seed {seed}: {len(data)} bytes")


if __name__ == "__main__":
    main()
