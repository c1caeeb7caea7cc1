"""Ctrl-C (SIGINT) and SIGTERM during a long encode or decode: exit 130 / 143, no output
file, no temporary file, and an existing output left as it was."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc"),
              pytest.mark.slow]  # child processes, each starting Python and the library


def _start(args: list[str]) -> subprocess.Popen:
    # a shell without job control starts background jobs with SIGINT ignored; undo that so
    # the child gets Python's default Ctrl-C handling, as it would from a terminal
    return subprocess.Popen([sys.executable, "-m", "asmr_cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_library(p: subprocess.Popen, name: str, timeout: float = 240.0) -> None:
    """Block until the child has loaded `name` (so it is past start-up, inside the command);
    generous, as importing torch on a loaded 2-core machine took over a minute."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert p.poll() is None, p.communicate()
        if name in Path(f"/proc/{p.pid}/maps").read_text():
            time.sleep(1.0)
            return
        time.sleep(0.1)
    pytest.fail(f"child never loaded {name}")


def _interrupt(p: subprocess.Popen, sig: int) -> tuple[int, str]:
    """Send `sig`; the exit status as a shell reports it (128 + n for death by signal n).
    Under load the interrupt sometimes lands where the process dies of SIGINT itself
    (Popen's -2) instead of exiting 130; a shell shows both as 130 (seen in fresh-ci and
    reproduced with a CPU hog beside the test; which window it is was not found)."""
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    rc = p.returncode
    return (128 - rc if rc < 0 else rc), err.decode()


def _leftovers(folder: Path) -> list[str]:
    return sorted(x.name for x in folder.iterdir() if ".part" in x.name)


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_encode(image, tmp_path, sig, code):
    out = tmp_path / "out.asmr"
    out.write_bytes(b"previous output")
    p = _start(["encode", str(image), "-o", str(out), "-f", "--preset", "fast", "--iters", "1000000",
                "--quiet", "--device", "cpu"])
    _wait_for_library(p, "libtorch")
    rc, err = _interrupt(p, sig)
    assert rc == code, err
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous output"
    assert _leftovers(tmp_path) == []


def _slow_file(path: Path) -> None:
    """A valid file that takes seconds to render: 1536x1536, hidden width 1024."""
    from asmr_cli.container import entropy, tensors
    from asmr_cli.container import file as cfile
    from asmr_cli.coordinate import format as fmt2
    from asmr_cli.coordinate.decomposition import auto_bases
    from asmr_cli.core.quantize import step_groups

    dec = auto_bases((1536, 1536), levels=7)
    h = fmt2.Header(cfile.KIND_IMAGE, dec.sizes, 3, 8, dec.bases, 1024, 0, 30.0)
    const = entropy.CodedTensor(entropy.CONSTANT, 1, 1, 0.0, 0.0, np.zeros(0, np.uint32))
    tensors = [tensors.Tensor(np.full(step_groups(n, s), 0.01, np.float32), const)
               for n, s in h.architecture.param_shapes()]
    path.write_bytes(fmt2.dumps(h, tensors))


@pytest.mark.parametrize("extra", [[], ["--max-pixels", "64000000"]], ids=["light", "typer"])
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_decode(tmp_path, sig, code, extra):
    """Both decode paths: the light one in entry.py and (with an option it does not parse) typer's."""
    src, out = tmp_path / "slow.asmr", tmp_path / "out.png"
    _slow_file(src)
    p = _start(["decode", str(src), "-o", str(out), *extra])
    _wait_for_library(p, "constriction")
    rc, err = _interrupt(p, sig)
    assert rc == code, err
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_out_of_memory_is_one_line(tmp_path):
    """A command that runs out of memory ends in one line and exit 1, not a traceback."""
    src = tmp_path / "a.asmr"
    _slow_file(src)
    code = ("import sys\n"
            "import numpy as np\n"
            "from asmr_cli.api import images\n"
            "from asmr_cli.cli.app import run\n"
            "def render_image(*a, **k):\n"
            "    return np.zeros((1 << 40,), np.uint8)  # what a huge render meets\n"
            "images.render_image = render_image\n"
            f"sys.argv = ['asmr', 'decode', {str(src)!r}, '-o', {str(tmp_path / 'o.png')!r}, '--json']\n"
            "run()\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        "asmr: error: out of memory (try a smaller --region or --scale, or a smaller input)"]
    assert not (tmp_path / "o.png").exists() and _leftovers(tmp_path) == []
