"""The command line's size strings: `--size WIDTHxHEIGHT` and `--region X,Y,W,H`."""

from __future__ import annotations

import re

from .errors import AsmrError


def parse_size(text: str) -> tuple[int, int]:
    """`1536x1024` -> (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m:
        raise AsmrError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1536x1024")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise AsmrError(f"--size {text}: width and height must be at least 1")
    return w, h


def parse_region(text: str) -> tuple[int, int, int, int]:
    """`X,Y,W,H` -> (x, y, width, height), in output pixels."""
    parts = (text or "").split(",")
    try:
        x, y, w, h = (int(v) for v in parts)
    except ValueError:
        raise AsmrError(f"--region {text!r}: expected X,Y,WIDTH,HEIGHT, e.g. 0,0,256,256") from None
    if x < 0 or y < 0:
        raise AsmrError(f"--region {text}: X and Y must be 0 or more")
    if w < 1 or h < 1:
        raise AsmrError(f"--region {text}: width and height must be at least 1")
    return x, y, w, h
