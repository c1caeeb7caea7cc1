"""The .asmr reader on hostile input: a bounded slice of benchmarks/fuzz_parser.py, property
tests with the CRCs recomputed (so the checks behind them run), and the bugs the fuzzer
found. Every input must end in an AsmrError or a decoded raster, quickly."""

import dataclasses
import importlib.util
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asmr_cli import api as codec
from asmr_cli.api import formats
from asmr_cli.container import entropy
from asmr_cli.container import file as cfile
from asmr_cli.coordinate import codec as coordinate_codec
from asmr_cli.coordinate import format as fmt2
from asmr_cli.core.errors import AsmrError

ROOT = Path(__file__).resolve().parents[2]


def _load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_parser", ROOT / "benchmarks" / "fuzz_parser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fp = _load_fuzzer()
SEEDS = fp.seeds()


def _outcome(data: bytes) -> str:
    t0 = time.perf_counter()
    out = fp.decode_case(data)
    assert time.perf_counter() - t0 < 5, out
    assert out == "ok" or out.startswith("AsmrError"), out
    return out


def test_seeds_decode():
    assert all(fp.decode_case(d) == "ok" for d in SEEDS)
    for d in SEEDS:  # split/join is the identity on a valid file
        assert fp.join(*fp.split(d), d[4]) == d


@pytest.mark.slow
def test_bounded_fuzz_run():
    """A few seconds of the benchmark's mutants: no crash, no hang, and the CRC-fixed ones
    get past the checksums (some decode, some fail in the payload checks)."""
    outcomes, kinds, _slowest, failures = fp.run(1500, seed=1234, budget_s=4.0)
    bad = [(k, o) for k, o, _ in failures if not o.startswith("SLOW")]
    assert not bad, bad[:5]
    assert sum(outcomes.values()) >= 50  # ~1000 on an idle core
    assert outcomes["ok"] > 0
    behind_crc = [o for o in outcomes if "checksum" not in o and o.startswith("AsmrError: corrupt file")]
    assert behind_crc, outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), data=st.binary(min_size=0, max_size=64),
       pos=st.integers(0, 10_000), payload=st.booleans())
def test_overwritten_bytes_with_fixed_crc(seed, data, pos, payload):
    header, body = fp.split(SEEDS[seed])
    if payload:
        p = pos % (len(body) + 1)
        body = body[:p] + data + body[p + len(data):]
    else:
        p = pos % (len(header) + 1)
        header = header[:p] + data + header[p + len(data):]
    _outcome(fp.join(header, body))


FIELDS = {
    "kind": st.integers(0, 255), "channels": st.integers(0, 255), "bit_depth": st.integers(0, 255),
    "hidden": st.integers(0, 65535), "latent_dim": st.integers(0, 255), "w0": st.floats(width=32),
    "fps_num": st.integers(0, 2**32 - 1), "fps_den": st.integers(0, 2**32 - 1),
    "sizes": st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    "bases": st.tuples(*[st.tuples(*[st.integers(0, 255)] * 3)] * 2),
}


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_header_fields_at_any_value(field, data):
    header, body = fp.split(SEEDS[0])
    h = dataclasses.replace(fmt2.parse_header(header), **{field: data.draw(FIELDS[field])})
    _outcome(fp.join(fmt2.pack_header(h), body))


def test_huge_declared_image_is_refused_before_decoding():
    """Found by fuzzing: a 60000x60000 header over a tiny payload made decode_bytes try to
    render the whole image. It is refused from the header, in well under a second."""
    h = fmt2.Header(cfile.KIND_IMAGE, (60000, 60000), 3, 8, ((40, 40, 40), (40, 40, 40)), 4, 0, 30.0)
    data = fp._file(h, np.random.default_rng(0), constant=True)
    assert len(data) < 1000
    t0 = time.perf_counter()
    for decode in (codec.decode_bytes, codec.render_image):
        with pytest.raises(AsmrError, match="over the 64000000-pixel limit"):
            decode(data)
    assert time.perf_counter() - t0 < 0.5


def test_over_padded_or_over_wide_headers_are_refused():
    """Found by fuzzing: bases padding a 100x4096 image 64-fold rendered 26M samples."""
    h = fmt2.Header(cfile.KIND_IMAGE, (100, 4096), 3, 8, ((5, 5, 64), (16, 16, 64)), 4, 0, 30.0)
    with pytest.raises(AsmrError, match="too much work"):
        coordinate_codec.check_decodable(h)
    h = dataclasses.replace(h, sizes=(4096, 4096), bases=((1, 64, 64), (1, 64, 64)), hidden=1024)
    coordinate_codec.check_decodable(dataclasses.replace(h, hidden=64))  # last level 64x64: fine
    h = dataclasses.replace(h, bases=((64, 64, 1), (64, 64, 1)))  # no last level: 16M cells x 1024
    with pytest.raises(AsmrError, match="too much work|too costly"):
        coordinate_codec.check_decodable(h)


@pytest.mark.parametrize("kind,sizes,bases", [
    (cfile.KIND_IMAGE, (21,), ((1, 3, 7),)),
    (cfile.KIND_IMAGE, (3, 13, 21), ((1, 3), (2, 7), (3, 7))),
    (cfile.KIND_VIDEO, (13, 21), ((2, 7), (3, 7))),
])
def test_axis_count_must_match_the_kind(kind, sizes, bases):
    """Found by fuzzing: a 1-axis image crashed `stats` with IndexError, a 2-axis video
    crashed decode_video with ValueError."""
    header = fmt2.pack_header(fmt2.Header(kind, sizes, 3, 8, bases, 4, 0, 30.0))
    with pytest.raises(AsmrError, match="axes for"):
        formats.loads(fp.join(header, b""))


def test_length_fields_at_extremes():
    data = bytearray(SEEDS[0])
    hlen, = struct.unpack_from("<I", data, 5)
    for pos in (5, 13 + hlen):
        for v in (0, 0x7FFFFFFF, 0xFFFFFFFF):
            bad = bytearray(data)
            bad[pos:pos + 4] = struct.pack("<I", v)
            with pytest.raises(AsmrError):
                formats.loads(bytes(bad))


def test_random_words_under_valid_crc():
    """Noise in place of the range coder's words: an AsmrError or garbage pixels, nothing else."""
    rng = np.random.default_rng(7)
    header, body = fp.split(SEEDS[0])
    for _ in range(50):
        b = bytearray(body)
        start = int(rng.integers(0, len(b) - 8))
        b[start:start + 64] = rng.integers(0, 256, len(b[start:start + 64]), dtype=np.uint8).tobytes()
        _outcome(fp.join(header, bytes(b)))


@pytest.mark.parametrize("model", [entropy.CONSTANT, entropy.LAPLACE, entropy.GAUSSIAN])
@pytest.mark.parametrize("lo,hi", [(2**31 - 10, 2**31 + 100), (-2**31 - 5, -2**31 + 5), (2**31 + 5, 2**31 + 5)])
def test_symbol_range_past_32_bits(model, lo, hi):
    """Found by review: the container allows lo up to 2^31 - 1 and a span of 2^20, so hi could
    pass int32 and constriction's model constructor raised OverflowError, not AsmrError."""
    coded = entropy.CodedTensor(model, lo, hi, 0.0, 1.0, np.array([1, 2], np.uint32))
    with pytest.raises(AsmrError, match="outside 32 bits"):
        entropy.decode(coded, (5,))


@pytest.mark.slow
def test_mutants_through_the_cli_exit_0_or_1_with_one_line(tmp_path):
    """What a user sees: `asmr decode` and `asmr stats` on mutants exit 0, or 1 with one line."""
    from typer.testing import CliRunner

    from asmr_cli.cli.app import app

    runner = CliRunner()
    rng = np.random.default_rng(99)
    for i in range(40):
        _kind, data = fp.mutate(SEEDS[i % len(SEEDS)], rng, SEEDS)
        src = tmp_path / f"m{i}.asmr"
        src.write_bytes(data)
        decode = ["decode", str(src), "-o", str(tmp_path / "o.png"), "-f", "--max-pixels", str(fp.FUZZ_MAX_PIXELS)]
        for args in (decode, ["stats", str(src), "--json"]):
            r = runner.invoke(app, args)
            assert r.exit_code in (0, 1), (args, r.output)
            if r.exit_code == 1:
                lines = [x for x in r.output.splitlines() if x.strip()]
                assert len(lines) == 1 and lines[0].startswith("asmr: error: "), r.output
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []
