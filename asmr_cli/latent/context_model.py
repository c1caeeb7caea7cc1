"""The entropy model of the latent grids: each latent is coded with a discretised Laplace
whose mean and scale a small network predicts from values already decoded.

Grids are coded coarsest first; each grid in two checkerboard passes. An anchor (row +
column even) sees only its parent: the decoded coarser grid of the same plane, upsampled
(its value and its four neighbours). The other half also sees its four spatial
neighbours, which are all anchors. A level's grids do not see each other, so each pass is
one batch over all of a level's planes (`FixedNet`, `_code_level`): a level decodes in two
vectorised steps (for a clip, whose planes share one stream, the anchors of all planes in
one step and the other halves plane by plane). In a clip (format version 4) every latent also sees the same grid of
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
CHUNK = 1 << 11  # rows of the network evaluated at once (its intermediates stay in cache)
BAND_CELLS = 1 << 18  # a grid of more than twice this is coded plane by plane in bands of rows
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
    """16 x the bilinear 2x upsampling of an integer grid (latents.up2), exactly, as int64;
    on the last two axes of (..., h, w)."""
    x = np.asarray(x, np.int64)
    for axis, size in ((x.ndim - 2, shape[0]), (x.ndim - 1, shape[1])):
        n = x.shape[axis]
        new = list(x.shape)
        new[axis] = 2 * n

        def at(a, start, stop=None, step=None, _axis=axis):
            index = [slice(None)] * a.ndim
            index[_axis] = slice(start, stop, step) if stop is not None or step is not None else start
            return a[tuple(index)]

        y = np.empty(new, np.int64)
        even, odd = at(y, 0, None, 2), at(y, 1, None, 2)
        np.multiply(x, 3, out=even)
        odd[...] = even
        at(even, 1, n)[...] += at(x, 0, n - 1)
        at(even, 0)[...] += at(x, 0)
        at(odd, 0, n - 1)[...] += at(x, 1, n)
        at(odd, n - 1)[...] += at(x, n - 1)
        x = at(y, 0, size)
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


class FixedNet:
    """The fixed-point network of `predict` with its power-of-two scales folded into the
    float64 weights and biases, evaluated for a whole checkerboard pass of several grids at
    once, in cache-sized chunks of rows. The same integers as `predict`: every term of
    every sum is a multiple of 2^-12 below 2^41 in magnitude, so every partial sum is
    exact in float64 whatever the order (`predict` sums integers below 2^53; here they are
    scaled by 2^-8 or 2^-12, with the +1/2 of the rounding folded into the bias). Inputs
    are the latent integers themselves (not times 2^ACT_BITS) and 16 x the upsampled
    parent; the columns that are zero in a pass (an anchor's spatial neighbours, a first
    frame's temporal context) are left out, and the flags become part of the bias. The
    first two layers' biases ride in the products: the inputs end in a column of ones and
    the first layer has one more output, which is always 1 (weight 1 on that column).

    `limit` bounds the latents' magnitude (every value the contexts read): from it follow
    bounds of the activations and of the mean, and a clip (to MAX_ACT, or of the mean to
    16 x MAX_LATENT) that these bounds show cannot change anything is skipped."""

    def __init__(self, q: dict[str, np.ndarray], limit: int = MAX_LATENT):
        f = as_float(q)
        w1 = f["c_w1"]
        self.limit = int(limit)
        self.temporal = w1.shape[1] > CTX_INPUTS
        self.hidden = h = w1.shape[0]
        self.w1 = w1
        self.b1 = f["c_b1"] + 0.5
        w2 = np.zeros((h + 1, h))
        w2[:h] = f["c_w2"].T * 2.0 ** -WEIGHT_BITS
        w2[h] = f["c_b2"] + 0.5
        self.w2 = w2
        self.w3 = np.ascontiguousarray(f["c_w3"].T) * 2.0 ** -(WEIGHT_BITS + 4)
        self.b3 = (f["c_b3"] + f["c_grid"]) / 16 + 0.5  # (grids, 2), in 1/16 (+ the rounding's 1/2)
        self._first: dict[tuple[bool, bool, bool], tuple[np.ndarray, bool, bool, bool]] = {}

    def first(self, anchor: bool, parent: bool, prev: bool) -> tuple[np.ndarray, bool, bool, bool]:
        """The first layer's (inputs + 1, hidden + 1) weights for one kind of pass (the last
        input row: the bias; the last output: the constant 1 that carries the second layer's
        bias), and whether each hidden layer's clip to MAX_ACT and the mean's clip can matter."""
        key = (anchor, parent, prev)
        if key not in self._first:
            w1, h, cols, top = self.w1, self.hidden, [], []
            bias = self.b1.copy()
            if not anchor:
                cols.append(w1[:, 0:4])
                top += [self.limit] * 4
            if parent:
                cols.append(w1[:, 4:9] / 16)  # the input is 16 x the upsampled parent, not 256 x
                top += [16 * self.limit] * 5
            if anchor:
                bias += w1[:, CTX_INPUTS - 1]
            if prev:
                cols.append(w1[:, CTX_INPUTS:CTX_INPUTS + 5])
                top += [self.limit] * 5
                bias += w1[:, CTX_INPUTS + TEMPORAL_INPUTS - 1]
            k = sum(c.shape[1] for c in cols)
            w = np.zeros((k + 1, h + 1))
            if cols:
                w[:k, :h] = np.concatenate(cols, axis=1).T
            w[k, :h] = bias
            w[k, h] = 1.0
            bound1 = np.abs(w[:k, :h]).T @ np.array(top, np.float64) + np.abs(bias)  # h1 <= bound1
            bound2 = np.abs(self.w2[:h]).T @ np.minimum(bound1, MAX_ACT) + np.abs(self.w2[h])
            bound3 = np.abs(self.w3[:, 0]) @ np.minimum(bound2, MAX_ACT) + np.abs(self.b3[:, 0]).max(initial=0) + 1
            self._first[key] = (w, bool(bound1.max(initial=0) >= MAX_ACT), bool(bound2.max(initial=0) >= MAX_ACT),
                                bool(bound3 >= 16 * MAX_LATENT))
        return self._first[key]

    def predict(self, shape: tuple[int, int], anchor: bool, sel: tuple[int, ...], grids: tuple[int, ...],
                ctx: Contexts, centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Means and scales of one checkerboard pass over the planes `sel` of a level, in
        that order (raster order within each), from the level's Contexts; grids[p] is plane
        p's grid index (for its output bias). `centre`: a part of one plane's pass instead
        (_batch_index's indices of those cells)."""
        if centre is None:
            centre = _batch_index(shape, anchor, sel)
        n = centre.size
        offsets = ctx.offsets(anchor)
        w1, clip1, clip2, clip3 = self.first(anchor, ctx.parent, ctx.prev)
        k = w1.shape[0] - 1
        rows = min(CHUNK, n)
        index = np.empty((rows, k + 1), np.intp)
        index[:, k] = ctx.one  # the column of ones
        x = np.empty((rows, k + 1))
        h1, h2 = np.empty((rows, self.hidden + 1)), np.empty((rows, self.hidden))
        raw = np.empty((n, 2))
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            m = hi - lo
            xc, a, b = x[:m], h1[:m], h2[:m]
            np.add(centre[lo:hi, None], offsets, out=index[:m, :k])
            ctx.flat.take(index[:m], out=xc, mode="clip")  # the indices are in range: no check, no buffer
            np.matmul(xc, w1, out=a)
            _layer(a, clip1)
            np.matmul(a, self.w2, out=b)
            _layer(b, clip2)
            np.matmul(b, self.w3, out=raw[lo:hi])
        means, scales = np.empty(n), np.empty(n)
        per = n // max(1, len(sel))
        for j, p in enumerate(sel):
            o = raw[j * per:(j + 1) * per]
            o += self.b3[grids[p]]
            np.floor(o, out=o)
            mean = means[j * per:(j + 1) * per]
            if clip3:
                np.clip(o[:, 0], -16 * MAX_LATENT, 16 * MAX_LATENT, out=mean)
                mean *= 1 / 16
            else:  # the bounds keep the mean inside the clip
                np.multiply(o[:, 0], 1 / 16, out=mean)
            index = o[:, 1].astype(np.intp)  # integers: exact
            index -= LOG_SCALE_MIN
            SCALES.take(index, out=scales[j * per:(j + 1) * per], mode="clip")  # the clip of the log scale
        return means, scales


class Contexts:
    """A level's inputs in one flat float64 buffer (integers, exact), so that a pass gathers all its inputs
    at once: its grids so far (cur), 16 x their upsampled parents (par) and the previous
    frame's grids (prv), each (planes, h + 2, w + 2) and zero-padded by one, then a 1.0
    (the column that carries the biases). `parent` and `prev` say which the passes read
    (and which of par and prv exist)."""

    def __init__(self, planes: int, shape: tuple[int, int], parent: bool, prev: bool):
        hp, wp = shape[0] + 2, shape[1] + 2
        block = planes * hp * wp
        blocks = 1 + parent + prev
        self.flat = np.zeros(blocks * block + 1)
        self.flat[-1] = 1.0
        self.one = blocks * block
        views = [self.flat[i * block:(i + 1) * block].reshape(planes, hp, wp) for i in range(blocks)]
        self.cur = views[0]
        self.par = views[1] if parent else None
        self.prv = views[-1] if prev else None
        self.parent, self.prev = parent, prev
        # offsets from _batch_index's (centre - (w + 3)): centre, N, S, W, E
        around = np.array([wp + 1, 1, 2 * wp + 1, wp, wp + 2], np.intp)
        self._offsets = {}
        for anchor in (True, False):
            parts = ([] if anchor else [around[1:]]) + ([around + block] if parent else []) \
                + ([around + (blocks - 1) * block] if prev else [])
            self._offsets[anchor] = np.concatenate(parts) if parts else np.zeros(0, np.intp)

    def offsets(self, anchor: bool) -> np.ndarray:
        return self._offsets[anchor]


def _layer(a: np.ndarray, clip: bool) -> None:
    """A hidden layer's rounding and activation, in place: floor(a) clipped to [0, MAX_ACT]
    (the upper clip only where it can matter)."""
    np.floor(a, out=a)
    np.maximum(a, 0, out=a)
    if clip:
        np.minimum(a, MAX_ACT, out=a)


def _raster(shape: tuple[int, int], anchor: bool, stride: int, offset: int) -> np.ndarray:
    """row * stride + col + offset for the cells of a checkerboard pass, in raster order
    (the order of `positions`), built a pair of rows at a time."""
    h, w = shape
    first = 0 if anchor else 1  # the first column of the pass on even rows (odd rows: the other)
    ce, co = np.arange(first, w, 2), np.arange(1 - first, w, 2)
    even, odd = np.arange(0, h, 2) * stride + offset, np.arange(1, h, 2) * stride + offset
    pairs = np.empty((odd.size, ce.size + co.size), np.intp)
    pairs[:, :ce.size] = even[:odd.size, None] + ce
    pairs[:, ce.size:] = odd[:, None] + co
    out = pairs.reshape(-1)
    if even.size > odd.size:
        out = np.concatenate([out, even[-1] + ce])
    return out


@functools.lru_cache(maxsize=64)
def _pass_index(shape: tuple[int, int], anchor: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of a checkerboard pass's positions, in raster order: into the (h, w) grid
    and into the grid zero-padded by one (read-only, cached)."""
    out = _raster(shape, anchor, shape[1], 0), _raster(shape, anchor, shape[1] + 2, shape[1] + 3)
    for a in out:
        a.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _batch_index(shape: tuple[int, int], anchor: bool, sel: tuple[int, ...]) -> np.ndarray:
    """_pass_index's padded indices for the planes `sel` of a (planes, h + 2, w + 2) stack,
    less w + 3 (so that a neighbour's index is this plus an offset >= 0: Contexts.offsets)."""
    padded = _pass_index(shape, anchor)[1] - (shape[1] + 3)
    size = (shape[0] + 2) * (shape[1] + 2)
    out = np.concatenate([padded + p * size for p in sel])
    out.flags.writeable = False
    return out


def _levels(grids: list[tuple[int, int, tuple[int, int]]]) -> list[list[int]]:
    """The grid indices in coding order, in runs of one level (and one shape)."""
    runs: list[list[int]] = []
    for k, (level, _, shape) in enumerate(grids):
        if runs and grids[runs[-1][0]][0] == level and grids[runs[-1][0]][2] == shape:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _code_level(net: FixedNet, ks: list[int], shape: tuple[int, int], parents: list[np.ndarray | None],
                prevs: list[np.ndarray] | None, coders: list, values: np.ndarray | None,
                one_stream: bool) -> np.ndarray:
    """The grids ks of one level (planes, h, w) int64 through their coders: coders[p] is
    plane p's (None: a constant grid, already in `values` or skipped), called as
    coder(n, mean, scale) -> values when decoding (values is None; a constant plane then
    comes back as zeros for the caller to fill), or coder(values, mean, scale) when
    encoding. Anchors of every plane are predicted in one batch; the other half in one batch
    after all anchors when each plane has its own stream, else plane by plane (one stream:
    a plane's anchors, then its other half, then the next plane)."""
    decode = values is None
    nplanes = len(ks)
    out = np.zeros((nplanes,) + shape, np.int64) if decode else values
    if any(p is not None for p in parents) and not all(p is not None for p in parents):
        raise ValueError("a level's grids all have a parent or none")
    ctx = Contexts(nplanes, shape, bool(parents) and parents[0] is not None, prevs is not None)
    cur = ctx.cur
    if not decode:
        cur[:, 1:-1, 1:-1] = values
    if ctx.parent:
        ctx.par[:, 1:-1, 1:-1] = up2_int(np.stack(parents), shape)
    if prevs is not None:
        ctx.prv[:, 1:-1, 1:-1] = np.stack(prevs)
    active = tuple(p for p in range(nplanes) if coders[p] is not None)
    if not active:
        return out
    flat_out, cur_flat = out.reshape(nplanes, -1), cur.reshape(nplanes, -1)

    def run(p: int, anchor: bool, mean: np.ndarray, scale: np.ndarray) -> None:
        flat, padded = _pass_index(shape, anchor)
        if decode:  # into the padded float grid; the int grid is taken from it at the end
            cur_flat[p, padded] = coders[p](flat.size, mean, scale)
        else:
            coders[p](flat_out[p, flat], mean, scale)

    if shape[0] * shape[1] > 2 * BAND_CELLS:  # large grids: plane by plane, in bands of rows
        _code_bands(net, ks, shape, ctx, active, coders, flat_out if not decode else None)
        if decode:
            out[...] = cur[:, 1:-1, 1:-1]
        return out
    n_anchor = _pass_index(shape, True)[0].size
    n_other = _pass_index(shape, False)[0].size
    mean, scale = net.predict(shape, True, active, ks, ctx)
    if one_stream:
        for j, p in enumerate(active):
            run(p, True, mean[j * n_anchor:(j + 1) * n_anchor], scale[j * n_anchor:(j + 1) * n_anchor])
            m2, s2 = net.predict(shape, False, (p,), ks, ctx)
            run(p, False, m2, s2)
    else:
        for j, p in enumerate(active):
            run(p, True, mean[j * n_anchor:(j + 1) * n_anchor], scale[j * n_anchor:(j + 1) * n_anchor])
        mean, scale = net.predict(shape, False, active, ks, ctx)
        for j, p in enumerate(active):
            run(p, False, mean[j * n_other:(j + 1) * n_other], scale[j * n_other:(j + 1) * n_other])
    if decode:
        out[...] = cur[:, 1:-1, 1:-1]  # integers in float64: exact (constant planes stay 0 here)
    return out


def _code_bands(net: FixedNet, ks: list[int], shape: tuple[int, int], ctx: Contexts, active: tuple[int, ...],
                coders: list, values: np.ndarray | None) -> None:
    """_code_level for large grids, in bounded memory: each plane's anchors, then its other
    half, in bands of an even number of rows (so the checkerboard's parity is the grid's),
    each band predicted and then coded (a coder codes a pass in several calls as in one).
    The order of the symbols is _code_level's for one stream, and each plane's own for
    several. values: (planes, h * w) when encoding, None when decoding."""
    h, w = shape
    wp = w + 2
    size = (h + 2) * wp
    rows = max(2, (BAND_CELLS // w) & ~1)
    cur_flat = ctx.cur.reshape(ctx.cur.shape[0], -1)
    for p in active:
        for anchor in (True, False):
            for r0 in range(0, h, rows):
                r1 = min(h, r0 + rows)
                centre = _raster((r1 - r0, w), anchor, wp, r0 * wp)  # r * (w + 2) + c: _batch_index's
                mean, scale = net.predict(shape, anchor, (p,), ks, ctx, centre + p * size)
                if values is None:
                    cur_flat[p, centre + (wp + 1)] = coders[p](centre.size, mean, scale)
                else:
                    coders[p](values[p, _raster((r1 - r0, w), anchor, w, r0 * w)], mean, scale)


def encode_grids(latents: list[np.ndarray], grids: list[tuple[int, int, tuple[int, int]]],
                 q: dict[str, np.ndarray]) -> list[CodedStream]:
    """latents: one int grid per entry of `grids` ((level, plane, shape), coarsest first)."""
    net = FixedNet(q, max((int(np.abs(z).max()) for z in latents if np.size(z)), default=0))
    coded: list[CodedStream | None] = [None] * len(grids)
    done: dict[tuple[int, int], np.ndarray] = {}
    for ks in _levels(grids):
        level, shape = grids[ks[0]][0], grids[ks[0]][2]
        zs = [np.asarray(latents[k], np.int64) for k in ks]
        coders, encoders = [], []
        for k, z in zip(ks, zs):
            if z.size and np.abs(z).max() >= MAX_LATENT:
                raise AsmrError("latent values too large to code")
            lo, hi = (int(z.min()), int(z.max())) if z.size else (0, 0)
            if lo == hi:
                coded[k] = CodedStream(lo, hi, np.zeros(0, np.uint32))
                coders.append(None)
                encoders.append(None)
                continue
            enc = constriction.stream.queue.RangeEncoder()
            model = constriction.stream.model.QuantizedLaplace(lo, hi)

            def coder(values, mean, scale, _enc=enc, _model=model):
                _enc.encode(values.astype(np.int32), _model, mean, scale)

            coders.append(coder)
            encoders.append((enc, lo, hi))
        parents = [done.get((level + 1, grids[k][1])) for k in ks]
        _code_level(net, ks, shape, parents, None, coders, np.stack(zs), one_stream=False)
        for k, z, e in zip(ks, zs, encoders):
            done[(level, grids[k][1])] = z
            if e is not None:
                coded[k] = CodedStream(e[1], e[2], e[0].get_compressed())
    return coded  # type: ignore[return-value]


def decode_grids(coded: list[CodedStream], grids: list[tuple[int, int, tuple[int, int]]],
                 q: dict[str, np.ndarray]) -> list[np.ndarray]:
    net = FixedNet(q, max((max(abs(c.lo), abs(c.hi)) for c in coded), default=0))
    out: list[np.ndarray] = [None] * len(grids)  # type: ignore[list-item]
    done: dict[tuple[int, int], np.ndarray] = {}
    for ks in _levels(grids):
        level, shape = grids[ks[0]][0], grids[ks[0]][2]
        coders = []
        for k in ks:
            c = coded[k]
            if c.lo == c.hi:
                coders.append(None)
                continue
            dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(c.words, np.uint32))
            model = constriction.stream.model.QuantizedLaplace(c.lo, c.hi)

            def coder(n, mean, scale, _dec=dec, _model=model):
                try:
                    return _dec.decode(_model, mean, scale)
                except Exception as exc:  # constriction raises plain exceptions on bad data
                    raise AsmrError(f"corrupt file: latent decoding failed ({exc})") from None

            coders.append(coder)
        parents = [done.get((level + 1, grids[k][1])) for k in ks]
        z = _code_level(net, ks, shape, parents, None, coders, None, one_stream=False)
        for p, k in enumerate(ks):
            if coders[p] is None:
                z[p] = coded[k].lo
            done[(level, grids[k][1])] = z[p]
            out[k] = z[p]
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
    net = FixedNet(q, max(abs(lo), abs(hi)))

    def coder(values, mean, scale):
        enc.encode(values.astype(np.int32), model, mean, scale)

    prev = None
    for ints in frames:
        ints = [np.asarray(z, np.int64) for z in ints]
        done: dict[tuple[int, int], np.ndarray] = {}
        for ks in _levels(grids):
            level, shape = grids[ks[0]][0], grids[ks[0]][2]
            parents = [done.get((level + 1, grids[k][1])) for k in ks]
            _code_level(net, ks, shape, parents, None if prev is None else [prev[k] for k in ks],
                        [coder] * len(ks), np.stack([ints[k] for k in ks]), one_stream=True)
            for k in ks:
                done[(level, grids[k][1])] = ints[k]
        prev = ints
    return CodedStream(lo, hi, enc.get_compressed())


class StreamDecoder:
    """Decodes a group's stream one frame at a time (the previous frame is the context)."""

    def __init__(self, coded: CodedStream, grids: list[tuple[int, int, tuple[int, int]]], q: dict[str, np.ndarray]):
        self.coded, self.grids, self.q = coded, grids, as_float(q)
        self.net = FixedNet(q, max(abs(coded.lo), abs(coded.hi)))
        self.model = None
        if coded.lo != coded.hi:
            self.dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(coded.words, np.uint32))
            self.model = constriction.stream.model.QuantizedLaplace(coded.lo, coded.hi)

    def _coder(self, n, mean, scale):
        try:
            return self.dec.decode(self.model, mean, scale)
        except Exception as exc:  # constriction raises plain exceptions on bad data
            raise AsmrError(f"corrupt file: latent decoding failed ({exc})") from None

    def next_frame(self, prev: list[np.ndarray] | None) -> list[np.ndarray]:
        grids = self.grids
        out: list[np.ndarray] = [None] * len(grids)  # type: ignore[list-item]
        done: dict[tuple[int, int], np.ndarray] = {}
        for ks in _levels(grids):
            level, shape = grids[ks[0]][0], grids[ks[0]][2]
            if self.model is None:
                z = np.full((len(ks),) + shape, self.coded.lo, np.int64)
            else:
                parents = [done.get((level + 1, grids[k][1])) for k in ks]
                z = _code_level(self.net, ks, shape, parents, None if prev is None else [prev[k] for k in ks],
                                [self._coder] * len(ks), None, one_stream=True)
            for p, k in enumerate(ks):
                done[(level, grids[k][1])] = z[p]
                out[k] = z[p]
        return out


# -- collections: one image's grids in one stream, under a symbol range the caller shares ------

def encode_member(latents: list[np.ndarray], grids: list[tuple[int, int, tuple[int, int]]],
                  q: dict[str, np.ndarray], lo: int, hi: int) -> np.ndarray:
    """One image's int grids (`grids` order) coded in one range-coder stream with the
    symbol range [lo, hi] given (a collection shares it between its members): the words.
    Each grid's anchors, then its other half, grid after grid (a clip's frame order)."""
    if lo == hi:
        return np.zeros(0, np.uint32)
    enc = constriction.stream.queue.RangeEncoder()
    model = constriction.stream.model.QuantizedLaplace(lo, hi)
    net = FixedNet(q, max(abs(lo), abs(hi)))

    def coder(values, mean, scale):
        enc.encode(values.astype(np.int32), model, mean, scale)

    ints = [np.asarray(z, np.int64) for z in latents]
    if any(z.size and (z.min() < lo or z.max() > hi) for z in ints):
        raise AsmrError("latent values outside the collection's symbol range")
    done: dict[tuple[int, int], np.ndarray] = {}
    for ks in _levels(grids):
        level, shape = grids[ks[0]][0], grids[ks[0]][2]
        parents = [done.get((level + 1, grids[k][1])) for k in ks]
        _code_level(net, ks, shape, parents, None, [coder] * len(ks), np.stack([ints[k] for k in ks]),
                    one_stream=True)
        for k in ks:
            done[(level, grids[k][1])] = ints[k]
    return np.asarray(enc.get_compressed(), np.uint32)


def decode_member(words: np.ndarray, grids: list[tuple[int, int, tuple[int, int]]], q: dict[str, np.ndarray],
                  lo: int, hi: int) -> list[np.ndarray]:
    """encode_member's inverse: the int grids in `grids` order."""
    if lo == hi:
        return [np.full(shape, lo, np.int64) for _, _, shape in grids]
    dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(words, np.uint32))
    model = constriction.stream.model.QuantizedLaplace(lo, hi)
    net = FixedNet(q, max(abs(lo), abs(hi)))

    def coder(n, mean, scale):
        try:
            return dec.decode(model, mean, scale)
        except Exception as exc:  # constriction raises plain exceptions on bad data
            raise AsmrError(f"corrupt file: latent decoding failed ({exc})") from None

    out: list[np.ndarray] = [None] * len(grids)  # type: ignore[list-item]
    done: dict[tuple[int, int], np.ndarray] = {}
    for ks in _levels(grids):
        level, shape = grids[ks[0]][0], grids[ks[0]][2]
        parents = [done.get((level + 1, grids[k][1])) for k in ks]
        z = _code_level(net, ks, shape, parents, None, [coder] * len(ks), None, one_stream=True)
        for p, k in enumerate(ks):
            done[(level, grids[k][1])] = z[p]
            out[k] = z[p]
    return out
