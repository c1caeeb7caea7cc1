"""Format version 4: clips as latent pyramids per frame under a temporal context model."""

from fractions import Fraction

import numpy as np
import pytest

from asmr_cli.api import EncodeOptions, decode_video, encode_clip, formats, read_video_stats, render_clip
from asmr_cli.clip import encoder as clip_encoder
from asmr_cli.clip import format as fmt4
from asmr_cli.container import file as cfile
from asmr_cli.coordinate import format as fmt2
from asmr_cli.core.errors import AsmrError
from asmr_cli.core.rates import Target
from asmr_cli.io.clips import Clip, FrameRange, frame_psnr
from asmr_cli.latent import context_model as cm
from asmr_cli.latent import format as fmt3

from ..conftest import check_corruptions

FAST = dict(preset="fast", iters=40, device="cpu")


def moving(t=6, h=24, w=32, speed=1, seed=0) -> Clip:
    """A textured background with a square moving `speed` pixels a frame, a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.3 * np.sin(x / 3.0) * np.cos(y / 4.0), 0.4 + 0.2 * np.cos((x + y) / 5.0),
                     0.3 + 0.3 * y / max(1, h - 1)], -1)
    frames = []
    for i in range(t):
        f = base.copy()
        x0 = (2 + speed * i) % max(1, w - 6)
        f[4:10, x0:x0 + 6] = (0.9, 0.2, 0.1)
        px = f * 255 + rng.normal(0, 1.0, f.shape)
        frames.append(np.clip(np.rint(px), 0, 255).astype(np.uint8))
    return Clip(np.stack(frames), Fraction(25))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", autouse=True)
def format_4():
    """Format 4 (no motion): what the encoder writes while clip/family.WRITE_MOTION is False
    (its default: tests/clip/test_bframes.py)."""
    from asmr_cli.clip import family

    before = family.WRITE_MOTION
    family.WRITE_MOTION = False
    yield
    family.WRITE_MOTION = before


@pytest.fixture(scope="module")
def encoded():
    clip = moving()
    return clip, encode_clip(clip, EncodeOptions(bpp=2.0, **FAST))


def test_round_trip_is_format_4(encoded):
    clip, res = encoded
    f = formats.loads(res.data)
    assert f.version == fmt4.VERSION and f.header.kind == cfile.KIND_VIDEO
    out = decode_video(res.data)
    assert out.frames.shape == clip.frames.shape and out.fps == Fraction(25)
    assert res.stats["format_version"] == 4 and res.stats["model"] == "latent" and res.stats["frames"] == 6
    assert res.stats["psnr"] == pytest.approx(float(np.mean(frame_psnr(clip.frames, out.frames))), abs=1e-2)
    assert res.stats["psnr"] >= 24.0
    assert res.stats["bpp"] == pytest.approx(len(res.data) * 8 / (6 * 24 * 32), rel=1e-3)
    stats = read_video_stats(res.data)
    assert stats["macs_per_pixel"] < stats["unshared_macs_per_pixel"]


def test_bpp_within_five_percent_and_size_never_over():
    clip = moving(6, 32, 40, seed=3)
    n = 6 * 32 * 40
    res = encode_clip(clip, EncodeOptions(bpp=1.5, **FAST))
    assert abs(len(res.data) * 8 / n - 1.5) <= 0.05 * 1.5
    res = encode_clip(clip, EncodeOptions(size=1200, **FAST))
    assert len(res.data) <= 1200


def test_same_bytes_for_the_same_seed():
    clip = moving(3, 16, 20)
    a = encode_clip(clip, EncodeOptions(bpp=2.0, **FAST)).data
    b = encode_clip(clip, EncodeOptions(bpp=2.0, **FAST)).data
    assert a == b


def test_groups_and_frame_ranges(monkeypatch):
    monkeypatch.setattr(clip_encoder, "GROUP_FRAMES", 2)
    clip = moving(5, 16, 24, seed=1)
    res = encode_clip(clip, EncodeOptions(bpp=3.0, **FAST))
    h = formats.loads(res.data).header
    assert h.group == 2 and h.group_spans() == [(0, 2), (2, 4), (4, 5)]
    whole = decode_video(res.data).frames
    for rng in [FrameRange(0, 1), FrameRange(1, 4), FrameRange(3, None), FrameRange(4, 9)]:
        np.testing.assert_array_equal(decode_video(res.data, rng).frames, whole[rng.start:rng.end])


def test_any_size_and_region(encoded):
    _, res = encoded
    whole = decode_video(res.data).frames
    np.testing.assert_array_equal(render_clip(res.data).frames, whole)
    big = render_clip(res.data, size=(64, 48), frames=FrameRange(1, 3))
    assert big.frames.shape == (2, 48, 64, 3)
    part = render_clip(res.data, region=(4, 2, 10, 8))
    np.testing.assert_array_equal(part.frames, whole[:, 2:10, 4:14])
    half = render_clip(res.data, scale=0.5)
    assert half.frames.shape == (6, 12, 16, 3)


def test_temporal_context_stream_round_trip():
    """A group's frames coded in one stream, each with the previous frame as context,
    decode frame by frame to the same integers."""
    rng = np.random.default_rng(0)
    grids = [(1, 0, (3, 4)), (0, 0, (6, 8))]
    params = {name: rng.normal(0, 0.3, shape) for name, shape in cm.parameter_shapes(2, 4, True)}
    q = cm.to_fixed(params)
    frames = [[rng.integers(-3, 4, s) for _, _, s in grids]]
    for _ in range(3):
        frames.append([z + rng.integers(-1, 2, z.shape) * (rng.random(z.shape) < 0.3) for z in frames[-1]])
    dec = cm.StreamDecoder(cm.encode_stream(frames, grids, q), grids, q)
    prev = None
    for f in frames:
        prev = dec.next_frame(prev)
        for a, b in zip(f, prev):
            np.testing.assert_array_equal(a, b)


def test_a_still_clip_codes_its_later_frames_almost_free():
    """Six copies of a frame cost little more than the frame alone: the temporal context
    predicts each latent from the previous frame's."""
    frame = moving(1, 32, 40).frames
    one = encode_clip(Clip(frame, Fraction(25)), EncodeOptions(quality=80, **FAST))
    six = encode_clip(Clip(np.repeat(frame, 6, axis=0), Fraction(25)), EncodeOptions(quality=80, **FAST))
    latent_bytes = [4 * formats.loads(r.data).grids[0].words.size for r in (one, six)]
    assert latent_bytes[0] > 0 and latent_bytes[1] <= 1.3 * latent_bytes[0], latent_bytes


def test_coordinate_model_still_encodes_clips():
    clip = moving(3, 16, 20)
    res = encode_clip(clip, EncodeOptions(model="coordinate", preset="fast", iters=30, device="cpu", bpp=4.0))
    assert formats.loads(res.data).version == fmt2.VERSION
    assert decode_video(res.data).frames.shape == clip.frames.shape


def test_corrupt_and_hostile_files_raise_asmr_error(encoded):
    _, res = encoded
    check_corruptions(decode_video, res.data, seed=5, count=60)


@pytest.mark.parametrize("frames,group", [(4, 5), (4, 0), (1 << 21, 1)])
def test_header_caps(frames, group):
    h = fmt3.LatentHeader((frames, 16, 16), 3, 8, 3, 4, 4, cfile.KIND_VIDEO, 25, 1, group)
    data = fmt4.dumps(h, [], [])
    with pytest.raises(AsmrError):
        formats.loads(data)


def test_dead_zone_follows_the_previous_frame_as_coded():
    """The rate fit's dead zone: a latent within `keep` of the previous frame's final value
    takes it (0 on a group's first frame); keep 0.5 is plain rounding."""
    from asmr_cli.clip.encoder import _kept

    frames = [[np.array([0.8, 2.4, -1.2])], [np.array([1.7, 2.6, -0.1])], [np.array([2.6, 3.9, 0.2])]]
    assert _kept(frames, 0.5) is frames
    out = _kept(frames, 1.0)
    np.testing.assert_array_equal(out[0][0], [0.0, 2.0, -1.0])   # 0.8 -> 0; 2.4, -1.2 rounded
    np.testing.assert_array_equal(out[1][0], [2.0, 2.0, -1.0])   # 1.7 rounds (1.7 from 0); 2.6, -0.1 keep theirs
    np.testing.assert_array_equal(out[2][0], [2.0, 4.0, 0.0])    # 2.6 keeps 2; 3.9 and 0.2 (1.2 from -1) round


def test_rescaling_towards_an_explicit_rate_stays_under_and_close():
    from asmr_cli.clip.encoder import CLIP_CLOSE, _rescaled

    calls = []

    def file_at(scale=1.0, keep=0.5):
        calls.append(scale)
        return b"x" * int(1000 * scale ** 1.5)

    out = _rescaled(file_at, 1500, file_at())
    assert (1 - CLIP_CLOSE) * 1500 <= len(out) <= 1500 and len(calls) <= 7


def test_rate_fit_takes_the_narrowest_dead_zone_that_fits():
    """Over budget, the zone starts at KEEP_START and is bisected to the narrowest width
    that fits (not the first size within 2%, which may be the widest zone)."""
    from asmr_cli.clip import encoder as enc
    from asmr_cli.core.rates import Target

    tried = []

    def file_at(scale=1.0, keep=0.5):
        tried.append(keep)
        return b"x" * int(2000 - 400 * min(keep, 1.5))  # fits from keep 1.25 on (1500 bytes)

    out = enc._fit_clip_rate(file_at, Target(1500, None))
    fitting = [k for k in tried if 2000 - 400 * min(k, 1.5) <= 1500]
    assert len(out) <= 1500 and min(fitting) - 1.25 <= enc.KEEP_STEP
    assert tried[:2] == [0.5, enc.KEEP_START] and len(tried) <= 3 + enc.RATE_TRIES


def test_the_rate_fit_codes_each_zone_and_scale_once():
    calls = []

    def file_at(scale=1.0, keep=0.5):
        calls.append((float(scale), float(keep)))
        return bytes(int(2000 * scale * (0.6 if keep >= clip_encoder.KEEP_MAX else 1.0)))

    data = clip_encoder._fit_clip_rate(file_at, Target(budget_bytes=1000, bpp=None))
    assert len(data) <= 1000
    assert len(calls) == len(set(calls)) and (1.0, clip_encoder.KEEP_MAX) in calls


def test_a_jump_in_size_under_rescaling_is_made_up_by_a_narrower_zone():
    def file_at(scale=1.0, keep=0.5):  # the size drops by a quarter just under scale 0.75
        size = 2000 * scale * (1.0 if scale >= 0.75 else 0.75) * (1.0 - 0.1 * (keep - 0.5))
        return bytes(int(size))

    target = Target(budget_bytes=1000, bpp=0.1)
    data = clip_encoder._fit_clip_rate(file_at, target)
    assert 0.95 * 1000 <= len(data) <= 1000
