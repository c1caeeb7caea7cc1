"""Entropy coding of integer tensors with constriction's range coder.

Each tensor gets its own model, fitted by the encoder and rebuilt exactly by the decoder
from a few transmitted numbers: a quantised Laplace or Gaussian (whichever codes the
tensor shorter) with a half-integer mean and a float16 scale, on the tensor's integer range [lo, hi].

A tensor may instead be coded as residuals against its previous element along one axis
(`predict` = axis + 1): a video's latent grids change little from one frame to the next,
so their frame-to-frame differences code in about a third of the bits (docs/video.md).
The encoder tries the axes it is offered and keeps whichever codes shortest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import constriction
import numpy as np

from ..core.errors import AsmrError

CONSTANT, LAPLACE, GAUSSIAN = 0, 1, 2
MAX_SYMBOL_RANGE = 1 << 20  # a model over more symbols than this is refused


@dataclass(frozen=True)
class CodedTensor:
    model: int
    lo: int
    hi: int
    mean: float  # float32 values, stored as such
    scale: float
    words: np.ndarray  # uint32 range-coder output
    predict: int = 0  # 0: the values; a + 1: residuals against the previous element along axis a


def _model(kind: int, lo: int, hi: int, mean: float, scale: float):
    if kind == LAPLACE:
        return constriction.stream.model.QuantizedLaplace(lo, hi, mean, scale)
    if kind == GAUSSIAN:
        return constriction.stream.model.QuantizedGaussian(lo, hi, mean, scale)
    raise AsmrError(f"unknown entropy model {kind}")


def encode(values: np.ndarray, axes: tuple[int, ...] = ()) -> CodedTensor:
    """Code an integer tensor as is or, for each axis in `axes`, as residuals along it;
    the shortest wins."""
    q = np.asarray(values, dtype=np.int32)
    best = _encode_flat(q.ravel(), 0)
    for axis in axes:
        if q.shape[axis] > 1:
            first = np.zeros_like(np.take(q, [0], axis=axis))
            coded = _encode_flat(np.diff(q, axis=axis, prepend=first).ravel(), axis + 1)
            if coded.words.size < best.words.size:
                best = coded
    return best


def _encode_flat(q: np.ndarray, predict: int) -> CodedTensor:
    q = np.ascontiguousarray(q, dtype=np.int32)
    if q.size == 0:
        return CodedTensor(CONSTANT, 0, 0, 0.0, 0.0, np.zeros(0, np.uint32), predict)
    lo, hi = int(q.min()), int(q.max())
    if lo == hi:
        return CodedTensor(CONSTANT, lo, hi, 0.0, 0.0, np.zeros(0, np.uint32), predict)
    if hi - lo > MAX_SYMBOL_RANGE:
        raise AsmrError("quantised values span too wide a range to code")
    mean = float(np.rint(2 * np.median(q)) / 2)  # stored as 2*mean, an integer
    dev = np.abs(q - mean)
    candidates = [  # scales are stored as float16
        (LAPLACE, _half(dev.mean())),
        (GAUSSIAN, _half(np.sqrt((dev**2).mean()))),
    ]
    best = None
    for kind, scale in candidates:
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(q, _model(kind, lo, hi, mean, scale))
        words = enc.get_compressed()
        if best is None or words.size < best.words.size:
            best = CodedTensor(kind, lo, hi, mean, scale, words, predict)
    assert best is not None
    return best


def _half(x: float) -> float:
    return float(np.float16(min(max(float(x), 0.05), 60000.0)))


def decode(coded: CodedTensor, shape: tuple[int, ...]) -> np.ndarray:
    """Decode a tensor of this shape; raises AsmrError on an invalid model description."""
    flat = _decode_flat(coded, math.prod(shape)).reshape(shape)
    if not coded.predict:
        return flat
    axis = coded.predict - 1
    if not 0 <= axis < len(shape):
        raise AsmrError(f"corrupt file: prediction along axis {axis} of a {len(shape)}-axis tensor")
    out = np.cumsum(flat, axis=axis, dtype=np.int64)
    if out.size and (out.min() < -(1 << 31) or out.max() >= 1 << 31):
        raise AsmrError("corrupt file: predicted values outside 32 bits")
    return out.astype(np.int32)


def _decode_flat(coded: CodedTensor, count: int) -> np.ndarray:
    if not -(1 << 31) <= coded.lo <= coded.hi < 1 << 31:  # constriction raises OverflowError
        raise AsmrError("corrupt file: symbol range outside 32 bits")
    if coded.model == CONSTANT:
        return np.full(count, coded.lo, dtype=np.int32)
    if not (coded.lo < coded.hi and coded.hi - coded.lo <= MAX_SYMBOL_RANGE):
        raise AsmrError("corrupt file: bad symbol range")
    if not (np.isfinite(coded.mean) and np.isfinite(coded.scale) and 0 < coded.scale < 1e5
            and abs(coded.mean) < 1e9):
        raise AsmrError("corrupt file: bad entropy model parameters")
    model = _model(coded.model, coded.lo, coded.hi, coded.mean, coded.scale)  # AsmrError if unknown
    try:
        dec = constriction.stream.queue.RangeDecoder(np.ascontiguousarray(coded.words, np.uint32))
        out = dec.decode(model, count)
    except Exception as exc:  # constriction raises plain exceptions on bad data
        raise AsmrError(f"corrupt file: entropy decoding failed ({exc})") from None
    return np.asarray(out, dtype=np.int32)
