"""Issue 22, item 3: would a file that refers to the shipped networks (the learned start)
instead of carrying its own pay? One image encoded twice at the same -q (or --bpp): as
shipped (the networks fine-tuned from the learned start and carried in the file), and with
the networks frozen at the start (`net_lr` 0), whose file could then leave them out. For
each: the file's bytes, the networks' bytes in it (synthesis and the context model's shared
layers; the per-grid Laplace rows `c_grid` are the image's own either way), PSNR, and JPEG
and WebP (Pillow) at the rate with and without the networks' bytes.

    python benchmarks/shipped_networks.py samples/kodim23_small.png            # default preset, -q 75
    python benchmarks/shipped_networks.py ../shared/data/kodak/kodim19.png --bpp 0.5 --preset fast

Only images whose widths have a learned start (latent/start.py) mean anything here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import at_bpp, pillow_sweep  # noqa: E402

from asmr_cli.api import EncodeOptions, encode_raster, formats  # noqa: E402
from asmr_cli.container.tensors import pack_tensor  # noqa: E402
from asmr_cli.io.media import read_image  # noqa: E402
from asmr_cli.latent import context_model as cm  # noqa: E402
from asmr_cli.latent import encoder  # noqa: E402

VARIANTS = (("fine-tuned, carried (as shipped)", {}), ("frozen at the start, could be referred to", {"net_lr": 0.0}))


def network_bytes(data: bytes) -> int:
    """The coded bytes of the tensors a shipped network would replace."""
    f = formats.loads(data)
    layout = f.header.layout
    names = [name for name, _ in layout.synthesis_shapes()]
    names += [name for name, _ in cm.parameter_shapes(len(layout.grids()), layout.context_hidden)]
    return sum(len(pack_tensor(t)) for name, t in zip(names, f.tensors) if name != "c_grid")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--bpp", type=float, default=None, help="a byte target instead of the default -q 75")
    args = ap.parse_args()
    img = read_image(args.image)
    n = img.width * img.height
    sweeps = {fmt: pillow_sweep(img.pixels, fmt) for fmt in ("JPEG", "WEBP")}
    print("command: python " + " ".join(sys.argv))
    print("| networks | bytes | of which networks | bpp | bpp without them | PSNR (dB) | JPEG / WebP at bpp | "
          "JPEG / WebP at bpp without them |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name, change in VARIANTS:
        saved = dict(encoder.IMAGE_RECIPE)
        encoder.IMAGE_RECIPE.update(change)
        try:
            res = encode_raster(img, EncodeOptions(preset=args.preset, bpp=args.bpp))
        finally:
            encoder.IMAGE_RECIPE.clear()
            encoder.IMAGE_RECIPE.update(saved)
        net = network_bytes(res.data)
        bpp, bare = len(res.data) * 8 / n, (len(res.data) - net) * 8 / n
        at = [f"{at_bpp(sweeps[f], bpp)[1]:.2f}" for f in sweeps]
        at_bare = [f"{at_bpp(sweeps[f], bare)[1]:.2f}" for f in sweeps]
        print(f"| {name} | {len(res.data):,} | {net:,} | {bpp:.3f} | {bare:.3f} | {res.stats['psnr']:.2f} | "
              f"{' / '.join(at)} | {' / '.join(at_bare)} |", flush=True)
        print(json.dumps({"variant": name, "bytes": len(res.data), "network_bytes": net,
                          "steps": res.stats["iterations"]}), file=sys.stderr)


if __name__ == "__main__":
    main()
