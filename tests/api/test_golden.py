"""Files of every format version this build reads still decode, to the pixels they decoded
to when they were made (tests/make_golden.py says how; never regenerate them to make
this pass). Each family keeps its golden files beside its tests (tests/<family>/golden/)."""

import hashlib
import shutil

import numpy as np
import pytest

from asmr_cli.api import decode_bytes, decode_video, formats
from asmr_cli.api.files import decode_file
from asmr_cli.container import file as cfile
from asmr_cli.io.media import read_image
from asmr_cli.latent import format as fmt3

from ..conftest import golden_checksums, golden_files

GOLDEN = golden_files()
CHECKSUMS = golden_checksums()
# one picture or clip per file; a collection's golden file (members) is tests/collection's
SINGLE = {name: v for name, v in CHECKSUMS.items() if "members" not in v}


def _sha256(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def test_every_readable_version_has_a_golden_file():
    assert {v["version"] for v in CHECKSUMS.values()} == set(formats.READ_VERSIONS)
    assert set(GOLDEN) == set(CHECKSUMS)
    assert any(v["predicted"] for v in SINGLE.values() if v["version"] >= 2)  # version 2's feature is used


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_golden_file_decodes_to_its_checksum(name):
    want = CHECKSUMS[name]
    data = GOLDEN[name].read_bytes()
    f = formats.loads(data)
    assert f.version == want["version"]
    if f.version < fmt3.VERSION:
        assert [n for (n, _), t in zip(f.header.architecture.param_shapes(), f.tensors) if t.coded.predict] \
            == want["predicted"]
    px = decode_video(data).frames if f.header.kind == cfile.KIND_VIDEO else decode_bytes(data).pixels
    assert (list(px.shape), str(px.dtype)) == (want["shape"], want["dtype"])
    assert _sha256(px) == want["sha256"]


@pytest.mark.parametrize("name", [n for n in sorted(SINGLE) if n.startswith("image")])
def test_golden_image_through_the_decode_command(tmp_path, name):
    src = tmp_path / name
    shutil.copy(GOLDEN[name], src)
    summary = decode_file(src)
    out = read_image(tmp_path / name.replace(".asmr", ".png"))
    assert summary["output"] == str(tmp_path / name.replace(".asmr", ".png"))
    assert _sha256(out.pixels) == CHECKSUMS[name]["sha256"]
