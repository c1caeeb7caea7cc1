"""The entropy model of the latent grids: each latent is coded with a discretised Laplace
whose mean and scale a small network predicts from values already decoded.

Grids are coded coarsest first; each grid in two checkerboard passes. An anchor (row +
column even) sees only its parent: the decoded coarser grid of the same plane, upsampled
(its value and its four neighbours). The other half also sees its four spatial
neighbours, which are all anchors. Each pass is one batch, so numpy decodes a grid in two
vectorised steps. In a clip (format version 4) every latent also sees the same grid of
the previous frame (the co-located value and its four neighbours, and a flag that is 0 on
a group's first frame, which has none): temporal context.

Encoder and decoder must compute bit-identical probabilities, so the network runs in
fixed point: weights are integers times 2^-WEIGHT_BITS, inputs and activations integers
times 2^-ACT_BITS, and every product and sum is an integer below 2^53, computed in
float64, where it is exact whatever the BLAS, its blocking or its thread count. Its
outputs are a mean in 1/16 steps and a log-scale index into a fixed table; constriction's
QuantizedLaplace turns those into the coder's integer CDF.
"""

from __future__ import annotations

import functools
import math

import constriction
import numpy as np

from ..container.tensors import CodedStream
from ..core.errors import AsmrError

CTX_INPUTS = 10  # 4 spatial neighbours, parent and its 4 neighbours, anchor flag
TEMPORAL_INPUTS = 6  # clips: the previous frame's value and its 4 neighbours, a has-previous flag
CTX_HIDDEN = 16  # the widest context network (a file says its own width)
WEIGHT_BITS = 8
ACT_BITS = 8
MAX_WEIGHT = 1 << 15  # |integer weight|: |w| < 128
MAX_LATENT = 1 << 14  # |latent| the coder accepts (inputs stay far below 2^53)
MAX_ACT = 1 << 30
CHUNK = 1 << 19  # latents predicted and coded at once
LOG_SCALE_MIN, LOG_SCALE_MAX = -64, 96  # log scale in 1/16: b = exp(i / 16), 0.018 .. 403


def _scale_table() -> np.ndarray:
    # rounded to 2^-20 so that a last-ulp difference between two machines' exp() cannot
    # change a table entry
    return np.array([round(math.exp(i / 16) * (1 << 20)) / (1 << 20)
                     for i in range(LOG_SCALE_MIN, LOG_SCALE_MAX + 1)], dtype=np.float64)


SCALES = _scale_table()


def n_inputs(temporal: bool) -> int:
    return CTX_INPUTS + (TEMPORAL_INPUTS if temporal else 0)


def flag_inputs(temporal: bool) -> tuple[int, ...]:
    """The inputs that are flags (0 or 1), not latent values."""
    return (CTX_INPUTS - 1,) + ((CTX_INPUTS + TEMPORAL_INPUTS - 1,) if temporal else ())


def parameter_shapes(n_grids: int, h: int = CTX_HIDDEN, temporal: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    return [("c_w1", (h, n_inputs(temporal))), ("c_b1", (h,)), ("c_w2", (h, h)), ("c_b2", (h,)),
            ("c_w3", (2, h)), ("c_b3", (2,)), ("c_grid", (n_grids, 2))]


def macs_per_latent(h: int = CTX_HIDDEN, temporal: bool = False) -> int:
    return n_inputs(temporal) * h + h * h + 2 * h


def to_fixed(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float weights -> the integers the file stores (and both sides compute with)."""
    return {k: np.clip(np.rint(np.asarray(v, np.float64) * (1 << WEIGHT_BITS)), -MAX_WEIGHT + 1,
                       MAX_WEIGHT - 1).astype(np.int32) for k, v in params.items()}


def up2_int(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """16 x the bilinear 2x upsampling of an integer grid (latents.up2), exactly, as int64."""
    x = x.astype(np.int64)
    for axis, size in ((0, shape[0]), (1, shape[1])):
        n = x.shape[axis]
        prev = np.concatenate([x.take([0], axis), x.take(range(n - 1), axis)], axis)
        nxt = np.concatenate([x.take(range(1, n), axis), x.take([n - 1], axis)], axis)
        y = np.stack([3 * x + prev, 3 * x + nxt], axis + 1)
        new = list(x.shape)
        new[axis] = 2 * n
        x = y.reshape(new).take(range(size), axis)
    return x


@functools.lru_cache(maxsize=64)
def positions(shape: tuple[int, int], anchor: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of one checkerboard pass, in raster order (cached: a clip
    asks for the same shapes every frame; the arrays are read-only)."""
    rows, cols = np.indices(shape)
    keep = ((rows + cols) % 2 == 0) == anchor
    out = rows[keep], cols[keep]
    for a in out:
        a.flags.writeable = False
    return out


def _gather4(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    """The N, S, W, E neighbours from a grid zero-padded by one on every side, into the
    four columns of `out`."""
    flat = padded.reshape(-1)
    w = padded.shape[1]
    centre = (rows + 1) * w + cols + 1
    for j, i in enumerate((centre - w, centre + w, centre - 1, centre + 1)):
        np.take(flat, i, out=out[:, j])


def contexts(grid: np.ndarray, parent16: np.ndarray | None, rows: np.ndarray, cols: np.ndarray,
             anchor: bool, temporal: bool = False, prev: np.ndarray | None = None) -> np.ndarray:
    """(n, n_inputs) integer inputs times 2^ACT_BITS, as float64: grid is this grid's
    int values so far, parent16 16 x the upsampled parent (None at the coarsest level),
    prev (clips) the previous frame's grid (None on a group's first frame)."""
    pprev = _padded(prev) if temporal and prev is not None else None
    return _contexts(_padded(grid, anchor), _padded_parent(parent16), rows, cols, anchor, temporal, pprev)


def _padded(grid: np.ndarray, anchor: bool = False) -> np.ndarray | None:
    return None if anchor else np.pad(grid.astype(np.float64) * (1 << ACT_BITS), 1)


def _padded_parent(parent16: np.ndarray | None) -> np.ndarray | None:
    return None if parent16 is None else np.pad(parent16.astype(np.float64) * ((1 << ACT_BITS) // 16), 1)


def _contexts(padded: np.ndarray | None, pp: np.ndarray | None, rows: np.ndarray, cols: np.ndarray,
              anchor: bool, temporal: bool = False, pprev: np.ndarray | None = None) -> np.ndarray:
    n = rows.size
    one = float(1 << ACT_BITS)
    x = np.zeros((n, n_inputs(temporal)), order="F")  # filled a column at a time
    if padded is not None:
        _gather4(padded, rows, cols, x[:, 0:4])
    if pp is not None:
        x[:, 4] = pp[rows + 1, cols + 1]
        _gather4(pp, rows, cols, x[:, 5:9])
    if anchor:
        x[:, 9] = one
    if temporal and pprev is not None:
        x[:, 10] = pprev[rows + 1, cols + 1]
        _gather4(pprev, rows, cols, x[:, 11:15])
        x[:, 15] = one
    return x


def _shift(x: np.ndarray, bits: int = WEIGHT_BITS) -> np.ndarray:
    """x / 2^bits rounded to an integer (halves up), exact in float64; in place."""
    x *= 2.0 ** -bits  # a power of two: exact, as x / 2^bits
    x += 0.5
    return np.floor(x, out=x)


def as_float(q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored integers as float64 (what predict computes with)."""
    return {k: np.asarray(v, np.float64) for k, v in q.items()}


def predict(q: dict[str, np.ndarray], grid_index: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point network: (n, inputs) inputs -> means (float64, multiples of 1/16)
    and scales (from the table). Every intermediate is an integer below 2^53. q: the
    stored integers, or as_float of them."""
    one = 1 << ACT_BITS
    f = q if q["c_w1"].dtype == np.float64 else as_float(q)
    h = np.clip(_shift(x @ f["c_w1"].T + f["c_b1"] * one), 0, MAX_ACT)
    h = np.clip(_shift(h @ f["c_w2"].T + f["c_b2"] * one), 0, MAX_ACT)
    out = _shift(h @ f["c_w3"].T + (f["c_b3"] + f["c_grid"][grid_index]) * one,
                 WEIGHT_BITS + ACT_BITS - 4)  # in 1/16
    mean = np.clip(out[:, 0], -16 * MAX_LATENT, 16 * MAX_LATENT) / 16
    index = np.clip(out[:, 1], LOG_SCALE_MIN, LOG_SCALE_MAX).astype(np.int64) - LOG_SCALE_MIN
    return mean, SCALES[index]


def _passes(grid: np.ndarray | None, shape, parent, q, k, coder, decode: bool, temporal: bool = False,
            prev: np.ndarray | None = None) -> np.ndarray:
    """Run a grid's two checkerboard passes through `coder` (encoding grid, or decoding
    into a new one); returns the grid."""
    out = np.zeros(shape, np.int64) if decode else grid
    q = q if q["c_w1"].dtype == np.float64 else as_float(q)
    pp = _padded_parent(None if parent is None else up2_int(parent, shape))
    pprev = _padded(prev) if temporal and prev is not None else None
    for anchor in (True, False):
        all_rows, all_cols = positions(shape, anchor)
        padded = _padded(out, anchor)  # the anchors are complete before the second pass
        for lo in range(0, all_rows.size, CHUNK):  # bounded memory on large images
            rows, cols = all_rows[lo:lo + CHUNK], all_cols[lo:lo + CHUNK]
            mean, scale = predict(q, k, _contexts(padded, pp, rows, cols, anchor, temporal, pprev))
            if decode:
                out[rows, cols] = coder(rows.size, mean, scale)
            else:
                coder(out[rows, cols], mean, scale)
    return out


def encode_grids(latents: list[np.ndarray], grids: list[tuple[int, int, tuple[int, int]]],
                 q: dict[str, np.ndarray]) -> list[CodedStream]:
    """latents: one int grid per entry of `grids` ((level, plane, shape), coarsest first)."""
    coded = []
    done: dict[tuple[int, int], np.ndarray] = {}
    for k, ((level, plane, shape), z) in enumerate(zip(grids, latents)):
        z = np.asarray(z, np.int64)
        if z.size and np.abs(z).max() >= MAX_LATENT:
            raise AsmrError("latent values too large to code")
        lo, hi = (int(z.min()), int(z.max())) if z.size else (0, 0)
        done[(level, plane)] = z
        if lo == hi:
            coded.append(CodedStream(lo, hi, np.zeros(0, np.uint32)))
            continue
        enc = constriction.stream.queue.RangeEncoder()
        model = constriction.stream.model.QuantizedLaplace(lo, hi)

        def coder(values, mean, scale, _enc=enc, _model=model):
            _enc.encode(values.astype(np.int32), _model, mean, scale)

        _passes(z, shape, done.get((level + 1, plane)), q, k, coder, decode=False)
        coded.append(CodedStream(lo, hi, enc.get_compressed()))
    return coded


def decode_grids(coded: list[CodedStream], grids: list[tuple[int, int, tuple[int, int]]],
                 q: dict[str, np.ndarray]) -> list[np.ndarray]:
    out = []
    done: dict[tuple[int, int], np.ndarray] = {}
    for k, ((level, plane, shape), c) in enumerate(zip(grids, coded)):
        if c.lo == c.hi:
            z = np.full(shape, c.lo, np.int64)
        else:
            dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(c.words, np.uint32))
            model = constriction.stream.model.QuantizedLaplace(c.lo, c.hi)

            def coder(n, mean, scale, _dec=dec, _model=model):
                try:
                    return np.asarray(_dec.decode(_model, mean, scale), np.int64)
                except Exception as exc:  # constriction raises plain exceptions on bad data
                    raise AsmrError(f"corrupt file: latent decoding failed ({exc})") from None

            z = _passes(None, shape, done.get((level + 1, plane)), q, k, coder, decode=True)
        done[(level, plane)] = z
        out.append(z)
    return out


# -- clips: a group's frames in one stream ------------------------------------------------------

def encode_stream(frames: list[list[np.ndarray]], grids: list[tuple[int, int, tuple[int, int]]],
                  q: dict[str, np.ndarray]) -> CodedStream:
    """A group of frames (per frame: int grids in `grids` order) coded in one range-coder
    stream, frame after frame, each grid under its parent, its spatial neighbours and the
    previous frame's same grid; one symbol range for the whole group."""
    values = [z for f in frames for z in f if z.size]
    lo = min((int(z.min()) for z in values), default=0)
    hi = max((int(z.max()) for z in values), default=0)
    if max(abs(lo), abs(hi)) >= MAX_LATENT:
        raise AsmrError("latent values too large to code")
    if lo == hi:
        return CodedStream(lo, hi, np.zeros(0, np.uint32))
    enc = constriction.stream.queue.RangeEncoder()
    model = constriction.stream.model.QuantizedLaplace(lo, hi)
    q = as_float(q)

    def coder(values, mean, scale):
        enc.encode(values.astype(np.int32), model, mean, scale)

    prev = None
    for ints in frames:
        done: dict[tuple[int, int], np.ndarray] = {}
        for k, ((level, plane, shape), z) in enumerate(zip(grids, ints)):
            z = np.asarray(z, np.int64)
            done[(level, plane)] = z
            _passes(z, shape, done.get((level + 1, plane)), q, k, coder, False, True,
                    None if prev is None else prev[k])
        prev = ints
    return CodedStream(lo, hi, enc.get_compressed())


class StreamDecoder:
    """Decodes a group's stream one frame at a time (the previous frame is the context)."""

    def __init__(self, coded: CodedStream, grids: list[tuple[int, int, tuple[int, int]]], q: dict[str, np.ndarray]):
        self.coded, self.grids, self.q = coded, grids, as_float(q)
        self.model = None
        if coded.lo != coded.hi:
            self.dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(coded.words, np.uint32))
            self.model = constriction.stream.model.QuantizedLaplace(coded.lo, coded.hi)

    def _coder(self, n, mean, scale):
        try:
            return np.asarray(self.dec.decode(self.model, mean, scale), np.int64)
        except Exception as exc:  # constriction raises plain exceptions on bad data
            raise AsmrError(f"corrupt file: latent decoding failed ({exc})") from None

    def next_frame(self, prev: list[np.ndarray] | None) -> list[np.ndarray]:
        out = []
        done: dict[tuple[int, int], np.ndarray] = {}
        for k, (level, plane, shape) in enumerate(self.grids):
            if self.model is None:
                z = np.full(shape, self.coded.lo, np.int64)
            else:
                z = _passes(None, shape, done.get((level + 1, plane)), self.q, k, self._coder, True, True,
                            None if prev is None else prev[k])
            done[(level, plane)] = z
            out.append(z)
        return out
