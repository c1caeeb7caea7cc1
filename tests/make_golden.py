"""Writes the golden .asmr files of tests/api/test_golden.py and the checksums of their
decoded pixels, each into its family's folder (tests/coordinate/golden/, tests/latent/golden/,
tests/clip/golden/). Run once per format version, from the repository root:

    python tests/make_golden.py v1v2   (or v3, v4, v7, v8, v9)

and commit what it writes. Never rerun it to make a failing golden test pass: the files
stand for what earlier builds wrote, and the checksums for what they decoded to.

- image_v2.asmr, video_v2.asmr: what the encoder writes (format version 2). The clip's
  finest latent grid is coded as residuals along time (the version-2 feature); the
  image is too small for prediction to pay.
- image_v3.asmr: a 12 x 10 image as format version 3 (the latent pyramid with a 4-wide
  synthesis MLP; an image this small gets the static per-grid Laplace, context width
  0); written by `python tests/make_golden.py v3`, which leaves the older files
  alone.
- image_v8.asmr: a 12 x 10 image as format version 8 (version 3 with the synthesis's
  refine stage, width 3, which the encoder gives only images of 2^18 pixels and more:
  the generator lowers that threshold); written by `python tests/make_golden.py v8`.
- video_v4.asmr: a clip of 5 frames of 10 x 12 in two groups (3 + 2 frames) as format
  version 4 (a latent pyramid per frame, each group's latents in one stream under the
  temporal context model); written by `python tests/make_golden.py v4`.
- video_v7.asmr: a clip of 4 frames of 8 x 10, a pan, as format version 7 (an intra
  period of 2: two segments of an intra frame and a motion-compensated P frame; each
  segment's latents in one stream); written by `python tests/make_golden.py v7`.
- video_v9.asmr: a clip of 5 frames of 8 x 10, a pan, as format version 9 (an intra
  period of 4: intra frames 0 and 4, B frames 2, 1, 3 in coding order between them, each
  with two motion slots); written by `python tests/make_golden.py v9`.
- image_v1.asmr: the same network as image_v2.asmr as version 1 stored it: every tensor
  coded without prediction, version byte 1 (version 1 is version 2 without prediction;
  the version byte lies outside both checksums).

Seeds are tried until no decoded value lies within MARGIN of a rounding boundary, so that
float rounding differences between BLAS builds cannot move a checksum.
"""

from __future__ import annotations

import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
FAMILY_OF_VERSION = {1: "coordinate", 2: "coordinate", 3: "latent", 4: "clip", 7: "clip", 8: "latent", 9: "clip"}

from asmr_cli.api import EncodeOptions, decode_bytes, decode_video, encode_clip, encode_raster, formats  # noqa: E402
from asmr_cli.clip import format as fmt4  # noqa: E402
from asmr_cli.container import entropy  # noqa: E402
from asmr_cli.container import file as cfile  # noqa: E402
from asmr_cli.container import tensors as ctensors  # noqa: E402
from asmr_cli.coordinate import format as fmt2  # noqa: E402
from asmr_cli.coordinate.codec import unpack  # noqa: E402
from asmr_cli.coordinate.resample import render  # noqa: E402
from asmr_cli.io.media import Raster  # noqa: E402
from asmr_cli.io.video import Clip  # noqa: E402
from asmr_cli.latent import format as fmt3  # noqa: E402

MARGIN = 0.002  # 8-bit levels (float32 sums of this size differ by about 1e-4 level between builds)


def pixels_sha256(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def _smooth(shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in shape[:-1]], indexing="ij")
    out = [0.5 + 0.3 * np.sin(3 * sum(g * rng.uniform(0.5, 2) for g in grids) + c) for c in range(shape[-1])]
    return np.clip(np.rint(np.stack(out, -1) * 255 + rng.normal(0, 4, shape)), 0, 255).astype(np.uint8)


def _clear_of_boundaries(data: bytes) -> bool:
    f = formats.loads(data)
    if f.version in fmt3.VERSIONS:
        from asmr_cli.latent.codec import render_native
        from asmr_cli.latent.codec import unpack as unpack_latent

        out = render_native(unpack_latent(f)) * 255.0
    elif f.version == fmt4.VERSION:
        from asmr_cli.clip.codec import unpack_clip
        from asmr_cli.latent.codec import render_native

        clip = unpack_clip(f)
        out = np.stack([render_native(img) for img in clip.frames(0, f.header.frames)]) * 255.0
    elif f.version in (7, 9):
        from asmr_cli.clip import codec7

        values = []
        compose = codec7.compose

        def recording(synth, pred):  # the float values each frame rounds
            out = np.moveaxis(synth, 0, -1) * np.float32(255.0)
            values.append(out if pred is None else out + pred.astype(np.float32))
            return compose(synth, pred)

        codec7.compose = recording
        try:
            codec7.frames_uint8(codec7.unpack(f), 0, f.header.frames)
        finally:
            codec7.compose = compose
        out = np.stack(values)
    else:
        arch, params = unpack(f)
        out = render(arch, params, arch.decomposition.sizes) * 255.0
    frac = np.abs(out - np.floor(out) - 0.5)
    inside = (out > 0.5 + MARGIN) & (out < 254.5 - MARGIN)  # clipped values cannot move
    return bool((frac[inside] > MARGIN).all())


def _predicted(data: bytes) -> list[str]:
    """The tensors coded as residuals along an axis (format version 2 only)."""
    f = formats.loads(data)
    if f.version in (*fmt3.VERSIONS, fmt4.VERSION, 7, 9):
        return []
    return [n for (n, _), t in zip(f.header.architecture.param_shapes(), f.tensors) if t.coded.predict]


def without_prediction(data: bytes) -> bytes:
    """The same file as format version 1 wrote it."""
    f = formats.loads(data)
    tensors = []
    for (_name, shape), t in zip(f.header.architecture.param_shapes(), f.tensors):
        tensors.append(ctensors.Tensor(t.steps, entropy.encode(entropy.decode(t.coded, shape))))
    out = bytearray(fmt2.dumps(f.header, tensors))
    out[4] = 1
    return bytes(out)


def _record(files: dict[str, bytes]) -> None:
    """Write each file into its family's golden folder and add its checksum there."""
    for name, data in files.items():
        f = formats.loads(data)
        folder = HERE / FAMILY_OF_VERSION[f.version] / "golden"
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
        px = decode_video(data).frames if f.header.kind == cfile.KIND_VIDEO else decode_bytes(data).pixels
        sums_path = folder / "checksums.json"
        sums = json.loads(sums_path.read_text()) if sums_path.exists() else {}
        sums[name] = {"version": f.version, "shape": list(px.shape), "dtype": str(px.dtype),
                      "sha256": pixels_sha256(px), "predicted": _predicted(data)}
        sums_path.write_text(json.dumps(sums, indent=2) + "\n")
        print(name, json.dumps(sums[name]))


def main_v3() -> None:
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=40, hidden=4, seed=seed, device="cpu", bpp=8.0)
        image = encode_raster(Raster(_smooth((12, 10, 3), seed), 8), opts).data
        if _clear_of_boundaries(image):
            break
    else:
        raise SystemExit("no seed kept the image clear of rounding boundaries")
    _record({"image_v3.asmr": image})


def main_v8() -> None:
    from asmr_cli.latent import encoder

    encoder.REFINE_FROM = 0
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=40, hidden=4, seed=seed, device="cpu", bpp=8.0)
        image = encode_raster(Raster(_smooth((12, 10, 3), seed), 8), opts).data
        if formats.loads(image).version == fmt3.VERSION_REFINE and _clear_of_boundaries(image):
            break
    else:
        raise SystemExit("no seed kept the image clear of rounding boundaries")
    _record({"image_v8.asmr": image})


def main_v4() -> None:
    from asmr_cli.clip import encoder as clip_encoder

    clip_encoder.GROUP_FRAMES = 3
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=30, hidden=4, seed=seed, device="cpu", bpp=6.0)
        video = encode_clip(Clip(_smooth((5, 10, 12, 3), seed), Fraction(25)), opts).data
        if _clear_of_boundaries(video):
            break
    else:
        raise SystemExit("no seed kept the clip clear of rounding boundaries")
    _record({"video_v4.asmr": video})


def main_v7(version: int = 7, frames: int = 4, period: int = 2) -> None:
    from asmr_cli.clip import encoder7, family

    family.WRITE_MOTION, family.MOTION_VERSION = True, version
    encoder7.INTRA_PERIOD = period
    rng = np.random.default_rng(version)
    big = _smooth((1, 16, 20, 3), version)[0]
    pan = np.stack([big[i:i + 8, 2 * i:2 * i + 10] for i in range(frames)])
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=30, hidden=4, seed=seed, device="cpu", bpp=6.0)
        clip = np.clip(pan.astype(int) + rng.integers(-2, 3, pan.shape), 0, 255).astype(np.uint8)
        video = encode_clip(Clip(clip, Fraction(25)), opts).data
        if formats.loads(video).version == version and _clear_of_boundaries(video):
            break
    else:
        raise SystemExit("no seed kept the clip clear of rounding boundaries")
    _record({f"video_v{version}.asmr": video})


def main_v9() -> None:
    main_v7(9, 5, 4)


def main() -> None:
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=40, hidden=8, latent_dim=1, seed=seed, device="cpu", bpp=8.0)
        image = encode_raster(Raster(_smooth((8, 10, 3), seed), 8), opts).data
        if _clear_of_boundaries(image):
            break
    else:
        raise SystemExit("no seed kept the image clear of rounding boundaries")
    for seed in range(100):
        opts = EncodeOptions(preset="fast", iters=20, hidden=8, latent_dim=1, seed=seed, device="cpu", bpp=4.0)
        video = encode_clip(Clip(_smooth((8, 4, 6, 3), seed), Fraction(25)), opts).data
        if _predicted(video) and _clear_of_boundaries(video):
            break
    else:
        raise SystemExit("no seed gave a clip with prediction, clear of rounding boundaries")
    files = {"image_v1.asmr": without_prediction(image), "image_v2.asmr": image, "video_v2.asmr": video}
    _record(files)


if __name__ == "__main__":
    runs = {"v1v2": main, "v3": main_v3, "v4": main_v4, "v7": main_v7, "v8": main_v8, "v9": main_v9}
    if len(sys.argv) != 2 or sys.argv[1] not in runs:
        raise SystemExit(f"usage: python tests/make_golden.py {'|'.join(runs)}  (see the docstring)")
    runs[sys.argv[1]]()
