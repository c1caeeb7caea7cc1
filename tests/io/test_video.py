"""Video: reading/writing clips, encode/decode round trips, frame ranges, CLI dispatch."""

from fractions import Fraction

import numpy as np
import pytest
from typer.testing import CliRunner

from asmr_cli.api import (
    EncodeOptions,
    decode_video,
    encode_clip,
    formats,
    read_video_stats,
)
from asmr_cli.cli.app import app
from asmr_cli.coordinate import codec as coordinate_codec
from asmr_cli.coordinate.decomposition import video_bases
from asmr_cli.core.errors import AsmrError
from asmr_cli.core.metrics import psnr
from asmr_cli.io.clips import Clip, FrameRange, parse_frames
from asmr_cli.io.video import read_video, write_video

from ..conftest import SAMPLES

FAST = dict(preset="fast", iters=150, device="cpu", bpp=4.0, model="coordinate")  # format 2 (test_clips: 4)
runner = CliRunner()


def synthetic(t=5, h=24, w=32, seed=0) -> Clip:
    """A smooth pattern drifting right one pixel per frame, plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(t):
        r = 0.5 + 0.4 * np.sin((x - i) / 5.0) * np.cos(y / 7.0)
        g = 0.5 + 0.4 * np.cos((x + y - i) / 9.0)
        b = 0.3 + 0.3 * (y / max(1, h - 1))
        px = np.stack([r, g, b], -1) * 255 + rng.normal(0, 2, (h, w, 3))
        frames.append(np.clip(np.rint(px), 0, 255).astype(np.uint8))
    return Clip(np.stack(frames), Fraction(24))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def encoded():
    clip = synthetic()
    return clip, encode_clip(clip, EncodeOptions(**FAST))


def test_round_trip(encoded):
    clip, res = encoded
    out = decode_video(res.data)
    assert out.frames.shape == clip.frames.shape and out.frames.dtype == np.uint8
    assert out.fps == Fraction(24)
    assert res.stats["kind"] == "video" and res.stats["frames"] == 5
    assert res.stats["psnr"] == pytest.approx(np.mean([psnr(a, b) for a, b in zip(clip.frames, out.frames)]),
                                              abs=1e-2)
    assert res.stats["psnr"] >= 18.0
    assert res.stats["bpp"] == pytest.approx(len(res.data) * 8 / (5 * 24 * 32), rel=1e-3)


def test_frame_range_renders_only_those_frames(encoded):
    _, res = encoded
    whole = decode_video(res.data).frames
    for rng in [FrameRange(0, 1), FrameRange(2, 4), FrameRange(3, None), FrameRange(4, 99)]:
        part = decode_video(res.data, rng).frames
        np.testing.assert_array_equal(part, whole[rng.start:rng.end])
    with pytest.raises(AsmrError):
        decode_video(res.data, FrameRange(5, 9))


def test_chunked_render_matches_whole(encoded, monkeypatch):
    _, res = encoded
    arch, params = coordinate_codec.unpack(formats.loads(res.data))
    whole = coordinate_codec.native_frames(arch, params, 0, 5)
    monkeypatch.setattr(coordinate_codec, "VIDEO_CHUNK_SAMPLES", 1)  # one frame at a time
    np.testing.assert_array_equal(coordinate_codec.native_frames(arch, params, 0, 5), whole)
    np.testing.assert_array_equal(coordinate_codec.native_frames(arch, params, 1, 4), whole[1:4])


@pytest.mark.parametrize("t,h,w", [(1, 16, 20), (3, 13, 17), (7, 9, 1)])
def test_odd_sizes_and_one_frame(t, h, w):
    clip = synthetic(t, h, w, seed=t)
    res = encode_clip(clip, EncodeOptions(**FAST))
    out = decode_video(res.data)
    assert out.frames.shape == (t, h, w, 3)
    assert res.stats["psnr"] >= 14.0


@pytest.mark.parametrize("sizes", [(1, 5, 5), (2, 144, 176), (120, 144, 176), (250, 272, 640), (37, 31, 1)])
def test_video_bases_cover_every_axis(sizes):
    dec = video_bases(sizes, levels=6, time_last=1, space_last=8)
    assert all(np.prod(b) >= n for b, n in zip(dec.bases, sizes))
    assert len({len(b) for b in dec.bases}) == 1
    if sizes[0] > 1:
        assert dec.bases[0][-1] == 1  # one frame per finest latent cell


@pytest.mark.slow
def test_real_frames_round_trip(tmp_path):
    clip = read_video(SAMPLES / "carphone_8f.mp4")
    assert clip.frames.shape == (8, 72, 96, 3) and clip.fps == Fraction(30000, 1001)
    res = encode_clip(clip, EncodeOptions(preset="fast", iters=150, device="cpu", bpp=1.0))
    assert res.stats["format_version"] == 4
    assert res.stats["psnr"] >= 17.0
    assert res.stats["bpp"] <= 1.0 * 1.02
    h = formats.loads(res.data).header
    assert (h.fps_num, h.fps_den) == (30000, 1001)


# -- file formats --------------------------------------------------------------------------

@pytest.mark.parametrize("name,tol", [("c.y4m", 1.0), ("c.gif", 12.0), ("c.mp4", 6.0), ("frames", 0.0)])
@pytest.mark.parametrize("h,w", [(24, 32), (13, 17)])
def test_write_read(tmp_path, name, tol, h, w):
    clip = synthetic(4, h, w)
    write_video(tmp_path / name, clip)
    back = read_video(tmp_path / name)
    assert back.frames.shape == clip.frames.shape
    assert np.abs(back.frames.astype(int) - clip.frames).mean() <= tol
    if name != "frames":
        assert abs(float(back.fps) - 24) < (1.5 if name.endswith(".gif") else 0.01)  # GIF: 10 ms ticks
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_y4m_from_ffmpeg_420(tmp_path):
    import av

    clip = synthetic(3, 16, 20)
    path = tmp_path / "f.y4m"
    with av.open(str(path), "w") as out:
        s = out.add_stream("rawvideo", rate=24)
        s.width, s.height, s.pix_fmt = 20, 16, "yuv420p"
        for f in clip.frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    back = read_video(path)
    assert back.frames.shape == clip.frames.shape and back.fps == 24
    assert psnr(back.frames, clip.frames) > 28


def test_read_range_and_errors(tmp_path):
    clip = synthetic(6)
    write_video(tmp_path / "c.y4m", clip)
    np.testing.assert_array_equal(read_video(tmp_path / "c.y4m", FrameRange(2, 4)).frames,
                                  read_video(tmp_path / "c.y4m").frames[2:4])
    with pytest.raises(AsmrError):
        read_video(tmp_path / "c.y4m", FrameRange(9, None))
    with pytest.raises(AsmrError):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "bad.y4m").write_bytes(b"not a y4m\n")
    with pytest.raises(AsmrError):
        read_video(tmp_path / "bad.y4m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AsmrError):
        read_video(tmp_path / "empty")


@pytest.mark.parametrize("text,expect", [("0:10", (0, 10)), ("5:", (5, None)), (":3", (0, 3)), ("4", (4, 5))])
def test_parse_frames(text, expect):
    r = parse_frames(text)
    assert (r.start, r.end) == expect


@pytest.mark.parametrize("text", ["a:b", "5:5", "7:2", "-1:3", "1:2:3"])
def test_parse_frames_rejects(text):
    with pytest.raises(AsmrError):
        parse_frames(text)


# -- CLI -----------------------------------------------------------------------------------

CLI_FAST = ["--preset", "fast", "--iters", "100", "--device", "cpu", "--bpp", "4", "--quiet"]


def test_cli_gif_in_and_out(tmp_path):
    write_video(tmp_path / "in.gif", synthetic(4, 20, 28))
    r = runner.invoke(app, ["encode", str(tmp_path / "in.gif"), "-o", str(tmp_path / "c.asmr"), *CLI_FAST])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "out.gif")])
    assert r.exit_code == 0, r.output
    assert read_video(tmp_path / "out.gif").frames.shape == (4, 20, 28, 3)


def test_cli_frame_folder_range_and_stats(tmp_path):
    clip = synthetic(6, 18, 22)
    write_video(tmp_path / "src", clip)
    r = runner.invoke(app, ["encode", str(tmp_path / "src"), "-o", str(tmp_path / "c.asmr"),
                            "--frames", "1:5", *CLI_FAST])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "dst"), "--frames", "1:3"])
    assert r.exit_code == 0, r.output
    assert read_video(tmp_path / "dst").frames.shape == (2, 18, 22, 3)
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "dst")])
    assert r.exit_code == 1 and "exists" in r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "dst"), "-f"])
    assert r.exit_code == 0 and read_video(tmp_path / "dst").count == 4
    r = runner.invoke(app, ["stats", str(tmp_path / "c.asmr"), "--ref", str(tmp_path / "src"),
                            "--frames", "1:5", "--json"])
    assert r.exit_code == 0, r.output
    import json

    s = json.loads(r.stdout)
    assert s["frames"] == 4 and s["fps"] == 25 and s["kind"] == "video"
    assert s["bpp"] == pytest.approx(s["bytes"] * 8 / (4 * 18 * 22), rel=1e-3)
    assert s["psnr"] > 10 and s["macs_per_pixel"] < s["unshared_macs_per_pixel"] and s["format_version"] == 4
    assert s == {**s, **read_video_stats((tmp_path / "c.asmr").read_bytes(), tmp_path / "src", FrameRange(1, 5))}


def test_cli_y4m_mp4_and_errors(tmp_path, encoded):
    _, res = encoded
    (tmp_path / "c.asmr").write_bytes(res.data)
    for name in ["o.y4m", "o.mp4"]:
        r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert read_video(tmp_path / name).frames.shape == (5, 24, 32, 3)
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "o.jpg")])  # no frames in a JPEG
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["decode", str(tmp_path / "c.asmr"), "-o", str(tmp_path / "x.y4m"), "--frames", "7:9"])
    assert r.exit_code == 1 and "no frames" in r.output
    r = runner.invoke(app, ["encode", str(tmp_path / "none.mp4"), *CLI_FAST])
    assert r.exit_code == 1 and "no such" in r.output
