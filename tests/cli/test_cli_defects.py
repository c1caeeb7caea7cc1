"""Defects a new user hit on the command line (issue 16), each with the test that catches it:
frame folders with dots in their names, the video outputs the error message promises,
`encode -o out.png`, and animated WebP / APNG inputs."""

import json
import re
import shutil
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from asmr_cli.api import EncodeOptions, decode_video, encode_clip
from asmr_cli.cli.app import app
from asmr_cli.core.errors import AsmrError
from asmr_cli.io.clips import Clip
from asmr_cli.io.media import read_image
from asmr_cli.io.video import VIDEO_WRITE_EXTS, is_video_path, read_video, write_video

from ..conftest import SAMPLES
from ..io.test_video import synthetic

runner = CliRunner()
CLI_FAST = ["--preset", "fast", "--iters", "40", "--device", "cpu", "--bpp", "4", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip_asmr(tmp_path_factory):
    """A 3-frame 13 x 17 clip (odd sizes) as .asmr bytes."""
    res = encode_clip(synthetic(3, 13, 17), EncodeOptions(preset="fast", iters=40, device="cpu", bpp=4.0))
    path = tmp_path_factory.mktemp("clip") / "c.asmr"
    path.write_bytes(res.data)
    return path


def _one_line_error(r, code=1):
    assert r.exit_code == code, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    return r.output


def _frames(folder):
    return sorted(p.name for p in folder.iterdir())


# -- 1. a trailing slash (or an existing folder) means a folder of frames, dots or not ----------

def test_decode_to_dotted_folder_with_trailing_slash(tmp_path, clip_asmr):
    out = tmp_path / "shots_v1.2"
    r = runner.invoke(app, ["decode", str(clip_asmr), "-o", f"{out}/", "-f"])
    assert r.exit_code == 0, r.output
    assert out.is_dir() and _frames(out) == [f"frame_00000{i}.png" for i in range(3)]
    assert read_video(out).frames.shape == (3, 13, 17, 3)
    r = runner.invoke(app, ["decode", str(clip_asmr), "-o", f"{out}/"])  # exists: -f needed
    assert "exists" in _one_line_error(r)
    r = runner.invoke(app, ["decode", str(clip_asmr), "-o", str(out), "-f", "--frames", "1:3"])  # existing folder
    assert r.exit_code == 0, r.output
    assert read_video(out).count == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_dotted_name_without_slash_is_refused_with_the_way_out(tmp_path, clip_asmr):
    r = runner.invoke(app, ["decode", str(clip_asmr), "-o", str(tmp_path / "shots_v1.2")])
    assert "a name ending in /" in _one_line_error(r)
    assert list(tmp_path.iterdir()) == []


def test_encode_dotted_folder_default_output_keeps_the_name(tmp_path):
    src = tmp_path / "shots_v1.2"
    write_video(src, synthetic(2, 12, 14), folder=True)
    r = runner.invoke(app, ["encode", str(src), *CLI_FAST])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "shots_v1.2.asmr").is_file() and not (tmp_path / "shots_v1.asmr").exists()


# -- 2. every video output the message lists works, and the message lists exactly those -------

@pytest.mark.parametrize("ext", sorted(VIDEO_WRITE_EXTS))
def test_every_listed_video_output_round_trips(tmp_path, clip_asmr, ext):
    out = tmp_path / f"o{ext}"
    r = runner.invoke(app, ["decode", str(clip_asmr), "-o", str(out)])
    assert r.exit_code == 0, r.output
    back = read_video(out)
    assert back.frames.shape == (3, 13, 17, 3)  # odd sizes come back as they were (mkv lost its size tag)
    ref = decode_video(clip_asmr.read_bytes()).frames
    tol = {".gif": 12.0, ".y4m": 1.0}.get(ext, 6.0)
    assert np.abs(back.frames.astype(int) - ref).mean() <= tol
    assert abs(float(back.fps) - 24) < (1.5 if ext == ".gif" else 0.01)


def test_video_output_message_lists_exactly_what_works(tmp_path, clip_asmr):
    msg = _one_line_error(runner.invoke(app, ["decode", str(clip_asmr), "-o", str(tmp_path / "o.flv")]))
    listed = set(re.findall(r"\.[a-z0-9]+", msg.split("write it to", 1)[1]))
    assert listed == VIDEO_WRITE_EXTS and {".webm", ".mkv"} <= listed
    assert list(tmp_path.iterdir()) == []


def test_webm_is_vp9_at_the_true_size(tmp_path):
    import av

    write_video(tmp_path / "c.webm", synthetic(2, 13, 17))
    with av.open(str(tmp_path / "c.webm")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "vp9" and (s.width, s.height) == (17, 13)


# -- 3. encode never writes an .asmr file under an image or video name -------------------------

@pytest.mark.parametrize("name", ["out.png", "out.JPG", "out.webp", "out.tif", "out.gif", "clip.mp4", "clip.webm",
                                  "clip.y4m", "out.avif"])
def test_encode_refuses_a_media_output_name(tmp_path, name):
    src = tmp_path / "a.png"
    shutil.copy(SAMPLES / "kodim08_small.png", src)
    out = tmp_path / name
    msg = _one_line_error(runner.invoke(app, ["encode", str(src), "-o", str(out), "-f", *CLI_FAST]))
    assert "asmr decode" in msg and str(out.with_suffix(".asmr")) in msg
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("name", ["out.bin", "out"])
def test_encode_allows_other_output_names(tmp_path, name):
    src = tmp_path / "a.png"
    shutil.copy(SAMPLES / "kodim08_small.png", src)
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / name), "--preset", "fast", "--iters", "5",
                            "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / name).read_bytes()[:4] == b"ASMR"


# -- 4. animated WebP and APNG are clips, like GIF; never one frame in silence -----------------

def _animation(path, ms, t=4, h=12, w=16):
    clip = synthetic(t, h, w)
    ims = [Image.fromarray(f) for f in clip.frames]
    kw = {"lossless": True} if path.suffix == ".webp" else {}
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=ms, loop=0, **kw)
    return clip


@pytest.mark.parametrize("name,ms,fps", [("a.webp", 40, 25), ("a.png", 1000 / 30, 30)])
def test_animated_webp_and_apng_read_as_clips(tmp_path, name, ms, fps):
    path = tmp_path / name
    clip = _animation(path, ms)
    assert is_video_path(path)
    back = read_video(path)
    np.testing.assert_array_equal(back.frames, clip.frames)  # lossless: every frame, exactly
    assert back.fps == Fraction(fps)
    with pytest.raises(AsmrError, match="animated"):
        read_image(path)  # an image reader never keeps the first frame alone


def test_still_webp_and_png_stay_images(tmp_path):
    for name in ["s.webp", "s.png"]:
        Image.fromarray(synthetic(1, 12, 16).frames[0]).save(tmp_path / name)
        assert not is_video_path(tmp_path / name)
        assert read_image(tmp_path / name).pixels.shape == (12, 16, 3)


@pytest.mark.parametrize("name", ["a.webp", "a.png"])
def test_cli_animated_input_encodes_every_frame_and_stats_says_so(tmp_path, name):
    src = tmp_path / name
    _animation(src, 40)
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "a.asmr"), *CLI_FAST])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["stats", str(tmp_path / "a.asmr"), "--ref", str(src), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["kind"] == "video" and s["frames"] == 4 and s["fps"] == 25 and s["psnr"] > 10
    r = runner.invoke(app, ["stats", str(tmp_path / "a.asmr")])
    assert r.exit_code == 0 and re.search(r"^\s*frames\s+4\s*$", r.stdout, re.M), r.stdout
    r = runner.invoke(app, ["decode", str(tmp_path / "a.asmr"), "-o", str(tmp_path / "back.gif")])
    assert r.exit_code == 0 and read_video(tmp_path / "back.gif").count == 4


def test_animated_frame_in_a_folder_is_refused(tmp_path):
    folder = tmp_path / "frames"
    write_video(folder, Clip(synthetic(2, 12, 16).frames, Fraction(25)))
    _animation(folder / "frame_000002.png", 40)
    msg = _one_line_error(runner.invoke(app, ["encode", str(folder), *CLI_FAST]))
    assert "animated PNG of 4 frames" in msg
