"""The payload's records, shared by every format: a coded parameter tensor (its step
sizes and entropy-coded integers) and a coded latent stream (a range coder's words).
docs/format.md gives each field's width."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..core.quantize import step_codes, step_values
from . import entropy
from .records import Reader, check, unzigzag, varint, zigzag

MAX_PARAMS = 1 << 26


@dataclass
class Tensor:
    """One parameter tensor as stored: float32 step sizes and the coded integers."""

    steps: np.ndarray
    coded: entropy.CodedTensor


@dataclass(frozen=True)
class CodedStream:
    """A range coder's output for latents whose integers lie in [lo, hi] (no words when lo == hi)."""

    lo: int
    hi: int
    words: np.ndarray  # uint32


def prediction_axes(name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axes a tensor may be predicted along: the grid axes of a latent grid (not its
    channel axis). Every other tensor is coded as is."""
    return tuple(range(len(shape) - 1)) if name.startswith("latent") else ()


def code_tensor(name: str, q: np.ndarray, steps: np.ndarray) -> Tensor:
    """A quantised tensor as the file stores it (the encoder's one way to code one)."""
    return Tensor(steps, entropy.encode(q, prediction_axes(name, q.shape)))


def pack_tensor(t: Tensor) -> bytes:
    """step codes (u8 per group) | model u8 (low 4 bits: the model, high 4: prediction)
    | lo zigzag-varint | hi-lo varint | [2*mean zigzag-varint | scale f16]
    | word count varint | words u32."""
    c = t.coded
    out = step_codes(t.steps).tobytes() + struct.pack("<B", c.model | c.predict << 4)
    out += varint(zigzag(c.lo)) + varint(c.hi - c.lo)
    if c.model != entropy.CONSTANT:
        out += varint(zigzag(int(round(2 * c.mean)))) + struct.pack("<e", c.scale)
    words = np.ascontiguousarray(c.words, dtype="<u4")
    return out + varint(words.size) + words.tobytes()


def parse_tensor(r: Reader, name: str, shape: tuple[int, ...], groups: int, predict_ok: bool) -> Tensor:
    """A tensor record; `predict_ok`: whether the format allows prediction (version 2)."""
    steps = step_values(r.array("u1", groups, MAX_PARAMS))
    byte, = r.unpack("B")
    model, predict = byte & 0x0F, byte >> 4
    check(model in (entropy.CONSTANT, entropy.LAPLACE, entropy.GAUSSIAN), f"{name}: entropy model {model}")
    check(predict == 0 or (predict_ok and predict - 1 in prediction_axes(name, shape)),
          f"{name}: prediction {predict}")
    lo = unzigzag(r.varint())
    span = r.varint()
    check(abs(lo) < 2**31 and span <= entropy.MAX_SYMBOL_RANGE, f"{name}: symbol range")
    mean, scale = 0.0, 0.0
    if model != entropy.CONSTANT:
        mean = unzigzag(r.varint()) / 2
        scale, = r.unpack("e")
    n_words = r.varint()
    # a range coder needs at most a few words per symbol: anything more is corrupt
    check(n_words <= 4 * math.prod(shape) + 4, f"{name}: {n_words} words")
    words = r.array("<u4", n_words, MAX_PARAMS)
    return Tensor(steps, entropy.CodedTensor(model, lo, lo + span, float(mean), float(scale),
                                             words.astype(np.uint32), predict))


def pack_stream(g: CodedStream) -> bytes:
    """lo zigzag-varint | hi-lo varint | word count varint | words u32."""
    words = np.ascontiguousarray(g.words, dtype="<u4")
    return varint(zigzag(g.lo)) + varint(g.hi - g.lo) + varint(words.size) + words.tobytes()


def parse_stream(r: Reader, symbols: int, what: str) -> CodedStream:
    """A coded latent stream of at most `symbols` symbols."""
    lo = unzigzag(r.varint())
    span = r.varint()
    check(abs(lo) < 1 << 14 and abs(lo + span) < 1 << 14, f"{what}: range")
    n_words = r.varint()
    check(n_words <= 4 * symbols + 4 and (span > 0 or n_words == 0), f"{what}: words")
    return CodedStream(lo, lo + span, r.array("<u4", n_words, MAX_PARAMS).astype(np.uint32))
