"""Format version 9: intra frames and hierarchical B frames."""

from pathlib import Path

import numpy as np
import pytest

from asmr_cli.api import EncodeOptions, decode_video, encode_clip, formats, render_clip
from asmr_cli.clip import codec7, encoder7, family, format9, motion
from asmr_cli.clip import encoder as clip_encoder
from asmr_cli.container import file as cfile
from asmr_cli.core.errors import AsmrError
from asmr_cli.io.clips import FrameRange, frame_psnr

from ..conftest import check_corruptions
from .test_motion import panning, writing

FAST = dict(preset="fast", iters=30, device="cpu")
DEFAULT = family.WRITE_MOTION, family.MOTION_VERSION

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def format_9():
    """Format 9, written when clip/family.WRITE_MOTION is set (MOTION_VERSION 9, its default)."""
    with writing(format9.VERSION):
        yield


def test_format_4_by_default_and_9_when_motion_is_asked_for():
    assert DEFAULT == (False, format9.VERSION)  # read when the tests are collected, before any fixture


def _header(frames=10, group=10, period=4, **kw):
    base = dict(block=8, filt=motion.BILINEAR)
    base.update(kw)
    return format9.BHeader((frames, 16, 16), 3, 8, 3, 4, 4, cfile.KIND_VIDEO, 25, 1, group, period, **base)


def test_anchors_and_coding_order():
    h = _header()
    assert h.segment_spans() == [(0, 4), (4, 8), (8, 9), (9, 10)]  # the group's last frame is an anchor
    plan = h.plan(0, 10)
    assert plan == [(0, ()), (2, (0, 4)), (1, (0, 2)), (3, (2, 4)), (4, ()), (6, (4, 8)), (5, (4, 6)),
                    (7, (6, 8)), (8, ()), (9, ())]
    assert h.slots(0, 10) == 12
    long = _header(frames=33, group=33, period=32).plan(0, 33)
    done = set()
    for t, refs in long:  # every reference is decoded first, or is the next segment's anchor
        assert all(r in done or not dict(long)[r] for r in refs)
        done.add(t)
    assert sorted(done) == list(range(33))


def test_frame_weights_follow_the_layers(monkeypatch):
    monkeypatch.setattr(encoder7, "INTRA_WEIGHT", 8.0)
    monkeypatch.setattr(encoder7, "LAYER_WEIGHT", 2.0)
    # coding order 0, 4 (anchors) ... : 0, 2, 1, 3, 4 for a group of 5 with period 4
    assert encoder7.frame_weights(_header(frames=5, group=5), 0, 5) == [8.0, 2.0, 1.0, 1.0, 8.0]


def test_two_references_are_averaged_and_an_unused_one_skipped():
    a = np.full((4, 4, 3), 10, np.uint8)
    b = np.full((4, 4, 3), 13, np.uint8)
    none, unused = (motion.NONE, None, None), (motion.UNUSED, None, None)
    np.testing.assert_array_equal(motion.predict_from([a, b], [none, none], 8, motion.BILINEAR), np.full_like(a, 12))
    np.testing.assert_array_equal(motion.predict_from([a, b], [unused, none], 8, motion.BILINEAR), b)
    np.testing.assert_array_equal(motion.predict_from([a, b], [none, unused], 8, motion.BILINEAR), a)


def test_a_b_frame_without_a_reference_is_refused():
    from asmr_cli.clip.format7 import GroupMotion, motion_tensors, read_motion
    from asmr_cli.container.records import Reader
    from asmr_cli.container.tensors import pack_tensor

    h = _header(frames=5, group=5)  # B frames 2, 1, 3: six slots
    modes = [3, 0, 0, 3, 3, 3]
    data = b"".join(pack_tensor(t) for t in motion_tensors(GroupMotion(np.array(modes), np.zeros((0, 2), np.int32),
                                                                                 np.zeros((0, 2, 2, 2), np.int32))))
    with pytest.raises(AsmrError, match="no reference"):
        read_motion(Reader(data, "payload"), h, 0, 5)
    modes[5] = 0
    data = b"".join(pack_tensor(t) for t in motion_tensors(GroupMotion(np.array(modes), np.zeros((0, 2), np.int32),
                                                                                 np.zeros((0, 2, 2, 2), np.int32))))
    np.testing.assert_array_equal(read_motion(Reader(data, "payload"), h, 0, 5).modes, modes)


@pytest.mark.parametrize("kw", [dict(period=0), dict(period=11), dict(block=5), dict(filt=2)])
def test_header_caps(kw):
    with pytest.raises(AsmrError):
        formats.loads(_dumps(_header(**kw)))


def _dumps(h):
    from asmr_cli.clip.format7 import dumps

    return dumps(h, [], [], [])


@pytest.fixture(scope="module")
def encoded():
    encoder7.INTRA_PERIOD, before = 4, encoder7.INTRA_PERIOD
    try:
        clip = panning(7, 16, 24, seed=4)
        yield clip, encode_clip(clip, EncodeOptions(bpp=3.0, **FAST))
    finally:
        encoder7.INTRA_PERIOD = before


def test_round_trip_ranges_and_random_access(encoded):
    clip, res = encoded
    f = formats.loads(res.data)
    assert f.version == format9.VERSION == res.stats["format_version"]
    assert f.header.segment_spans() == [(0, 4), (4, 6), (6, 7)]
    whole = decode_video(res.data).frames
    assert res.stats["psnr"] == pytest.approx(float(np.mean(frame_psnr(clip.frames, whole))), abs=1e-2)
    assert res.stats["psnr"] >= 24.0
    assert sum(res.stats["motion_modes"].values()) == 2 * 4  # B frames 2, 1, 3 and 5: two slots each
    for rng in [FrameRange(0, 1), FrameRange(1, 3), FrameRange(3, 6), FrameRange(5, None)]:
        np.testing.assert_array_equal(decode_video(res.data, rng).frames, whole[rng.start:rng.end])
    mc = codec7.unpack(f)
    for t in (5, 2, 3, 0, 6, 1):
        np.testing.assert_array_equal(mc.frame(t), whole[t])
    big = render_clip(res.data, size=(48, 32), frames=FrameRange(1, 3))
    assert big.frames.shape == (2, 32, 48, 3)


def test_corrupt_files_raise_asmr_error(encoded):
    _, res = encoded
    check_corruptions(decode_video, res.data, seed=9, count=40)


def test_bpp_within_five_percent_and_size_never_over(monkeypatch):
    monkeypatch.setattr(clip_encoder, "GROUP_FRAMES", 5)  # two groups
    clip = panning(8, 24, 32, seed=5)
    n = 8 * 24 * 32
    res = encode_clip(clip, EncodeOptions(bpp=1.5, **FAST))
    assert formats.loads(res.data).header.group_spans() == [(0, 4), (4, 8)]
    assert abs(len(res.data) * 8 / n - 1.5) <= 0.05 * 1.5
    res = encode_clip(clip, EncodeOptions(size=1500, **FAST))
    assert len(res.data) <= 1500


def test_a_range_synthesises_only_the_frames_it_predicts_from(encoded, monkeypatch):
    """Frame 3 of segment [0, 4) (coding order 0, 2, 1, 3; the next anchor 4): frame 1 is
    entropy-decoded (the stream is sequential) but not synthesised."""
    _, res = encoded
    whole = decode_video(res.data).frames
    calls = []
    real = codec7.render_native
    monkeypatch.setattr(codec7, "render_native", lambda img, threads=1: calls.append(1) or real(img, threads))
    mc = codec7.unpack(formats.loads(res.data))
    np.testing.assert_array_equal(np.stack(list(mc.frames(3, 4))), whole[3:4])
    assert len(calls) == 4  # anchors 4 and 0, then 2 and 3
    np.testing.assert_array_equal(mc.frame(1), whole[1])  # skipped before: the segment is decoded again


def test_cli_motion_writes_format_9(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from asmr_cli.cli.app import app

    monkeypatch.setattr(family, "WRITE_MOTION", False)  # the default: only --motion asks for format 9
    src = Path(__file__).resolve().parents[2] / "samples" / "carphone_8f.mp4"
    runner = CliRunner()
    for extra, version in (([], 4), (["--motion"], 9)):
        out = tmp_path / f"c{version}.asmr"
        r = runner.invoke(app, ["encode", str(src), "-o", str(out), "--frames", "0:4", "--preset", "fast",
                                "--iters", "10", "--bpp", "1.0", "--quiet", *extra])
        assert r.exit_code == 0, r.output
        assert formats.loads(out.read_bytes()).version == version
