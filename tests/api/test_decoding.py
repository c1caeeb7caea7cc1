"""`asmr decode`: one decode function (`decoding.decode_file`) behind both entries, the typer
command and the light console-script path; the output is checked before any rendering."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from asmr_cli.api import clips, images
from asmr_cli.cli.app import app
from asmr_cli.cli.entry import plain_decode
from asmr_cli.core.errors import AsmrError
from asmr_cli.io.sizes import parse_region, parse_size

from ..conftest import golden_files

GOLDEN = golden_files()
runner = CliRunner()


def test_parse_size_and_region():
    assert parse_size("1536x1024") == (1536, 1024)
    assert parse_size("20X10") == (20, 10)
    assert parse_region("1,2,3,4") == (1, 2, 3, 4)
    for bad in ["1536", "0x10", "10x0", "-1x5", "axb", ""]:
        with pytest.raises(AsmrError, match="--size"):
            parse_size(bad)
    for bad in ["1,2,3", "1,2,3,4,5", "a,b,c,d", "-1,0,5,5", "0,0,0,5", "0,0,5,-1"]:
        with pytest.raises(AsmrError, match="--region"):
            parse_region(bad)


@pytest.fixture
def files(tmp_path):
    for name in ("image_v2.asmr", "video_v2.asmr"):
        shutil.copy(GOLDEN[name], tmp_path / name)
    return tmp_path


@pytest.fixture
def no_rendering(monkeypatch):
    """Fail the test if anything is rendered."""
    def refuse(*args, **kwargs):
        raise AssertionError("rendered before the output was checked")

    for module, name in ((images, "render_image"), (clips, "render_clip"), (clips, "decode_video")):
        monkeypatch.setattr(module, name, refuse)


def _both_entries(capsys, src, out, force=False):
    """(exit code, message) from the typer command and from the light entry."""
    argv = ["decode", str(src)] + (["-o", str(out)] if out is not None else []) + (["-f"] if force else [])
    r = runner.invoke(app, argv)
    code = plain_decode({"input": str(src), "output": None if out is None else str(out), "force": force,
                         "json": False})
    light = (code, capsys.readouterr().err.strip())
    return (r.exit_code, r.output.strip()), light


@pytest.mark.parametrize("case,message", [
    ("missing folder", "no such folder"),
    ("exists", "exists (use -f to overwrite)"),
    ("bad type", "unsupported output type .bmp"),
])
def test_image_output_is_checked_before_any_rendering(files, capsys, no_rendering, case, message):
    src = files / "image_v2.asmr"
    # an existing folder is written into (issue 26: tests/cli/test_loose_ends.py)
    out = {"missing folder": files / "missing" / "out.png", "exists": files / "old.png",
           "bad type": files / "out.bmp"}[case]
    if case == "exists":
        out.write_bytes(b"keep me")
    typer_result, light_result = _both_entries(capsys, src, out)
    assert typer_result == light_result
    assert light_result[0] == 1 and message in light_result[1], light_result
    assert light_result[1].count("\n") == 0
    if case == "exists":
        assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("out", ["missing/frames", "missing/clip.y4m"])
def test_video_output_is_checked_before_any_rendering(files, capsys, no_rendering, out):
    typer_result, light_result = _both_entries(capsys, files / "video_v2.asmr", files / out)
    assert typer_result == light_result
    assert light_result[0] == 1 and "no such folder" in light_result[1], light_result


@pytest.mark.parametrize("name,out", [("image_v2.asmr", "a.png"), ("video_v2.asmr", "a.y4m")])
def test_both_entries_write_the_same_file(files, capsys, name, out):
    (files / "typer").mkdir()
    (files / "light").mkdir()
    r = runner.invoke(app, ["decode", str(files / name), "-o", str(files / "typer" / out), "--json"])
    assert r.exit_code == 0, r.output
    assert plain_decode({"input": str(files / name), "output": str(files / "light" / out), "force": False,
                         "json": True}) == 0
    slow, fast = json.loads(r.stdout), json.loads(capsys.readouterr().out)
    assert slow.keys() == fast.keys()
    assert {k: v for k, v in slow.items() if k not in ("output", "decode_seconds")} \
        == {k: v for k, v in fast.items() if k not in ("output", "decode_seconds")}
    assert (files / "typer" / out).read_bytes() == (files / "light" / out).read_bytes()


def test_light_entry_reports_running_out_of_memory_in_one_line(files, capsys, monkeypatch):
    """As cli.run does for the typer commands (tests/test_signals.py)."""
    def huge(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(images, "render_image", huge)
    out = files / "o.png"
    assert plain_decode({"input": str(files / "image_v2.asmr"), "output": str(out), "force": False,
                         "json": True}) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)"]
    assert captured.out == "" and not out.exists()
