"""The container's primitives: a bounds-checked reader, varints and zigzag integers.
Parsing never trusts a length: each one is checked against the bytes that remain and
against the caller's cap before anything is allocated."""

from __future__ import annotations

import struct

import numpy as np

from ..core.errors import AsmrError


class Reader:
    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise AsmrError(f"corrupt or truncated file: {self.what} ends early")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def varint(self) -> int:
        v, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            v |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise AsmrError(f"corrupt file: over-long number in {self.what}")

    def array(self, dtype: str, count: int, cap: int) -> np.ndarray:
        if count > cap:
            raise AsmrError(f"corrupt file: {self.what} declares {count} values (cap {cap})")
        size = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * size), dtype=dtype).copy()

    def done(self) -> bool:
        return self.pos == len(self.data)


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise AsmrError(f"corrupt file: {msg}")


def varint(v: int) -> bytes:
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(v: int) -> int:
    return 2 * v if v >= 0 else -2 * v - 1


def unzigzag(u: int) -> int:
    return u // 2 if u % 2 == 0 else -(u + 1) // 2
