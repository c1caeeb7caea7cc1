import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asmr_cli.coordinate.decomposition import Decomposition, auto_bases, digits, normalised_digits, parse_bases
from asmr_cli.core.errors import AsmrError


@given(st.lists(st.integers(1, 9), min_size=1, max_size=7), st.data())
def test_digits_rebuild_the_index(bases, data):
    n = math.prod(bases)
    x = data.draw(st.integers(0, n - 1))
    d = digits(x, bases)
    assert all(0 <= d[i] < bases[i] for i in range(len(bases)))
    rebuilt = 0
    for b, v in zip(bases, d):
        rebuilt = rebuilt * b + int(v)
    assert rebuilt == x


@pytest.mark.parametrize("size", [(1, 1), (3, 1000), (641, 427), (768, 512), (512, 768),
                                  (4000, 3000), (16384, 16384), (1, 7), (2, 2), (120, 144, 176)])
def test_auto_bases_cover_with_little_padding(size):
    dec = auto_bases(size)
    assert len({len(b) for b in dec.bases}) == 1
    for n, p in zip(size, dec.padded):
        assert p >= n
        assert p <= max(n * 1.12, n + 8), (n, p, dec.bases)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000))
def test_auto_bases_any_size(h, w):
    dec = auto_bases((h, w))
    assert dec.padded[0] >= h and dec.padded[1] >= w
    assert dec.padded[0] <= max(h * 1.12, h + 8) and dec.padded[1] <= max(w * 1.12, w + 8)


def test_paper_kodak_bases_parse():
    dec = parse_bases("4,4,4,8x4,4,6,8", (512, 768))
    assert dec.bases == ((4, 4, 4, 8), (4, 4, 6, 8))
    assert dec.grid(1) == (16, 16) and dec.cells(2) == 64 * 96


@pytest.mark.parametrize("text", ["4,4x4,4,4", "a,bx1", "2,2x2,2", "0,8x4,4"])
def test_bad_bases_rejected(text):
    with pytest.raises(AsmrError):
        parse_bases(text, (512, 768))


def test_unequal_levels_rejected():
    with pytest.raises(AsmrError):
        Decomposition((4, 4), ((2, 2), (4,)))


def test_normalised_digits():
    assert normalised_digits(1).tolist() == [0.0]
    np.testing.assert_allclose(normalised_digits(3), [-1, 0, 1])
