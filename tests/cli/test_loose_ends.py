"""The loose ends a new user meets (issue 26), each through the CLI: help texts, `-o dir/`,
`decode --format`, clips as animated WebP / APNG, `--max-pixels` for clips, multi-page
inputs, the `--json` keys."""

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from asmr_cli.cli.app import app

from ..conftest import ROOT, SAMPLES, golden_files

GOLDEN = golden_files()
runner = CliRunner()


def _flat(text: str) -> str:
    """Help text without rich's box drawing and line breaks."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", text)


@pytest.fixture
def files(tmp_path):
    """A small image (format 3) and a small clip (format 4, 5 frames of 12x10)."""
    shutil.copy(GOLDEN["image_v3.asmr"], tmp_path / "image.asmr")
    shutil.copy(GOLDEN["video_v4.asmr"], tmp_path / "clip.asmr")
    return tmp_path


# -- help texts -----------------------------------------------------------------------------------

def test_help_says_images_and_clips():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    assert "images and video clips" in _flat(r.output)


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_ray_help_keeps_asmr_ray(command):
    r = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert r.exit_code == 0
    assert "needs asmr[ray]" in _flat(r.output)


# -- -o dir/ ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_encode_into_a_folder_keeps_the_slash(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim23_small.png"), "-o", f"{out}/", "--iters", "3",
                            "--quiet"])
    assert r.exit_code == 0, r.output
    assert (out / "kodim23_small.asmr").is_file()


def test_encode_into_a_missing_folder_fails_before_the_encode(tmp_path):
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim23_small.png"), "-o", f"{tmp_path}/missing/",
                            "--iters", "3", "--quiet"])
    assert r.exit_code == 1 and "no such folder" in r.output
    assert not (tmp_path / "missing").exists()


def test_decode_an_image_into_a_folder(files):
    (files / "out").mkdir()
    r = runner.invoke(app, ["decode", str(files / "image.asmr"), "-o", f"{files}/out/", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["output"] == str(files / "out" / "image.png")
    assert Image.open(files / "out" / "image.png").size == (10, 12)


# -- decode --format --------------------------------------------------------------------------------

def test_decode_batch_format_webp(files):
    r = runner.invoke(app, ["decode", str(files / "image.asmr"), str(files / "clip.asmr"), "--format", "webp",
                            "-o", str(files / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    with Image.open(files / "out" / "image.webp") as im:
        assert im.format == "WEBP" and im.size == (10, 12) and not getattr(im, "is_animated", False)
    with Image.open(files / "out" / "clip.webp") as im:  # a clip in WebP: animated, every frame kept
        assert im.format == "WEBP" and im.size == (12, 10) and im.n_frames == 5


def test_decode_batch_format_per_kind(files):
    r = runner.invoke(app, ["decode", str(files / "image.asmr"), str(files / "clip.asmr"), "--format", "jpg,webm",
                            "-o", str(files / "out"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (files / "out").iterdir()) == ["clip.webm", "image.jpg"]


def test_decode_format_without_output_and_a_bad_one(files):
    r = runner.invoke(app, ["decode", str(files / "image.asmr"), "--format", "tif"])
    assert r.exit_code == 0, r.output
    assert Image.open(files / "image.tif").size == (10, 12)
    r = runner.invoke(app, ["decode", str(files / "image.asmr"), str(files / "clip.asmr"), "--format", "bmp"])
    assert r.exit_code == 1 and "--format bmp" in r.output


# -- clips as animated WebP and PNG ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["clip.apng", "clip.png", "clip.webp"])
def test_clip_written_as_animated_image(files, name):
    from asmr_cli.api import decode_video
    from asmr_cli.io.video import read_video

    r = runner.invoke(app, ["decode", str(files / "clip.asmr"), "-o", str(files / name)])
    assert r.exit_code == 0, r.output
    back = read_video(files / name)
    want = decode_video((files / "clip.asmr").read_bytes()).frames
    assert back.frames.shape == want.shape  # one frame per frame, identical neighbours included
    diff = np.abs(back.frames.astype(int) - want)
    if name.endswith("webp"):
        assert diff.mean() < 3
    else:
        assert diff.max() == 0
    assert float(back.fps) == pytest.approx(25, rel=0.05)


# -- --max-pixels for clips, and output checks before rendering --------------------------------------------

def test_decode_clip_honours_max_pixels(files):
    r = runner.invoke(app, ["decode", str(files / "clip.asmr"), "-o", str(files / "c.y4m"), "--max-pixels", "100"])
    assert r.exit_code == 1 and "--max-pixels" in r.output  # frames of 12x10 = 120 pixels
    assert not (files / "c.y4m").exists()
    r = runner.invoke(app, ["decode", str(files / "clip.asmr"), "-o", str(files / "c.y4m"), "--max-pixels", "120"])
    assert r.exit_code == 0, r.output


def test_encode_clip_honours_max_pixels(tmp_path):
    r = runner.invoke(app, ["encode", str(SAMPLES / "carphone_8f.mp4"), "-o", str(tmp_path / "c.asmr"),
                            "--max-pixels", "1000", "--iters", "1", "--time-limit", "1", "--quiet"])
    assert r.exit_code == 1 and "--max-pixels" in r.output  # frames of 96x72
    assert not (tmp_path / "c.asmr").exists()


def test_clip_output_is_checked_before_rendering(files, monkeypatch):
    from asmr_cli.api import clips

    def no_render(*args, **kwargs):
        raise AssertionError("rendered before the output was checked")

    monkeypatch.setattr(clips, "decode_video", no_render)
    monkeypatch.setattr(clips, "render_clip", no_render)
    for out in (f"{files}/missing/c.mp4", f"{files}/missing/frames/", f"{files}/missing/c.webp"):
        r = runner.invoke(app, ["decode", str(files / "clip.asmr"), "-o", out, "--scale", "2"])
        assert r.exit_code == 1 and "no such folder" in r.output, out


# -- multi-page inputs ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["TIFF", "MPO"])
def test_multi_page_input_says_it_reads_the_first(tmp_path, fmt):
    pages = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (40, 200)]
    src = tmp_path / f"two.{'tif' if fmt == 'TIFF' else 'mpo'}"
    pages[0].save(src, format=fmt, save_all=True, append_images=pages[1:])
    with Image.open(src) as im:
        assert im.format == fmt and im.n_frames == 2
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "two.asmr"), "--iters", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "note:" in r.output and "first" in r.output and "2" in r.output


# -- --json keys ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_json_psnr_float_latents_and_the_deprecated_alias(tmp_path):
    r = runner.invoke(app, ["encode", str(SAMPLES / "kodim23_small.png"), "-o", str(tmp_path / "k.asmr"),
                            "--iters", "3", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["psnr_float_latents"] == obj["psnr_unquantised"]
    doc = (ROOT / "docs" / "json.md").read_text()
    for key in obj:  # every key an encode prints is documented in one place
        assert f"`{key}`" in doc, key
    assert "psnr_float_latents" in doc.split("## Deprecated")[1]


def test_json_doc_lists_decode_and_stats_keys(files):
    doc = (ROOT / "docs" / "json.md").read_text()
    for name in ("image.asmr", "clip.asmr"):
        r = runner.invoke(app, ["stats", str(files / name), "--json"])
        s = runner.invoke(app, ["decode", str(files / name), "-o", str(files / f"{name}.y4m" if "clip" in name
                                                                        else files / f"{name}.png"), "--json"])
        for key in {**json.loads(r.stdout), **json.loads(s.stdout)}:
            assert f"`{key}`" in doc, key
