import dataclasses

import numpy as np
import pytest

from asmr_cli.api import formats
from asmr_cli.container import entropy
from asmr_cli.container import file as cfile
from asmr_cli.container import tensors as ctensors
from asmr_cli.coordinate import format as fmt2
from asmr_cli.core.errors import AsmrError
from asmr_cli.core.quantize import snap_steps, step_groups


def _dumps(f):
    return fmt2.dumps(f.header, f.tensors)


def _file(seed=0):
    rng = np.random.default_rng(seed)
    header = fmt2.Header(cfile.KIND_IMAGE, (13, 21), 3, 8, ((1, 2, 7), (1, 3, 7)), 8, 2, 30.0)
    tensors = []
    ints = []
    for name, shape in header.architecture.param_shapes():
        q = np.rint(rng.laplace(0, 4, size=shape)).astype(np.int32)
        ints.append(q)
        steps = snap_steps(rng.uniform(0.001, 0.1, step_groups(name, shape)))
        tensors.append(ctensors.Tensor(steps, entropy.encode(q)))
    return cfile.AsmrFile(header, tensors), ints


def test_round_trip_is_bit_exact():
    f, ints = _file()
    data = _dumps(f)
    g = formats.loads(data)
    assert g.header == f.header
    for (_name, shape), t, q, orig in zip(f.header.architecture.param_shapes(), g.tensors, ints, f.tensors):
        np.testing.assert_array_equal(entropy.decode(t.coded, shape), q)
        np.testing.assert_array_equal(t.steps, orig.steps)


def test_every_truncation_is_an_asmr_error():
    data = _dumps(_file()[0])
    for n in range(0, len(data), max(1, len(data) // 200)):
        with pytest.raises(AsmrError):
            formats.loads(data[:n])


def test_bit_flips_are_caught_by_crc():
    data = bytearray(_dumps(_file()[0]))
    rng = np.random.default_rng(1)
    for pos in rng.integers(9, len(data) - 1, 100):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises(AsmrError):
            formats.loads(bytes(bad))


def test_unknown_version():
    data = bytearray(_dumps(_file()[0]))
    data[4] = 99
    with pytest.raises(AsmrError, match="version 99"):
        formats.loads(bytes(data))


def test_entropy_round_trip_and_constant():
    rng = np.random.default_rng(3)
    for q in [np.rint(rng.normal(0, 30, 5000)).astype(np.int32), np.full(50, 7, np.int32),
              np.array([-100000, 100000], np.int32), np.zeros(0, np.int32)]:
        c = entropy.encode(q)
        np.testing.assert_array_equal(entropy.decode(c, q.shape), q)


def _slowly_changing(shape, seed=4):
    """A latent grid whose slices along axis 0 change little: residuals along it are small."""
    rng = np.random.default_rng(seed)
    base = np.rint(rng.laplace(0, 20, size=shape[1:]))
    return (base + np.rint(rng.laplace(0, 0.5, size=shape))).astype(np.int32)


def test_prediction_is_chosen_when_shorter_and_round_trips():
    q = _slowly_changing((12, 5, 6, 4))
    plain = entropy.encode(q)
    coded = entropy.encode(q, axes=(0, 1, 2))
    assert plain.predict == 0 and coded.predict == 1
    assert coded.words.size < 0.6 * plain.words.size
    np.testing.assert_array_equal(entropy.decode(coded, q.shape), q)
    noise = np.rint(np.random.default_rng(5).laplace(0, 3, size=(12, 5, 6, 4))).astype(np.int32)
    assert entropy.encode(noise, axes=(0, 1, 2)).predict == 0  # residuals of noise cost more


def test_predicted_latents_survive_the_file_and_are_checked():
    header = fmt2.Header(cfile.KIND_VIDEO, (12, 10, 12), 3, 8, ((1, 12), (2, 5), (2, 6)), 8, 4, 30.0)
    tensors, ints = [], {}
    for name, shape in header.architecture.param_shapes():
        q = _slowly_changing(shape) if name == "latent0" else np.zeros(shape, np.int32)
        ints[name] = q
        tensors.append(ctensors.code_tensor(name, q, np.ones(step_groups(name, shape), np.float32)))
    assert tensors[3].coded.predict == 0  # latent0 is (1, 2, 2, 4): nothing to predict from
    data = fmt2.dumps(header, tensors)
    f = formats.loads(data)
    for (name, shape), t in zip(header.architecture.param_shapes(), f.tensors):
        np.testing.assert_array_equal(entropy.decode(t.coded, shape), ints[name])
    # prediction is only allowed on a latent grid's grid axes
    assert ctensors.prediction_axes("latent1", (12, 5, 6, 4)) == (0, 1, 2)
    assert ctensors.prediction_axes("layer0.weight", (8, 3)) == ()


def test_version_1_files_are_read_but_cannot_predict():
    f, ints = _file()
    data = bytearray(_dumps(f))
    data[4] = 1
    g = formats.loads(bytes(data))
    for (_name, shape), t, q in zip(f.header.architecture.param_shapes(), g.tensors, ints):
        np.testing.assert_array_equal(entropy.decode(t.coded, shape), q)


def test_prediction_on_a_weight_matrix_is_refused():
    f, _ = _file()
    f.tensors[0] = ctensors.Tensor(f.tensors[0].steps, dataclasses.replace(f.tensors[0].coded, predict=1))
    with pytest.raises(AsmrError, match="prediction"):
        formats.loads(_dumps(f))


def test_predicted_values_outside_32_bits_are_corrupt():
    big = np.full((3, 2), (1 << 30) + 5, np.int32)
    coded = entropy.CodedTensor(entropy.CONSTANT, int(big[0, 0]), int(big[0, 0]), 0.0, 0.0,
                                np.zeros(0, np.uint32), predict=1)
    with pytest.raises(AsmrError, match="32 bits"):
        entropy.decode(coded, big.shape)
