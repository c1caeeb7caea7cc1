import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def golden_files() -> dict[str, Path]:
    """Every golden .asmr file, by name: each format family keeps its own beside its tests
    (tests/<family>/golden/, with the checksums of their decoded pixels)."""
    return {p.name: p for p in sorted((ROOT / "tests").glob("*/golden/*.asmr"))}


def golden_checksums() -> dict[str, dict]:
    import json

    out: dict[str, dict] = {}
    for path in sorted((ROOT / "tests").glob("*/golden/checksums.json")):
        out.update(json.loads(path.read_text()))
    return out


@pytest.fixture
def sample_rgb():
    from asmr_cli.io.media import read_image

    return read_image(SAMPLES / "kodim08_small.png")


def per_pixel_reference(arch, params):
    """Plain evaluation: every sample through every layer (the paper's reference form)."""
    from asmr_cli.coordinate.decomposition import digits, normalised_digits

    dec = arch.decomposition
    grids = [np.indices(dec.padded).reshape(dec.dims, -1).T]  # (N, dims) sample indices
    idx = grids[0]
    L, w0 = dec.levels, arch.w0
    dig = [digits(idx[:, a], dec.bases[a]) for a in range(dec.dims)]  # per axis (N, L)

    def coords(level):
        return np.stack([normalised_digits(dec.bases[a][level])[dig[a][:, level]]
                         for a in range(dec.dims)], axis=-1)

    h = coords(0)
    for i in range(L - 1):
        pre = h @ params[f"layer{i}.weight"].T + params[f"layer{i}.bias"]
        if arch.latent_dim:
            cell = tuple(idx[:, a] // math.prod(dec.bases[a][i + 1:]) for a in range(dec.dims))
            pre = pre + params[f"latent{i}"][cell] @ params[f"proj{i}.weight"].T
        pre = pre + coords(i + 1) @ params[f"mod{i}.weight"].T
        h = np.sin(w0 * pre)
    out = h @ params["head.weight"].T + params["head.bias"]
    return out.T.reshape(arch.channels, *dec.padded)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread avoids spin-waiting between threads on a busy machine
    (modules opt in with pytestmark = pytest.mark.usefixtures("one_torch_thread"))."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def check_corruptions(decode, data: bytes, seed: int, count: int) -> None:
    """`count` copies of `data` with three random bytes flipped decode or raise AsmrError
    (nothing else), and every truncation tried raises AsmrError."""
    from asmr_cli.core.errors import AsmrError

    rng = np.random.default_rng(seed)
    for _ in range(count):
        bad = bytearray(data)
        for i in rng.integers(0, len(bad), 3):
            bad[i] ^= int(rng.integers(1, 256))
        try:
            decode(bytes(bad))
        except AsmrError:
            pass
    for cut in (10, len(data) // 2, len(data) - 1):
        with pytest.raises(AsmrError):
            decode(bytes(data[:cut]))
