"""The ASMR forward pass in its activation-sharing form, written once for two array
libraries: torch (training, with autograd) and numpy (decoding, no torch import).

Layer i runs on the C_i coarse cells only; its output is repeated over the next level's
digits and the level's modulation table is tiled across it. The last level is never
materialised as (N x hidden): with a the coarse pre-activation and m the last
modulation, head(sin(a + m)) = head(sin a * cos m) + head(cos a * sin m), two matrix
products (method note, section 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .architecture import Architecture

Array = Any  # numpy.ndarray or torch.Tensor


@dataclass(frozen=True)
class Ops:
    """The few operations that differ in name between numpy and torch."""

    sin: Callable[[Array], Array]
    cos: Callable[[Array], Array]
    permute: Callable[[Array, list[int]], Array]
    cat: Callable[[list[Array], int], Array]
    # sin of a temporary no one else holds: numpy overwrites it (no new buffer to fault
    # in); torch keeps it, as autograd needs the input
    sin_temp: Callable[[Array], Array]
    # [sin x, cos x] along the last axis
    sincos: Callable[[Array], Array]


def _np_sincos(x: np.ndarray) -> np.ndarray:
    out = np.empty((*x.shape[:-1], 2 * x.shape[-1]), np.result_type(x, np.float32))
    np.sin(x, out=out[..., : x.shape[-1]])
    np.cos(x, out=out[..., x.shape[-1]:])
    return out


NUMPY = Ops(sin=np.sin, cos=np.cos, permute=lambda x, axes: np.transpose(x, axes),
            cat=lambda xs, axis: np.concatenate(xs, axis=axis),
            sin_temp=lambda x: np.sin(x, out=x), sincos=_np_sincos)


def upsample_add(coarse: Array, table: Array) -> Array:
    """Repeat each coarse cell over the next level's digits and add the level's table.
    coarse: (*grid, hid); table: (*bases, hid) -> (*(grid*bases), hid), raster order."""
    d = coarse.ndim - 1
    hid = coarse.shape[-1]
    c_shape, t_shape, out = [], [], []
    for g, b in zip(coarse.shape[:d], table.shape[:d]):
        c_shape += [g, 1]
        t_shape += [1, b]
        out.append(g * b)
    return (coarse.reshape(*c_shape, hid) + table.reshape(*t_shape, hid)).reshape(*out, hid)


def last_level(ops: Ops, a: Array, m: Array, head_w: Array, head_b: Array) -> Array:
    """head(sin(a_p + m_q)) for every coarse cell p and last-level digit q, in blocked
    layout (P, channels, Q), without the (N x hidden) tensor:
    out[p, c, q] = sum_h sin a[p,h] W[c,h] cos m[q,h] + cos a[p,h] W[c,h] sin m[q,h],
    one (P, 2 hid) x (2 hid, channels * Q) product. a: (P, hid), m: (Q, hid)."""
    ch, q = head_w.shape[0], m.shape[0]
    kc = (head_w[:, None, :] * ops.cos(m)[None]).reshape(ch * q, -1)  # (ch*Q, hid)
    ks = (head_w[:, None, :] * ops.sin(m)[None]).reshape(ch * q, -1)
    out = ops.sincos(a) @ ops.cat([kc, ks], 1).T
    return out.reshape(-1, ch, q) + head_b.reshape(1, ch, 1)


def unblock(ops: Ops, blocked: Array, grid: tuple[int, ...], bases: tuple[int, ...]) -> Array:
    """(P, ch, Q) blocked layout -> (ch, *padded) raster; P = prod(grid), Q = prod(bases)."""
    d = len(grid)
    ch = blocked.shape[1]
    x = blocked.reshape(*grid, ch, *bases)
    perm = [d] + [v for i in range(d) for v in (i, d + 1 + i)]  # (ch, g0, b0, g1, b1, ..)
    return ops.permute(x, perm).reshape(ch, *[g * b for g, b in zip(grid, bases)])


def block(ops: Ops, raster: Array, grid: tuple[int, ...], bases: tuple[int, ...]) -> Array:
    """Inverse of `unblock`: (ch, *padded) -> (P, ch, Q)."""
    d = len(grid)
    ch = raster.shape[0]
    x = raster.reshape(ch, *[v for g, b in zip(grid, bases) for v in (g, b)])
    perm = [1 + 2 * i for i in range(d)] + [0] + [2 + 2 * i for i in range(d)]
    return ops.permute(x, perm).reshape(-1, ch, math.prod(bases))


def linear(x: Array, w: Array, b: Array | None = None) -> Array:
    y = x @ w.T
    return y if b is None else y + b


def cells_per(arch: Architecture, level: int) -> tuple[int, ...]:
    """How many finest coarse cells (level L-2) one level-`level` cell spans, per axis."""
    last = arch.levels - 2
    return tuple(math.prod(b[level + 1:last + 1]) for b in arch.decomposition.bases)


def coarse_cells(ops: Ops, arch: Architecture, p: dict[str, Array], coords: list[Array],
                 lo: tuple[int, ...], hi: tuple[int, ...]) -> Array:
    """The network's one level loop: w0 times the last hidden layer's pre-activation
    (before the last modulation) for the finest coarse cells [lo, hi) per axis,
    (*(hi - lo), hidden), evaluating only their ancestors. coords: each level's digits."""

    def span(level):
        per = cells_per(arch, level)
        return [(a // s, (b - 1) // s + 1) for a, b, s in zip(lo, hi, per)]

    rng = span(0)
    h = coords[0][tuple(slice(a, b) for a, b in rng)]
    for i in range(arch.levels - 1):
        latent = p[f"latent{i}"][tuple(slice(a, b) for a, b in rng)] if arch.latent_dim else None
        pre, mod = layer_inputs(arch, p, i, h, coords[i + 1], latent)
        if i == arch.levels - 2:
            return pre
        child = ops.sin_temp(upsample_add(pre, mod))
        nxt = span(i + 1)
        base = arch.decomposition.level_bases(i + 1)
        h = child[tuple(slice(a - r[0] * b_, c - r[0] * b_) for (a, c), r, b_ in zip(nxt, rng, base))]
        rng = nxt
    raise AssertionError("unreachable: an architecture has at least 2 levels")


def coarse(ops: Ops, arch: Architecture, p: dict[str, Array], coords: list[Array]) -> tuple[Array, Array]:
    """Everything before the last level on the whole grid: the last sine layer's
    pre-activation on its coarse cells, a (P, hid), and the last modulation table,
    m (Q, hid), both scaled by w0."""
    hid, last = arch.hidden, arch.levels - 1
    grid = arch.decomposition.grid(last - 1)
    a = coarse_cells(ops, arch, p, coords, (0,) * len(grid), grid)
    return a.reshape(-1, hid), modulation(arch, p, last - 1, coords[last]).reshape(-1, hid)


def layer_inputs(arch: Architecture, p: dict[str, Array], i: int, h: Array, next_coords: Array,
                 latent: Array | None = None) -> tuple[Array, Array]:
    """Layer i's pre-activation on its cells (latent grid included) and the level-(i+1)
    modulation table, both already scaled by w0: w0 is folded into the small weight
    tensors, never multiplied into a grid-sized array. `latent` overrides the layer's
    latent grid (a crop of it, for tiles)."""
    w0 = arch.w0
    pre = linear(h, w0 * p[f"layer{i}.weight"], w0 * p[f"layer{i}.bias"])
    if arch.latent_dim:
        grid = p[f"latent{i}"] if latent is None else latent
        pre = pre + linear(grid, w0 * p[f"proj{i}.weight"])
    return pre, modulation(arch, p, i, next_coords)


def modulation(arch: Architecture, p: dict[str, Array], i: int, coords: Array) -> Array:
    """Level (i+1)'s modulation table for layer i, scaled by w0: (*bases, hid)."""
    return linear(coords, arch.w0 * p[f"mod{i}.weight"])


def render_blocked(ops: Ops, arch: Architecture, p: dict[str, Array], coords: list[Array]) -> Array:
    """Evaluate the network on its whole padded grid in blocked layout (P, channels, Q)."""
    a, m = coarse(ops, arch, p, coords)
    return last_level(ops, a, m, p["head.weight"], p["head.bias"])


def render_padded(ops: Ops, arch: Architecture, p: dict[str, Array], coords: list[Array]) -> Array:
    """Evaluate the network on its whole padded grid: (channels, *padded sizes)."""
    dec = arch.decomposition
    return unblock(ops, render_blocked(ops, arch, p, coords), dec.grid(dec.levels - 2),
                     dec.level_bases(dec.levels - 1))


def render_numpy(arch: Architecture, params: dict[str, np.ndarray]) -> np.ndarray:
    """The decoder's path: float32 numpy, no torch."""
    dec = arch.decomposition
    coords = [dec.level_coords(i) for i in range(dec.levels)]
    p = {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}
    return render_padded(NUMPY, arch, p, coords).astype(np.float32, copy=False)
