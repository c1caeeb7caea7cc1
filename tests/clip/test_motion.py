"""Format version 7: intra frames and motion-compensated P frames."""

import contextlib
from fractions import Fraction

import numpy as np
import pytest

from asmr_cli.api import EncodeOptions, decode_video, encode_clip, formats, render_clip
from asmr_cli.clip import codec7, encoder7, estimate, format7, motion
from asmr_cli.clip import encoder as clip_encoder
from asmr_cli.container import file as cfile
from asmr_cli.core.errors import AsmrError
from asmr_cli.io.clips import Clip, FrameRange, frame_psnr

from ..conftest import check_corruptions

FAST = dict(preset="fast", iters=30, device="cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@contextlib.contextmanager
def writing(version: int):
    """The clip format the encoder writes inside (clip/family.WRITE_MOTION, MOTION_VERSION)."""
    from asmr_cli.clip import family

    before = family.WRITE_MOTION, family.MOTION_VERSION
    family.WRITE_MOTION = version != 4
    family.MOTION_VERSION = version if version != 4 else family.MOTION_VERSION
    try:
        yield
    finally:
        family.WRITE_MOTION, family.MOTION_VERSION = before


@pytest.fixture(scope="module", autouse=True)
def format_7():
    """The encoder writes format 7 only when asked."""
    with writing(format7.VERSION):
        yield


def texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.3 * np.sin(x / 3.0) * np.cos(y / 4.0), 0.4 + 0.2 * np.cos((x + y) / 5.0),
                     0.3 + 0.3 * y / max(1, h - 1)], -1)
    return np.clip(np.rint(base * 255 + rng.normal(0, 8, base.shape)), 0, 255).astype(np.uint8)


def panning(t=6, h=24, w=32, dy=1, dx=2, seed=0) -> Clip:
    """A camera pan: each frame the same large texture seen (dy, dx) pixels further on."""
    big = texture(h + t * abs(dy) + 2, w + t * abs(dx) + 2, seed)
    frames = [big[i * dy:i * dy + h, i * dx:i * dx + w] for i in range(t)]
    return Clip(np.stack(frames), Fraction(25))


def test_warp_integer_shift_is_the_shifted_frame_with_edges_clamped():
    ref = texture(12, 16)
    for filt in motion.FILTERS:
        out = motion.warp(ref, 4 * 2, 4 * -3, filt)
        rows = np.clip(np.arange(12) + 2, 0, 11)
        cols = np.clip(np.arange(16) - 3, 0, 15)
        np.testing.assert_array_equal(out, ref[rows][:, cols])


def test_warp_sub_pixel_is_between_neighbours_and_keeps_a_flat_frame():
    flat = np.full((8, 8, 3), 77, np.uint8)
    for filt in motion.FILTERS:
        np.testing.assert_array_equal(motion.warp(flat, 1, 3, filt), flat)
    ramp = np.tile(np.arange(0, 160, 10, dtype=np.uint8)[None, :, None], (4, 1, 1))
    half = motion.warp(ramp, 0, 2, motion.BILINEAR)
    np.testing.assert_array_equal(half[0, :-1, 0], ramp[0, :-1, 0] + 5)
    quarter = motion.warp(ramp, 0, 1, motion.CUBIC)
    assert np.all(np.abs(quarter[0, 1:-2, 0].astype(int) - (ramp[0, 1:-2, 0] + 2.5)) <= 1)


def test_block_field_warps_each_block_by_its_vector():
    ref = texture(16, 16)
    field = np.zeros((2, 2, 2), np.int32)
    field[1, 1] = (4, 4)
    out = motion.predict(ref, motion.FIELD, None, field, 8, motion.BILINEAR)
    np.testing.assert_array_equal(out[:8], ref[:8])
    np.testing.assert_array_equal(out[8:15, 8:15], ref[9:16, 9:16])


def test_one_vector_and_the_estimates_phase_gathers_are_the_general_warp():
    ref = texture(20, 28)
    rng = np.random.default_rng(3)
    ref1 = np.round(estimate.luma(ref)).clip(0, 255).astype(np.uint8)[..., None]
    for filt in motion.FILTERS:
        phases = estimate.Phases(ref, 9, filt)
        for dy, dx in ((0, 0), (5, -7), (-38, 39), (3, 2)):
            full = (np.full((20, 28), dy), np.full((20, 28), dx))
            np.testing.assert_array_equal(motion.warp(ref, dy, dx, filt), motion.warp(ref, *full, filt))
            np.testing.assert_array_equal(phases.warp(dy, dx), motion.warp(ref1, dy, dx, filt)[..., 0])
        dy, dx = rng.integers(-39, 40, (2, 20, 28))
        np.testing.assert_array_equal(phases.warp(dy, dx), motion.warp(ref1, dy, dx, filt)[..., 0])


def test_a_reestimate_reuses_the_search_and_keeps_the_first_estimate():
    clip = panning(3, 32, 48, dy=1, dx=2)
    plan = [(0, ()), (2, (0,)), (1, (0, 2))]
    first = estimate.estimate(clip.frames, plan, 8, motion.BILINEAR, mu=1.0)
    searched: dict = {}
    again = estimate.estimate(clip.frames, plan, 8, motion.BILINEAR, mu=1.0, searched=searched)
    assert sorted(searched) == [(1, 0), (1, 2), (2, 0)]
    for (ma, va, fa), (mb, vb, fb) in zip(first, again):
        assert ma == mb and np.array_equal(va, vb) and np.array_equal(fa, fb)
    dear = estimate.estimate(clip.frames, plan, 8, motion.BILINEAR, mu=1e6, searched=searched)
    assert all(m in (motion.NONE, motion.GLOBAL, motion.UNUSED) for m, _, _ in dear)


def test_intra_period_follows_the_rate():
    assert [encoder7.period_for(128, b) for b in (0.5, 0.1, 0.05, 0.025, 0.01)] == [32, 32, 64, 128, 128]
    assert encoder7.period_for(20, 0.1) == 20


def test_estimate_finds_a_pan(monkeypatch):
    monkeypatch.setattr(estimate, "CHAINED", False)  # against the source frames: the true pan
    clip = panning(3, 32, 48, dy=1, dx=2)
    est = estimate.estimate(clip.frames, [(0, ()), (1, (0,)), (2, (1,))], 8, motion.BILINEAR, mu=1.0)
    for mode, vec, field in est:
        assert mode in (motion.GLOBAL, motion.FIELD)
        v = vec if mode == motion.GLOBAL else np.median(field.reshape(-1, 2), axis=0)
        np.testing.assert_array_equal(v, [4, 8])


@pytest.fixture(scope="module")
def encoded():
    clip = panning()
    return clip, encode_clip(clip, EncodeOptions(bpp=2.0, **FAST))


def test_round_trip_is_format_7_and_beats_no_prediction(encoded):
    clip, res = encoded
    f = formats.loads(res.data)
    assert f.version == format7.VERSION == res.stats["format_version"] and f.header.kind == cfile.KIND_VIDEO
    out = decode_video(res.data)
    assert out.frames.shape == clip.frames.shape
    assert res.stats["psnr"] == pytest.approx(float(np.mean(frame_psnr(clip.frames, out.frames))), abs=1e-2)
    assert res.stats["psnr"] >= 24.0
    modes = res.stats["motion_modes"]
    assert sum(modes.values()) == 5 and modes["none"] < 5  # the pan is found


def test_frame_ranges_decode_only_their_segment(monkeypatch):
    monkeypatch.setattr(encoder7, "INTRA_PERIOD", 3)
    monkeypatch.setattr(clip_encoder, "GROUP_FRAMES", 5)
    clip = panning(7, 16, 24, seed=2)
    res = encode_clip(clip, EncodeOptions(bpp=3.0, **FAST))
    h = formats.loads(res.data).header
    assert h.group_spans() == [(0, 4), (4, 7)] and h.segment_spans() == [(0, 3), (3, 4), (4, 7)]
    whole = decode_video(res.data).frames
    for rng in [FrameRange(0, 1), FrameRange(2, 5), FrameRange(4, None), FrameRange(6, 9)]:
        np.testing.assert_array_equal(decode_video(res.data, rng).frames, whole[rng.start:rng.end])
    mc = codec7.unpack(formats.loads(res.data))
    np.testing.assert_array_equal(mc.frame(5), whole[5])
    assert mc._state[0] == 2 and mc._state[1] == 2  # frame 5 decoded from its segment's intra frame 4 (2 frames)


def test_any_size_and_region(encoded):
    _, res = encoded
    whole = decode_video(res.data).frames
    np.testing.assert_array_equal(render_clip(res.data).frames, whole)
    big = render_clip(res.data, size=(64, 48), frames=FrameRange(1, 3))
    assert big.frames.shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(render_clip(res.data, region=(4, 2, 10, 8)).frames, whole[:, 2:10, 4:14])


def test_bpp_within_five_percent_and_size_never_over():
    clip = panning(6, 32, 40, seed=3)
    n = 6 * 32 * 40
    res = encode_clip(clip, EncodeOptions(bpp=1.5, **FAST))
    assert abs(len(res.data) * 8 / n - 1.5) <= 0.05 * 1.5
    res = encode_clip(clip, EncodeOptions(size=1200, **FAST))
    assert len(res.data) <= 1200


def _header(**kw):
    base = dict(period=2, block=8, filt=motion.BILINEAR)
    base.update(kw)
    return format7.MotionHeader((4, 16, 16), 3, 8, 3, 4, 4, cfile.KIND_VIDEO, 25, 1, 4, **base)


@pytest.mark.parametrize("kw", [dict(period=0), dict(period=5), dict(block=5), dict(filt=2)])
def test_header_caps(kw):
    with pytest.raises(AsmrError):
        formats.loads(format7.dumps(_header(**kw), [], [], []))


@pytest.mark.parametrize("modes,vectors,match", [([3, 0], [], "motion mode"),
                                                 ([1, 0], [[motion.MAX_VECTOR + 1, 0]], "motion vector")])
def test_motion_values_are_checked(modes, vectors, match):
    from asmr_cli.container.records import Reader
    from asmr_cli.container.tensors import pack_tensor

    h = _header()
    bad = format7.GroupMotion(np.array(modes), np.array(vectors, np.int32).reshape(-1, 2),
                              np.zeros((0, 2, 2, 2), np.int32))
    data = b"".join(pack_tensor(t) for t in format7.motion_tensors(bad))
    with pytest.raises(AsmrError, match=match):
        format7.read_motion(Reader(data, "payload"), h, 0, 4)
    good = format7.GroupMotion(np.array([1, 2]), np.array([[4, -8]], np.int32), np.ones((1, 2, 2, 2), np.int32))
    data = b"".join(pack_tensor(t) for t in format7.motion_tensors(good))
    back = format7.read_motion(Reader(data, "payload"), h, 0, 4)
    np.testing.assert_array_equal(back.vectors, good.vectors)
    np.testing.assert_array_equal(back.fields, good.fields)


def test_corrupt_files_raise_asmr_error(encoded):
    _, res = encoded
    check_corruptions(decode_video, res.data, seed=7, count=40)


def test_decoding_is_the_same_on_one_and_two_synthesis_threads(encoded):
    _, res = encoded
    f = formats.loads(res.data)
    one = codec7.frames_uint8(codec7.unpack(f), 0, f.header.frames, 1)
    two = codec7.frames_uint8(codec7.unpack(f), 0, f.header.frames, 2)
    np.testing.assert_array_equal(one, two)


def test_p_frames_add_the_synthesis_to_the_warped_reference():
    synth = np.full((3, 2, 2), 0.1, np.float32)
    pred = np.full((2, 2, 3), 250, np.uint8)
    np.testing.assert_array_equal(codec7.compose(synth, pred), np.full((2, 2, 3), 255))  # 250 + 25.5, clipped
    np.testing.assert_array_equal(codec7.compose(synth, None), np.full((2, 2, 3), 26))  # rint(25.5): even


@pytest.mark.parametrize("forced,calls", [((0.5, 0.75, 0.9), 4), ((), 1)])
def test_the_prediction_is_refreshed_at_the_forced_shares_however_slow(monkeypatch, forced, calls):
    """A refresh that costs more than REFRESH_COST allows is still made at FORCED_REFRESH's
    shares of the steps (clip/fit.py), so the rounding phase trains against frames made
    from nearly final latents."""
    from asmr_cli.clip import fit

    monkeypatch.setattr(fit, "REFRESH_COST", 1e-12)  # after the first refresh, time never allows another
    monkeypatch.setattr(fit, "FORCED_REFRESH", forced)
    steps = []
    original = fit.fit_clip

    def spy(layout, part, cfg, progress=None, prediction=None, *rest):
        inner = prediction.refresh
        count = {"step": 0}

        def refresh(synthesis, latents):
            steps.append(count["step"])
            return inner(synthesis, latents)

        def report(step, total, psnr):
            count["step"] = step
            if progress:
                progress(step, total, psnr)

        prediction.refresh = refresh
        return original(layout, part, cfg, report, prediction, *rest)

    monkeypatch.setattr(fit, "fit_clip", spy)  # encoder7 imports it when it encodes
    encode_clip(panning(t=4), EncodeOptions(bpp=0.5, preset="fast", iters=40, device="cpu"))
    assert len(steps) == calls
