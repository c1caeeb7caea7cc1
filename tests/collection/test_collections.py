"""Collections (format 5): many images in one file sharing one set of networks; any member
decoded alone; the whole tree; adding a member against the frozen networks; the member
index's cost; hostile files; the golden file."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from asmr_cli.api import (
    AsmrError,
    EncodeOptions,
    add_member,
    collection_stats,
    decode_all,
    decode_member,
    encode_collection,
    open_collection,
)
from asmr_cli.api.files import decode_file
from asmr_cli.collection import format as fmt5
from asmr_cli.collection.codec import pack, unpack
from asmr_cli.container.networks import BY_REFERENCE, NetworkSource
from asmr_cli.io.media import Raster, read_image, write_image
from asmr_cli.latent import context_model as cm

from ..conftest import ROOT

GOLDEN = ROOT / "tests" / "collection" / "golden"
CHECKSUMS = json.loads((GOLDEN / "checksums.json").read_text())


def _tile(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = [0.5 + 0.3 * np.sin(4 * (y * rng.uniform(0.5, 2) + x * rng.uniform(0.5, 2)) + c) for c in range(3)]
    return np.clip(np.rint(np.stack(out, -1) * 255 + rng.normal(0, 3, (h, w, 3))), 0, 255).astype(np.uint8)


MEMBERS = [("cat/0001.png", 16, 16), ("cat/0002.png", 16, 16), ("dog/a.png", 12, 20), ("b.png", 16, 16)]


@pytest.fixture(scope="module")
def encoded():
    named = [(n, Raster(_tile(h, w, i), 8)) for i, (n, h, w) in enumerate(MEMBERS)]
    return named, encode_collection(named, EncodeOptions(iters=40, bpp=2.0, preset="fast"))


def test_members_keep_names_and_sizes_and_decode_alone(encoded):
    named, result = encoded
    c = open_collection(result.data)
    assert [(m.name, m.height, m.width) for m in c.members] == MEMBERS
    assert result.stats["members"] == 4 and result.stats["kind"] == "collection"
    for name, raster in named:
        alone = decode_member(result.data, name)
        assert alone.pixels.shape == raster.pixels.shape
        assert np.array_equal(alone.pixels, decode_member(result.data, name, collection=c).pixels)
    # only that member's stream is read: corrupting another member's words leaves it intact
    data = bytearray(result.data)
    m0, m3 = c.members[0], c.members[3]
    assert m3.offset > m0.offset
    f = unpack(fmt5.parse(5, *_split(result.data)))
    words = f.words.copy()
    words[m0.offset:m0.offset + m0.words] ^= 0x5A5A5A5A
    f.words = words
    assert np.array_equal(_render(f, 3), decode_member(bytes(data), "b.png").pixels)


def _split(data):
    import struct

    hlen, = struct.unpack_from("<I", data, 5)
    plen, = struct.unpack_from("<I", data, 13 + hlen)
    return data[9:9 + hlen], data[17 + hlen:17 + hlen + plen]


def _render(c, i):
    from asmr_cli.collection.family import member_raster

    return member_raster(c, i).pixels


def test_any_size_and_region_per_member(encoded):
    _, result = encoded
    full = decode_member(result.data, "dog/a.png")
    assert full.pixels.shape == (12, 20, 3)
    big = decode_member(result.data, "dog/a.png", scale=2.0)
    assert big.pixels.shape == (24, 40, 3)
    part = decode_member(result.data, "dog/a.png", region=(4, 2, 8, 6))
    assert np.array_equal(part.pixels, full.pixels[2:8, 4:12])
    with pytest.raises(AsmrError, match="no member 'nope.png'"):
        decode_member(result.data, "nope.png")


def test_tree_and_member_through_decode_file(encoded, tmp_path):
    _, result = encoded
    src = tmp_path / "set.asmr"
    src.write_bytes(result.data)
    out = decode_file(src, str(tmp_path / "out") + "/")
    assert out["members"] == 4
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == \
        sorted(n for n, _, _ in MEMBERS)
    one = decode_file(src, tmp_path / "x.png", member="dog/a.png")
    assert one["width"] == 20 and read_image(tmp_path / "x.png").pixels.shape == (12, 20, 3)
    assert np.array_equal(read_image(tmp_path / "x.png").pixels, read_image(tmp_path / "out/dog/a.png").pixels)
    with pytest.raises(AsmrError, match="exists"):
        decode_all(result.data, tmp_path / "out")
    with pytest.raises(AsmrError, match="collection"):
        from asmr_cli.api import decode_bytes

        decode_bytes(result.data)


def test_stats_list_members_and_psnr(encoded, tmp_path):
    named, result = encoded
    for name, raster in named:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(tmp_path / name, raster)
    s = collection_stats(result.data, tmp_path)
    assert [r["name"] for r in s["member_list"]] == [n for n, _, _ in MEMBERS]
    assert all(r["psnr"] > 15 for r in s["member_list"])
    assert s["network_bytes"] + s["index_bytes"] + s["framing_bytes"] + sum(r["bytes"] for r in s["member_list"]) \
        == len(result.data)


def test_add_member_keeps_the_others_bytes(encoded, tmp_path):
    _, result = encoded
    new = Raster(_tile(16, 16, 9), 8)
    added = add_member(result.data, "new/x.png", new, EncodeOptions(iters=30))
    before, after = open_collection(result.data), open_collection(added.data)
    assert len(after.members) == 5 and after.members[-1].name == "new/x.png"
    assert after.records == before.records
    assert np.array_equal(after.words[:before.words.size], before.words)
    for m in before.members:
        assert np.array_equal(decode_member(added.data, m.name).pixels, decode_member(result.data, m.name).pixels)
    assert added.stats["psnr"] > 15
    with pytest.raises(AsmrError, match="already a member"):
        add_member(added.data, "new/x.png", new)


def test_names_and_caps_refused(encoded):
    named, _ = encoded
    for bad in ("../x.png", "/abs.png", "a//b.png", "a/./b.png", "a\\b.png", ""):
        with pytest.raises(AsmrError):
            encode_collection([(bad, named[0][1])], EncodeOptions(iters=2))
    with pytest.raises(AsmrError, match="share their channels"):
        encode_collection([("a", named[0][1]), ("b", Raster(named[1][1].pixels[..., :1], 8))], EncodeOptions(iters=2))
    # a header declaring too many members, or an index inflating past its declared size
    h = fmt5.CollectionHeader(3, 8, 2, 0, 0, members=[fmt5.Member("x", 4, 4)])
    raw = fmt5.pack_index(h.members)
    too_many = bytes([2, 3, 8, 2, 0, 0, 0]) + fmt5.varint(fmt5.MAX_MEMBERS + 1) + b"\0\0\0\0"
    with pytest.raises(AsmrError, match="members"):
        fmt5.parse_header(too_many)
    h.members = [fmt5.Member("x", 4, 4)]
    hdr = fmt5.parse_header(fmt5.pack_header(h, fmt5.deflate(raw), len(raw) - 1))
    with pytest.raises(AsmrError, match="index length"):
        fmt5.read_index(fmt5.deflate(raw), hdr)
    evil = fmt5.CollectionHeader(3, 8, 2, 0, 0, members=[fmt5.Member("../evil", 4, 4)])
    raw = fmt5.pack_index(evil.members)
    with pytest.raises(AsmrError, match="member name"):
        fmt5.read_index(fmt5.deflate(raw), fmt5.parse_header(fmt5.pack_header(evil, fmt5.deflate(raw), len(raw))))


def test_networks_by_reference():
    """A file that refers to networks it does not carry: refused in one line without them,
    decoded with them (checked against the digest)."""
    rng = np.random.default_rng(0)
    h = fmt5.CollectionHeader(3, 8, 2, 2, 2, source=NetworkSource(BY_REFERENCE),
                              members=[fmt5.Member("a", 8, 8), fmt5.Member("b", 6, 9)])
    lay = h.net_layout
    syn = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in lay.synthesis_shapes()}
    ctx = {n: rng.normal(0, 0.5, s) for n, s in cm.parameter_shapes(len(lay.grids()), 2)}
    lat = [[rng.laplace(0, 2, s) for _, _, s in h.layout(m.height, m.width).grids()] for m in h.members]
    data = pack(h, syn, ctx, lat, 8)
    carried = pack(fmt5.CollectionHeader(3, 8, 2, 2, 2, members=[fmt5.Member("a", 8, 8), fmt5.Member("b", 6, 9)]),
                   syn, ctx, lat, 8)
    assert len(carried) - len(data) > 20
    with pytest.raises(AsmrError, match="refers to networks it does not carry"):
        decode_member(data, "a")
    from asmr_cli.api import formats

    f = formats.loads(data)
    records = unpack(formats.loads(carried)).records
    c = unpack(f, {f.header.source.digest: records})
    assert np.array_equal(_render(c, 1), decode_member(carried, "b").pixels)
    with pytest.raises(AsmrError, match="do not match"):
        unpack(f, {f.header.source.digest: records[:-1] + b"\1"})


def test_member_index_costs_a_few_bytes():
    """64 members of 8x8 with names like t/000.png: the index (names, sizes, stream lengths)
    under 4 bytes a member, the header's fixed part a few bytes."""
    rng = np.random.default_rng(1)
    members = [fmt5.Member(f"t/{i:03d}.png", 8, 8) for i in range(64)]
    h = fmt5.CollectionHeader(3, 8, 3, 0, 0, members=members)
    lay = h.net_layout
    syn = {n: rng.normal(0, 0.3, s).astype(np.float32) for n, s in lay.synthesis_shapes()}
    ctx = {n: rng.normal(0, 0.5, s) for n, s in cm.parameter_shapes(len(lay.grids()), 0)}
    lat = [[rng.laplace(0, 1, s) for _, _, s in h.layout(8, 8).grids()] for _ in members]
    data = pack(h, syn, ctx, lat, 8)
    c = open_collection(data)
    assert c.header.index_bytes / 64 < 4
    assert len(fmt5.pack_header(c.header, b"\0" * c.header.index_bytes, c.header.index_raw)) < 24


@pytest.mark.slow
def test_cli_collection_round_trip_without_torch_on_decode(tmp_path):
    src = tmp_path / "tiles"
    for i, (name, h, w) in enumerate(MEMBERS):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(src / name, Raster(_tile(h, w, i), 8))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    asmr = [sys.executable, "-c", "from asmr_cli.cli.entry import run; run()"]
    subprocess.run(asmr + ["encode", str(src), "-r", "--collection", "-o", str(tmp_path / "set.asmr"), "--iters",
                           "20", "--bpp", "2", "--quiet"], check=True, env=env)
    probe = ("import sys; from asmr_cli.cli.entry import run; sys.argv = ['asmr'] + sys.argv[1:]\n"
             "try:\n    run()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
             "assert 'torch' not in sys.modules and 'typer' not in sys.modules")
    subprocess.run([sys.executable, "-c", probe, "decode", str(tmp_path / "set.asmr"), "--member", "dog/a.png",
                    "-o", str(tmp_path / "x.png")], check=True, env=env)
    assert read_image(tmp_path / "x.png").pixels.shape == (12, 20, 3)
    out = subprocess.run(asmr + ["stats", str(tmp_path / "set.asmr"), "--ref", str(src), "--json"], check=True,
                         env=env, capture_output=True, text=True)
    assert len(json.loads(out.stdout)["member_list"]) == 4
    shutil.copy(src / "b.png", tmp_path / "extra.png")
    before = (tmp_path / "set.asmr").read_bytes()
    subprocess.run(asmr + ["encode", str(tmp_path / "extra.png"), "--into", str(tmp_path / "set.asmr"), "--iters",
                           "10", "--quiet"], check=True, env=env)
    after = (tmp_path / "set.asmr").read_bytes()
    assert len(after) > len(before) and "extra.png" in [m.name for m in open_collection(after).members]


def test_golden_collection_decodes_to_its_checksums():
    want = CHECKSUMS["set_v5.asmr"]
    data = (GOLDEN / "set_v5.asmr").read_bytes()
    assert data[4] == want["version"] == fmt5.VERSION
    for name, w in want["members"].items():
        px = decode_member(data, name).pixels
        assert (list(px.shape), str(px.dtype)) == (w["shape"], w["dtype"])
        assert hashlib.sha256(np.ascontiguousarray(px).tobytes()).hexdigest() == w["sha256"]
