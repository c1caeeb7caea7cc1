import json
import shutil

from typer.testing import CliRunner

from asmr_cli.cli.app import app

from ..conftest import SAMPLES

runner = CliRunner()


def _encode(tmp_path, *extra):
    src = tmp_path / "a.png"
    shutil.copy(SAMPLES / "kodim08_small.png", src)
    r = runner.invoke(app, ["encode", str(src), "--preset", "fast", "--iters", "60", "--device", "cpu",
                            "--json", *extra])
    return src, r


def test_encode_decode_stats_json(tmp_path):
    src, r = _encode(tmp_path)
    assert r.exit_code == 0, r.output
    enc = json.loads(r.stdout)
    for key in ["bytes", "bpp", "psnr", "encode_seconds", "iterations", "macs_per_pixel", "levels", "hidden"]:
        assert key in enc
    asmr = tmp_path / "a.asmr"
    assert asmr.exists() and asmr.stat().st_size == enc["bytes"]
    out = tmp_path / "out.png"
    r = runner.invoke(app, ["decode", str(asmr), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    dec = json.loads(r.stdout)
    assert dec["width"] == 96 and dec["height"] == 64 and out.exists()
    r = runner.invoke(app, ["stats", str(asmr), "--ref", str(src), "--json"])
    st = json.loads(r.stdout)
    assert st["psnr"] == enc["psnr"] and 0 < st["ssim"] <= 1


def test_overwrite_refused_without_force(tmp_path):
    src, r = _encode(tmp_path)
    asmr = tmp_path / "a.asmr"
    before = asmr.read_bytes()
    r = runner.invoke(app, ["encode", str(src), "--iters", "5", "--device", "cpu"])
    assert r.exit_code == 1 and "exists" in r.output
    assert asmr.read_bytes() == before
    r = runner.invoke(app, ["decode", str(asmr)])  # default output a.png is the original
    assert r.exit_code == 1 and "exists" in r.output


def test_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["decode", str(tmp_path / "missing.asmr")])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "no such file" in r.output
    bad = tmp_path / "bad.asmr"
    bad.write_bytes(b"ASMR\x01" + b"\xff" * 40)
    r = runner.invoke(app, ["decode", str(bad), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and not (tmp_path / "x.png").exists()
    notimg = tmp_path / "n.png"
    notimg.write_text("hello")
    r = runner.invoke(app, ["encode", str(notimg)])
    assert r.exit_code == 1 and "not a recognised image" in r.output
    r = runner.invoke(app, ["encode", str(notimg), "--bogus"])
    assert r.exit_code == 2
