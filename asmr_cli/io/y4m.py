"""y4m: 8-bit YUV (BT.601), read and written with numpy alone, so that
`asmr decode clip.asmr -o clip.y4m` needs neither torch nor FFmpeg. Written as 4:4:4
full range (`C444 XCOLORRANGE=FULL`), so RGB survives within rounding."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..core.errors import AsmrError
from .clips import DEFAULT_FPS, Clip, Collector, FrameRange

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> (..., 3) uint8 full-range BT.601 YCbCr."""
    x = rgb.astype(np.float32)
    y = _KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]
    cb = (x[..., 2] - y) / (2 * (1 - _KB)) + 128.0
    cr = (x[..., 0] - y) / (2 * (1 - _KR)) + 128.0
    return np.clip(np.rint(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, full: bool) -> np.ndarray:
    """Planes of equal shape (uint8) -> (..., 3) uint8 RGB."""
    y, cb, cr = (p.astype(np.float32) for p in (y, cb, cr))
    if full:
        cb, cr = cb - 128.0, cr - 128.0
    else:
        y = (y - 16.0) * (255.0 / 219.0)
        cb = (cb - 128.0) * (255.0 / 224.0)
        cr = (cr - 128.0) * (255.0 / 224.0)
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _y4m_header(line: bytes, path: Path) -> dict:
    fields = line.decode("ascii", "replace").split()
    if not fields or fields[0] != "YUV4MPEG2":
        raise AsmrError(f"{path}: not a y4m file")
    out = {"C": "420jpeg", "F": None, "X": []}
    for f in fields[1:]:
        key, val = f[0], f[1:]
        if key == "X":
            out["X"].append(val)
        else:
            out[key] = val
    return out


def read_y4m(path: Path, rng: FrameRange, max_samples: int, max_pixels: int | None = None) -> Clip:
    col = Collector(path, rng, max_samples, max_pixels)
    try:
        with open(path, "rb") as fh:
            h = _y4m_header(fh.readline(200), path)
            try:
                w, hgt = int(h["W"]), int(h["H"])
            except (KeyError, ValueError):
                raise AsmrError(f"{path}: y4m header lacks a frame size") from None
            if w < 1 or hgt < 1 or w * hgt > max_samples:
                raise AsmrError(f"{path}: y4m frame size {w}x{hgt}")
            cs = h["C"].lower()
            if cs.startswith("420"):
                cw, ch = (w + 1) // 2, (hgt + 1) // 2
            elif cs.startswith("422"):
                cw, ch = (w + 1) // 2, hgt
            elif cs == "444":
                cw, ch = w, hgt
            elif cs == "mono":
                cw, ch = 0, 0
            else:
                raise AsmrError(f"{path}: y4m colour space C{h['C']} is not supported (8-bit 420/422/444/mono)")
            full = "COLORRANGE=FULL" in h["X"]
            fps = DEFAULT_FPS
            if h["F"]:
                num, _, den = h["F"].partition(":")
                if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
                    fps = Fraction(int(num), int(den))
            frame_bytes = w * hgt + 2 * cw * ch
            while not col.done:
                tag = fh.readline(200)
                if not tag:
                    break
                if not tag.startswith(b"FRAME"):
                    raise AsmrError(f"{path}: corrupt y4m (frame {col.index} has no FRAME tag)")
                if col.index < rng.start:
                    fh.seek(frame_bytes, os.SEEK_CUR)
                    col.index += 1
                    continue
                buf = fh.read(frame_bytes)
                if len(buf) < frame_bytes:
                    raise AsmrError(f"{path}: y4m ends inside frame {col.index}")
                a = np.frombuffer(buf, np.uint8)
                y = a[:w * hgt].reshape(hgt, w)
                if cw == 0:
                    u = v = np.full_like(y, 128)
                else:
                    u = a[w * hgt:w * hgt + cw * ch].reshape(ch, cw)
                    v = a[w * hgt + cw * ch:].reshape(ch, cw)
                    ry, rx = (2 if ch != hgt else 1), (2 if cw != w else 1)
                    u = np.repeat(np.repeat(u, ry, 0), rx, 1)[:hgt, :w]
                    v = np.repeat(np.repeat(v, ry, 0), rx, 1)[:hgt, :w]
                col.add(yuv_to_rgb(y, u, v, full))
    except OSError as exc:
        raise AsmrError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return col.clip(fps)


def write_y4m(fh, clip: Clip) -> None:
    fps = Fraction(clip.fps).limit_denominator(1 << 30)
    fh.write(f"YUV4MPEG2 W{clip.width} H{clip.height} F{fps.numerator}:{fps.denominator} "
             "Ip A1:1 C444 XCOLORRANGE=FULL\n".encode("ascii"))
    for frame in clip.frames:
        planes = np.moveaxis(rgb_to_yuv444(frame), -1, 0)
        fh.write(b"FRAME\n")
        fh.write(np.ascontiguousarray(planes).tobytes())


# -- writing -------------------------------------------------------------------------------
