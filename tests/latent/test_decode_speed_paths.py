"""Issue 24: the decoder's fast paths against the previous ones.

The context model's batched, chunked evaluation (context_model.FixedNet and _code_level)
must give the coder the same probabilities as the per-grid reference it replaced (kept
below, built on context_model.predict / contexts / positions / up2_int): same bytes when
encoding, same latents when decoding, for images (a stream per grid) and clips (one
stream per group, temporal context)."""

from __future__ import annotations

import constriction
import numpy as np
import pytest

from asmr_cli.container.tensors import CodedStream
from asmr_cli.latent import context_model as cm
from asmr_cli.latent import latents
from asmr_cli.latent.latents import NUMPY, ArrayOps, Layout, up2

# -- the previous path (per grid and checkerboard pass, commit 365cebf) ------------------------


def _ref_passes(grid, shape, parent, q, k, coder, decode, temporal=False, prev=None):
    out = np.zeros(shape, np.int64) if decode else grid
    for anchor in (True, False):
        rows, cols = cm.positions(shape, anchor)
        parent16 = None if parent is None else cm.up2_int(parent, shape)
        x = cm.contexts(out, parent16, rows, cols, anchor, temporal, prev)
        mean, scale = cm.predict(q, k, x)
        if decode:
            out[rows, cols] = coder(rows.size, mean, scale)
        else:
            coder(out[rows, cols], mean, scale)
    return out


def ref_encode_grids(latents, grids, q):
    coded, done = [], {}
    for k, ((level, plane, shape), z) in enumerate(zip(grids, latents)):
        z = np.asarray(z, np.int64)
        lo, hi = int(z.min()), int(z.max())
        done[(level, plane)] = z
        if lo == hi:
            coded.append(CodedStream(lo, hi, np.zeros(0, np.uint32)))
            continue
        enc = constriction.stream.queue.RangeEncoder()
        model = constriction.stream.model.QuantizedLaplace(lo, hi)
        _ref_passes(z, shape, done.get((level + 1, plane)), q, k,
                    lambda v, m, s, enc=enc, model=model: enc.encode(v.astype(np.int32), model, m, s), False)
        coded.append(CodedStream(lo, hi, enc.get_compressed()))
    return coded


def ref_encode_stream(frames, grids, q):
    values = [z for f in frames for z in f]
    lo, hi = min(int(z.min()) for z in values), max(int(z.max()) for z in values)
    enc = constriction.stream.queue.RangeEncoder()
    model = constriction.stream.model.QuantizedLaplace(lo, hi)
    prev = None
    for ints in frames:
        done = {}
        for k, ((level, plane, shape), z) in enumerate(zip(grids, ints)):
            done[(level, plane)] = z
            _ref_passes(z, shape, done.get((level + 1, plane)), q, k,
                        lambda v, m, s: enc.encode(v.astype(np.int32), model, m, s), False, True,
                        None if prev is None else prev[k])
        prev = ints
    return CodedStream(lo, hi, enc.get_compressed())


# -- data ---------------------------------------------------------------------------------------


def _net(rng, n_grids, temporal, hidden=16, spread=120):
    shapes = dict(cm.parameter_shapes(n_grids, hidden, temporal))
    q = {name: rng.integers(-spread, spread + 1, shape).astype(np.int32) for name, shape in shapes.items()}
    q["c_b3"][1] = 16 * 8  # scales around exp(1), so the coder sees a useful spread
    return q


def _latents(rng, grids, constant=()):
    out = []
    for k, (_, _, shape) in enumerate(grids):
        z = np.rint(rng.laplace(0, 3, shape)).astype(np.int64)
        out.append(np.full(shape, 2, np.int64) if k in constant else z)
    return out


LAYOUTS = [Layout(37, 53, 3, 5, 8, 16), Layout(16, 16, 1, 3, 8, 16), Layout(21, 10, 4, 4, 8, 16),
           Layout(9, 40, 2, 3, 8, 16)]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"{lay.height}x{lay.width}x{lay.channels}")
@pytest.mark.parametrize("chunk,band", [(cm.CHUNK, cm.BAND_CELLS), (7, cm.BAND_CELLS), (cm.CHUNK, 7), (5, 40)])
def test_image_grids_same_bytes_and_latents(layout, chunk, band, monkeypatch):
    """band: grids above twice this many cells go plane by plane in bands of rows."""
    monkeypatch.setattr(cm, "CHUNK", chunk)
    monkeypatch.setattr(cm, "BAND_CELLS", band)
    rng = np.random.default_rng(layout.height * 100 + chunk + band)
    grids = layout.grids()
    q = _net(rng, len(grids), False)
    latents = _latents(rng, grids, constant=(1,))
    ref = ref_encode_grids(latents, grids, q)
    new = cm.encode_grids(latents, grids, q)
    for a, b in zip(ref, new):
        assert (a.lo, a.hi) == (b.lo, b.hi)
        np.testing.assert_array_equal(a.words, b.words)
    for z, d in zip(latents, cm.decode_grids(new, grids, q)):
        np.testing.assert_array_equal(z, d)


@pytest.mark.parametrize("chunk,band", [(cm.CHUNK, cm.BAND_CELLS), (5, cm.BAND_CELLS), (cm.CHUNK, 9)])
def test_clip_stream_same_bytes_and_latents(chunk, band, monkeypatch):
    monkeypatch.setattr(cm, "CHUNK", chunk)
    monkeypatch.setattr(cm, "BAND_CELLS", band)
    rng = np.random.default_rng(chunk + band)
    layout = Layout(19, 26, 3, 4, 8, 16)
    grids = layout.grids()
    q = _net(rng, len(grids), True)
    frames = [_latents(rng, grids) for _ in range(4)]
    ref = ref_encode_stream(frames, grids, q)
    new = cm.encode_stream(frames, grids, q)
    assert (ref.lo, ref.hi) == (new.lo, new.hi)
    np.testing.assert_array_equal(ref.words, new.words)
    dec, prev = cm.StreamDecoder(new, grids, q), None
    for frame in frames:
        prev = dec.next_frame(prev)
        for z, d in zip(frame, prev):
            np.testing.assert_array_equal(z, d)


@pytest.mark.parametrize("limit", [cm.MAX_LATENT, 1 << 21])
def test_fixed_net_equals_predict_at_the_extremes(limit):
    """Large weights and inputs (products near the 2^53 bound of `predict`): the folded
    scales stay exact, and the clips that the bounds keep are the ones that matter."""
    rng = np.random.default_rng(5)
    shape = (11, 13)
    q = _net(rng, 1, False, spread=cm.MAX_WEIGHT - 1)
    z = rng.integers(-cm.MAX_LATENT + 1, cm.MAX_LATENT, shape)
    parent = rng.integers(-cm.MAX_LATENT + 1, cm.MAX_LATENT, (6, 7))
    net = cm.FixedNet(q, limit)
    ctx = cm.Contexts(1, shape, True, False)
    ctx.cur[0, 1:-1, 1:-1] = z
    ctx.par[0, 1:-1, 1:-1] = cm.up2_int(parent, shape)
    for anchor in (True, False):
        rows, cols = cm.positions(shape, anchor)
        mean, scale = cm.predict(q, 0, cm.contexts(z, cm.up2_int(parent, shape), rows, cols, anchor))
        m2, s2 = net.predict(shape, anchor, (0,), (0,), ctx)
        np.testing.assert_array_equal(mean, m2)
        np.testing.assert_array_equal(scale, s2)


def test_up2_int_on_stacks():
    rng = np.random.default_rng(2)
    for h, w in ((1, 1), (1, 4), (5, 3), (6, 7)):
        z = rng.integers(-99, 99, (3, h, w))
        for shape in ((2 * h, 2 * w), (2 * h - 1, 2 * w - 1), (2 * h, 2 * w - 1)):
            stacked = cm.up2_int(z, shape)
            np.testing.assert_array_equal(stacked, 16 * up2(NUMPY, z.astype(np.float64), shape))


# -- synthesis -----------------------------------------------------------------------------------

REFERENCE_OPS = ArrayOps(cat=NUMPY.cat, stack=NUMPY.stack, relu=NUMPY.relu)  # not NUMPY: up2's generic path


@pytest.mark.parametrize("shape", [(19, 1, 1), (19, 1, 6), (4, 5, 3), (19, 24, 17), (2, 3, 4, 5)])
def test_numpy_up2_same_bits_as_the_generic_path(shape):
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    h, w = shape[-2:]
    for size in ((2 * h, 2 * w), (2 * h - 1, 2 * w - 1), (2 * h - 1, 2 * w)):
        fast, ref = up2(NUMPY, x, size), up2(REFERENCE_OPS, x, size)
        assert fast.dtype == ref.dtype
        np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("layout", [Layout(45, 37, 3, 4, 8), Layout(64, 300, 1, 5, 8), Layout(30, 20, 4, 3, 8)],
                         ids=lambda lay: f"{lay.height}x{lay.width}x{lay.channels}")
def test_banded_synthesis_same_bits_as_the_whole(layout, monkeypatch):
    """The numpy synthesis in cache-sized bands of rows gives the bits of the one-piece
    `synthesize` on the generic path (the previous decoder, below TILE_PIXELS)."""
    monkeypatch.setattr(latents, "TILE_PIXELS", 2 * layout.width + 3)
    rng = np.random.default_rng(layout.width)
    p = {name: rng.standard_normal(shape).astype(np.float32) * 0.3 for name, shape in layout.synthesis_shapes()}
    lat = [rng.integers(-4, 5, (len(layout.planes(lv)),) + s).astype(np.float32)
           for lv, s in enumerate(layout.shapes)]
    whole = latents.synthesize(REFERENCE_OPS, layout, p, lat)
    np.testing.assert_array_equal(latents.synthesize_numpy(layout, p, lat), whole)
    np.testing.assert_array_equal(latents.synthesize_numpy(layout, p, lat, threads=3), whole)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (3, 3), (4, 7), (7, 4), (6, 6)])
def test_pass_index_follows_positions(shape):
    for anchor in (True, False):
        rows, cols = cm.positions(shape, anchor)
        flat, padded = cm._pass_index(shape, anchor)
        np.testing.assert_array_equal(flat, rows * shape[1] + cols)
        np.testing.assert_array_equal(padded, (rows + 1) * (shape[1] + 2) + cols + 1)


# -- output ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 2), (17, 9, 3), (4, 30, 4), (1, 40, 3), (33, 1, 3)])
def test_png8_writer_round_trip(shape, tmp_path):
    """The 8-bit PNG writer (filter Up, zlib): Pillow reads back the same pixels and modes."""
    from PIL import Image

    from asmr_cli.io.media import Raster, write_image

    px = np.random.default_rng(sum(shape)).integers(0, 256, shape).astype(np.uint8)
    px[len(px) // 2:] //= 3  # rows that repeat structure, so the filter matters
    write_image(tmp_path / "o.png", Raster(px, 8))
    with Image.open(tmp_path / "o.png") as im:
        im.load()
        assert im.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[shape[2]]
        back = np.asarray(im)
    np.testing.assert_array_equal(back.reshape(shape), px)
