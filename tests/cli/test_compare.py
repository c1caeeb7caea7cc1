"""`asmr compare`: asmr against JPEG, WebP and AVIF at the same size, the table and the picture."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from asmr_cli.cli.app import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
KODIM = SAMPLES / "kodim23_small.png"
SHORT = ["--bpp", "0.5", "--iters", "20", "--time-limit", "10"]
runner = CliRunner()


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """One short compare run on kodim23_small, with its picture and JSON."""
    out = tmp_path_factory.mktemp("compare") / "compare.png"
    r = runner.invoke(app, ["compare", str(KODIM), *SHORT, "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout), out


@pytest.mark.slow
def test_every_codec_at_or_below_asmrs_size_and_within_5_percent(compared):
    obj, _ = compared
    rows = {c["codec"]: c for c in obj["codecs"]}
    assert list(rows) == ["asmr", "jpeg", "webp", "avif"]
    target = rows["asmr"]["bytes"]
    assert obj["target_bytes"] == target
    for name in ("jpeg", "webp"):  # AVIF only where this Pillow has it
        assert 0.95 * target <= rows[name]["bytes"] <= target, rows[name]
    if rows["avif"]["bytes"] is None:
        assert "not available" in rows["avif"]["note"]
    else:
        assert 0.95 * target <= rows["avif"]["bytes"] <= target
    for row in obj["codecs"]:
        if row["bytes"] is not None:
            assert row["psnr"] > 15 and 0 < row["ssim"] <= 1
            assert row["bpp"] == pytest.approx(8 * row["bytes"] / (192 * 128), abs=1e-3)


@pytest.mark.slow
def test_picture_size_labels_and_crop_placement(compared):
    obj, out = compared
    pic = obj["picture"]
    im = np.asarray(Image.open(out).convert("RGB"))
    assert (im.shape[1], im.shape[0]) == tuple(pic["size"])
    ran = [c for c in obj["codecs"] if c["bytes"] is not None]
    assert len(pic["panels"]) == len(pic["labels"]) == 1 + len(ran)
    assert pic["labels"][0][0] == "original"
    assert [label[0].split()[0] for label in pic["labels"][1:]] == [
        {"asmr": "asmr", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}[c["codec"]] for c in ran]
    x, y, w, h = obj["crop"]
    z = pic["zoom"]
    original = np.asarray(Image.open(KODIM).convert("RGB"))
    expected = np.repeat(np.repeat(original[y:y + h, x:x + w], z, axis=0), z, axis=1)
    for i, (px, py, pw, ph) in enumerate(pic["panels"]):
        assert (pw, ph) == (w * z, h * z)
        label = im[:py, px:px + pw]
        assert (label < 128).any(), f"panel {i}: no label text"  # dark text above the panel
        if i == 0:  # the original's panel is the crop itself, enlarged
            assert np.array_equal(im[py:py + ph, px:px + pw], expected)
    # the default crop is the region with the most detail: the parrot's head, not the blurred right side
    assert x + w <= 160


@pytest.mark.slow
def test_table_is_printed_with_every_codec(tmp_path):
    r = runner.invoke(app, ["compare", str(KODIM), *SHORT, "--codecs", "jpeg,webp"])
    assert r.exit_code == 0, r.output
    for word in ("asmr", "JPEG", "WebP", "PSNR", "SSIM", "bytes", "encode s", "decode s"):
        assert word in r.stdout
    assert "AVIF" not in r.stdout


@pytest.mark.slow
def test_missing_avif_is_a_row_not_a_failure(monkeypatch):
    from asmr_cli.api import compare

    real = compare.codec_available
    monkeypatch.setattr(compare, "codec_available", lambda c: c != "avif" and real(c))
    r = runner.invoke(app, ["compare", str(KODIM), *SHORT, "--codecs", "avif"])
    assert r.exit_code == 0, r.output
    assert "AVIF" in r.stdout and "not available" in r.stdout


@pytest.mark.slow
def test_crop_option_places_the_given_region(tmp_path):
    out = tmp_path / "c.png"
    r = runner.invoke(app, ["compare", str(KODIM), *SHORT, "--codecs", "jpeg", "--crop", "100,20,40,30",
                            "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["crop"] == [100, 20, 40, 30]
    px, py, pw, ph = obj["picture"]["panels"][0]
    z = obj["picture"]["zoom"]
    assert (pw, ph) == (40 * z, 30 * z) and z >= 2
    original = np.asarray(Image.open(KODIM).convert("RGB"))
    im = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(im[py:py + ph, px:px + pw], np.repeat(np.repeat(original[20:50, 100:140], z, 0), z, 1))


def test_bad_picture_name_and_crop_fail_before_the_encode(tmp_path):
    r = runner.invoke(app, ["compare", str(KODIM), "-o", str(tmp_path / "c.xyz")])
    assert r.exit_code == 1 and "unsupported output type" in r.output
    r = runner.invoke(app, ["compare", str(KODIM), "-o", str(tmp_path / "missing" / "c.png")])
    assert r.exit_code == 1 and "no such folder" in r.output
    r = runner.invoke(app, ["compare", str(KODIM), "--crop", "0,0,500,5"])
    assert r.exit_code == 1 and "--crop" in r.output and "outside" in r.output
    r = runner.invoke(app, ["compare", str(KODIM), "--codecs", "jpeg,gif"])
    assert r.exit_code == 1 and "--codecs" in r.output


def test_quality_search_finds_the_largest_size_under_the_target():
    from asmr_cli.api.compare import search_quality

    sizes = {q: 100 + 10 * q for q in range(101)}
    sizes[51] = 600  # not monotone: 51 is smaller than 50
    assert search_quality(sizes.__getitem__, 615, 0, 100) == (51, 600)
    assert search_quality(sizes.__getitem__, 1000, 0, 100) == (90, 1000)
    assert search_quality(sizes.__getitem__, 50, 0, 100) == (0, 100)  # above the target even at the lowest
    assert search_quality(sizes.__getitem__, 5000, 0, 100) == (100, 1100)


def test_detailed_crop_finds_the_busy_corner():
    from asmr_cli.api.compare import detailed_crop

    rng = np.random.default_rng(0)
    px = np.full((200, 300, 3), 128, np.uint8)
    px[120:200, 200:300] = rng.integers(0, 256, (80, 100, 3))
    x, y, w, h = detailed_crop(px, 64, 64)
    assert (w, h) == (64, 64)
    assert 200 <= x and x + w <= 300 and 120 <= y and y + h <= 200


# -- clips: x264, x265 and VP9 -----------------------------------------------------------------------------

CLIP = SAMPLES / "carphone_8f.mp4"


@pytest.mark.slow
def test_clip_compare_table_sizes_and_the_frame_shown(tmp_path):
    from asmr_cli.io.video import read_video

    out = tmp_path / "clip.png"
    r = runner.invoke(app, ["compare", str(CLIP), *SHORT, "--frame", "2", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["frames"] == 8 and obj["frame"] == 2
    rows = {c["codec"]: c for c in obj["codecs"]}
    assert list(rows) == ["asmr", "x264", "x265", "vp9"]
    target = rows["asmr"]["bytes"]
    for name in ("x264", "x265", "vp9"):
        row = rows[name]
        assert row["bytes"] <= target, row  # never above asmr's size; how far below is reported
        assert row["size_gap"] == pytest.approx(row["bytes"] / target - 1, abs=1e-3)
        if row["size_gap"] < -0.05:
            assert "below" in row["note"]
        assert row["psnr"] > 20 and 0 < row["ssim"] <= 1
    x, y, w, h = obj["crop"]
    z = obj["picture"]["zoom"]
    px, py, pw, ph = obj["picture"]["panels"][0]
    frame = read_video(CLIP).frames[2]
    im = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(im[py:py + ph, px:px + pw], np.repeat(np.repeat(frame[y:y + h, x:x + w], z, 0), z, 1))
    assert obj["picture"]["labels"][0][1].startswith("frame 2")


@pytest.mark.slow
def test_clip_compare_table(tmp_path):
    r = runner.invoke(app, ["compare", str(CLIP), *SHORT, "--codecs", "vp9"])
    assert r.exit_code == 0, r.output
    rows = [line.split("│")[1].strip() for line in r.stdout.splitlines() if line.startswith("│")]
    assert "8 frames" in r.stdout and "VP9" in rows and "x264" not in rows


def test_clip_compare_refuses_a_frame_outside_and_image_codecs(tmp_path):
    r = runner.invoke(app, ["compare", str(CLIP), "--frame", "99"])
    assert r.exit_code == 1 and "--frame 99" in r.output
    r = runner.invoke(app, ["compare", str(CLIP), "--codecs", "jpeg"])
    assert r.exit_code == 1 and "--codecs jpeg" in r.output
    r = runner.invoke(app, ["compare", str(KODIM), "--frame", "1"])
    assert r.exit_code == 1 and "for a clip" in r.output


# -- --rd: the rate-distortion sweep and its plot ---------------------------------------------------------

@pytest.mark.slow
def test_rd_sweep_writes_the_plot(tmp_path):
    plot = tmp_path / "rd.png"
    r = runner.invoke(app, ["compare", str(KODIM), "--iters", "5", "--rd", str(plot), "--rd-bpps", "0.5,1",
                            "--codecs", "jpeg,webp", "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["plot"] == str(plot) and len(obj["rates"]) == 2
    for rate, bpp in zip(obj["rates"], (0.5, 1)):
        asmr = rate["codecs"][0]
        assert asmr["codec"] == "asmr" and asmr["bpp"] == pytest.approx(bpp, rel=0.06)
        assert all(c["bytes"] <= rate["target_bytes"] for c in rate["codecs"])
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.size[0] > 300


def test_rd_refuses_a_picture_and_bad_rates(tmp_path):
    r = runner.invoke(app, ["compare", str(KODIM), "--rd", str(tmp_path / "rd.png"), "-o", str(tmp_path / "c.png")])
    assert r.exit_code == 1 and "--rd" in r.output
    r = runner.invoke(app, ["compare", str(KODIM), "--rd", str(tmp_path / "rd.png"), "--rd-bpps", "0.5,x"])
    assert r.exit_code == 1 and "--rd-bpps" in r.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_picture_into_a_folder(tmp_path):
    r = runner.invoke(app, ["compare", str(KODIM), "--iters", "5", "--codecs", "jpeg", "-o", f"{tmp_path}/"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "kodim23_small-compare.png").is_file()
    r = runner.invoke(app, ["compare", str(KODIM), "--iters", "5", "-o", f"{tmp_path}/missing/"])
    assert r.exit_code == 1 and "no such folder" in r.output
