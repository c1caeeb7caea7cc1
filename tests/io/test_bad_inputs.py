"""Awkward and broken inputs, through the CLI: each gives one clear line and exit 1, or a
correct result (docs/reliability.md has the table). The files are made here, in tmp_path."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from asmr_cli.cli.app import app
from asmr_cli.io import video
from asmr_cli.io.media import read_image

from ..conftest import SAMPLES

runner = CliRunner()
FAST = ["--preset", "fast", "--iters", "12", "--device", "cpu", "--quiet"]


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(path, h=16, w=24):
    Image.fromarray(_rgb(h, w)).save(path)
    return path


def _encode(src, out, *extra):
    return runner.invoke(app, ["encode", str(src), "-o", str(out), *FAST, *extra])


def _error_line(r) -> str:
    assert r.exit_code == 1, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("asmr: error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


def _jpeg_bytes(**kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_rgb(32, 48)).save(buf, format="JPEG", **kw)
    return buf.getvalue()


# -- refused with one line ---------------------------------------------------------------

def _make_bad(tmp_path, case):
    p = tmp_path / {"dir": "d.png", "text": "notes.png"}.get(case, f"{case}.png")
    if case == "missing":
        return p
    if case == "dir":
        p.mkdir()
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("this is not an image\n")
    elif case == "truncated_png":
        data = (SAMPLES / "kodim08_small.png").read_bytes()
        p.write_bytes(data[:len(data) // 2])
    elif case == "truncated_jpeg":
        p = tmp_path / "t.jpg"
        data = _jpeg_bytes()
        p.write_bytes(data[:len(data) // 2])
    elif case == "header_only_png":
        p.write_bytes((SAMPLES / "kodim08_small.png").read_bytes()[:33])
    return p


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file"),
    ("dir", "no numbered frames"),  # a folder is read as a video of numbered frames
    ("empty", "empty file"),
    ("text", "not a recognised image"),
    ("truncated_png", "cannot read image"),
    ("truncated_jpeg", "cannot read image"),
    ("header_only_png", "not a recognised image"),
])
def test_bad_image_is_one_line(tmp_path, case, message):
    src = _make_bad(tmp_path, case)
    out = tmp_path / "out.asmr"
    line = _error_line(_encode(src, out))
    assert message in line
    assert not out.exists()


def test_failed_run_leaves_existing_output(tmp_path):
    src = _make_bad(tmp_path, "truncated_png")
    out = tmp_path / "out.asmr"
    out.write_bytes(b"keep me")
    _error_line(_encode(src, out, "-f"))
    assert out.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir() if ".part" in p.name] == []


def test_missing_output_folder_is_refused_before_encoding(tmp_path):
    import time

    src = _png(tmp_path / "a.png")
    t0 = time.perf_counter()
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "nope" / "a.asmr"), "--preset", "fast",
                            "--iters", "100000", "--device", "cpu", "--quiet"])
    assert "no such folder" in _error_line(r)
    assert time.perf_counter() - t0 < 5  # refused up front, not after 100000 steps


@pytest.mark.slow
def test_decompression_bomb_and_the_flag_to_allow_it(tmp_path, capfd):
    src = _png(tmp_path / "big.png", 40, 60)  # 2400 pixels
    line = _error_line(_encode(src, tmp_path / "a.asmr", "--max-pixels", "2000"))
    assert "over the 2000-pixel limit" in line and "--max-pixels" in line
    line = _error_line(_encode(src, tmp_path / "a.asmr", "--max-pixels", "1000"))  # over 2x: Pillow's own error
    assert "1000-pixel limit" in line
    assert _encode(src, tmp_path / "a.asmr", "--max-pixels", "2400").exit_code == 0
    assert "DecompressionBombWarning" not in capfd.readouterr().err  # was printed before the one line


@pytest.mark.slow
def test_decompression_bomb_message_is_one_line_in_a_real_run(tmp_path):
    import subprocess
    import sys

    src = _png(tmp_path / "big.png", 40, 60)
    r = subprocess.run([sys.executable, "-W", "default", "-m", "asmr_cli", "encode", str(src), "-o",
                        str(tmp_path / "a.asmr"), "--max-pixels", "2000"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"asmr: error: {src}: 60x40 is over the 2000-pixel limit "
                                     "(raise it with --max-pixels)"]


def test_decode_refuses_a_file_over_its_pixel_limit(tmp_path):
    src = _png(tmp_path / "a.png", 40, 60)
    assert _encode(src, tmp_path / "a.asmr").exit_code == 0
    r = runner.invoke(app, ["decode", str(tmp_path / "a.asmr"), "-o", str(tmp_path / "b.png"), "--max-pixels", "100"])
    assert "over the 100-pixel limit" in _error_line(r)
    assert not (tmp_path / "b.png").exists()


def test_not_an_asmr_file(tmp_path):
    src = _png(tmp_path / "a.png")
    r = runner.invoke(app, ["decode", str(src), "-o", str(tmp_path / "b.png")])
    assert "not an .asmr file" in _error_line(r)
    for n in (0, 3, 20):
        bad = tmp_path / f"t{n}.asmr"
        bad.write_bytes(b"ASMR\x01"[:n] + b"\x00" * n)
        _error_line(runner.invoke(app, ["decode", str(bad), "-o", str(tmp_path / "c.png")]))


# -- odd but valid images: a correct result --------------------------------------------------

def _round_trip(tmp_path, src):
    out, dec = tmp_path / "o.asmr", tmp_path / "o.png"
    r = _encode(src, out, "-f")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(out), "-o", str(dec), "-f"])
    assert r.exit_code == 0, r.output
    return read_image(dec)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(_rgb(20, 30)).convert("CMYK").save(src, format="JPEG")
    assert read_image(src).channels == 3
    assert _round_trip(tmp_path, src).pixels.shape == (20, 30, 3)


def test_palette_png_with_transparency_keeps_alpha(tmp_path):
    src = tmp_path / "p.png"
    im = Image.fromarray(_rgb(12, 18)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    im.info["transparency"] = 0
    im.save(src, transparency=0)
    r = read_image(src)
    assert r.channels == 4 and r.bit_depth == 8
    assert _round_trip(tmp_path, src).pixels.shape == (12, 18, 4)


def test_16bit_png_stays_16bit(tmp_path):
    src = tmp_path / "g16.png"
    grey = np.random.default_rng(1).integers(0, 65536, (10, 14), dtype=np.uint16)
    Image.fromarray(grey).save(src)
    r = read_image(src)
    assert r.bit_depth == 16 and r.channels == 1
    np.testing.assert_array_equal(r.pixels[..., 0], grey)
    dec = _round_trip(tmp_path, src)
    assert dec.bit_depth == 16 and dec.pixels.shape == (10, 14, 1)


def test_16bit_colour_png_stays_16bit(tmp_path):
    from asmr_cli.io.media import Raster, write_image

    src = tmp_path / "c16.png"
    px = np.random.default_rng(2).integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    write_image(src, Raster(px, 16))
    r = read_image(src)
    assert r.bit_depth == 16 and r.channels == 3
    np.testing.assert_array_equal(r.pixels, px)
    assert _round_trip(tmp_path, src).bit_depth == 16


def test_exif_rotated_jpeg_is_encoded_upright(tmp_path):
    src = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(_rgb(20, 36)).save(src, format="JPEG", exif=exif)
    assert Image.open(src).size == (36, 20)  # stored landscape
    dec = _round_trip(tmp_path, src)
    assert dec.pixels.shape[:2] == (36, 20)  # displayed (and encoded) portrait


@pytest.mark.parametrize("h,w", [(1, 1), (1, 37), (29, 1), (2, 3)])
def test_tiny_and_thin_images(tmp_path, h, w):
    src = _png(tmp_path / "t.png", h, w)
    dec = _round_trip(tmp_path, src)
    assert dec.pixels.shape == (h, w, 3)


def test_greyscale_and_alpha(tmp_path):
    for mode, channels in (("L", 1), ("LA", 2), ("1", 1)):
        src = tmp_path / f"{mode}.png"
        Image.fromarray(_rgb(8, 9)).convert(mode).save(src)
        assert read_image(src).channels == channels
        assert _round_trip(tmp_path, src).pixels.shape == (8, 9, channels)


# -- videos --------------------------------------------------------------------------------

def _mp4(path, frames, h=16, w=24):
    from fractions import Fraction

    clip = video.Clip(np.stack([_rgb(h, w, i) for i in range(frames)]), Fraction(25))
    video.write_video(path, clip)
    return path


def test_truncated_mp4_is_one_line(tmp_path):
    src = _mp4(tmp_path / "v.mp4", 4)
    data = src.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[:len(data) // 3])
    line = _error_line(_encode(bad, tmp_path / "v.asmr"))
    assert "cut.mp4" in line
    assert not (tmp_path / "v.asmr").exists()


@pytest.mark.parametrize("frames,h,w", [(1, 16, 24), (3, 15, 21)])
def test_one_frame_and_odd_sized_videos(tmp_path, frames, h, w):
    src = _mp4(tmp_path / "v.mp4", frames, h, w)
    out, dec = tmp_path / "v.asmr", tmp_path / "d.mp4"
    r = _encode(src, out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == frames
    r = runner.invoke(app, ["decode", str(out), "-o", str(dec), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert (got["frames"], got["width"], got["height"]) == (frames, w, h)


def test_max_pixels_of_one_read_does_not_leak_into_the_next(tmp_path):
    """Pillow's pixel limit is process-wide: a read with a small --max-pixels left it set,
    and a later read in the same process (a batch, the test suite) failed."""
    from PIL import Image

    from asmr_cli.core.errors import AsmrError
    from asmr_cli.io.media import read_image

    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(AsmrError):
        read_image(SAMPLES / "kodim23_small.png", max_pixels=100)
    assert Image.MAX_IMAGE_PIXELS == before
    assert read_image(SAMPLES / "kodim23_small.png").width == 192
