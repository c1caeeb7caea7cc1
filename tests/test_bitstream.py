import numpy as np
import pytest

from asmr_cli import bitstream, entropy
from asmr_cli.errors import AsmrError
from asmr_cli.quantize import snap_steps, step_groups


def _file(seed=0):
    rng = np.random.default_rng(seed)
    header = bitstream.Header(bitstream.KIND_IMAGE, (13, 21), 3, 8, ((1, 2, 7), (1, 3, 7)), 8, 2, 30.0)
    tensors = []
    ints = []
    for name, shape in header.architecture.param_shapes():
        q = np.rint(rng.laplace(0, 4, size=shape)).astype(np.int32)
        ints.append(q)
        steps = snap_steps(rng.uniform(0.001, 0.1, step_groups(name, shape)))
        tensors.append(bitstream.Tensor(steps, entropy.encode(q)))
    return bitstream.AsmrFile(header, tensors), ints


def test_round_trip_is_bit_exact():
    f, ints = _file()
    data = bitstream.dumps(f)
    g = bitstream.loads(data)
    assert g.header == f.header
    for (_name, shape), t, q, orig in zip(f.header.architecture.param_shapes(), g.tensors, ints, f.tensors):
        np.testing.assert_array_equal(entropy.decode(t.coded, q.size).reshape(shape), q)
        np.testing.assert_array_equal(t.steps, orig.steps)


def test_every_truncation_is_an_asmr_error():
    data = bitstream.dumps(_file()[0])
    for n in range(0, len(data), max(1, len(data) // 200)):
        with pytest.raises(AsmrError):
            bitstream.loads(data[:n])


def test_bit_flips_are_caught_by_crc():
    data = bytearray(bitstream.dumps(_file()[0]))
    rng = np.random.default_rng(1)
    for pos in rng.integers(9, len(data) - 1, 100):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(AsmrError):
            bitstream.loads(bytes(bad))


def test_unknown_version():
    data = bytearray(bitstream.dumps(_file()[0]))
    data[4] = 99
    with pytest.raises(AsmrError, match="version 99"):
        bitstream.loads(bytes(data))


def test_entropy_round_trip_and_constant():
    rng = np.random.default_rng(3)
    for q in [np.rint(rng.normal(0, 30, 5000)).astype(np.int32), np.full(50, 7, np.int32),
              np.array([-100000, 100000], np.int32), np.zeros(0, np.int32)]:
        c = entropy.encode(q)
        np.testing.assert_array_equal(entropy.decode(c, q.size), q)
