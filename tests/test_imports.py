"""Rules about imports that keep failures visible and the decoder light: every project
module imports; tests import project modules, never skip them; decode-side modules never
import torch or training code, even lazily. The layers between packages are import-linter
contracts in pyproject.toml (`lint-imports`, run in CI and by test_layer_contracts_hold)."""

import ast
import importlib
import pkgutil
import re
import shutil
import subprocess

import pytest

import asmr_cli

from .conftest import ROOT

DECODE_SIDE = ["container.entropy", "container.file", "container.records", "container.tensors", "clip.codec",
               "clip.format", "coordinate.codec", "coordinate.format", "coordinate.resample", "coordinate.synthesis",
               "latent.codec", "latent.context_model", "latent.format", "latent.latents", "api.files",
               "io.clips", "io.files", "io.media", "io.sizes", "io.video", "io.y4m", "cli.entry"]
TRAINING = {"torch", "asmr_cli.coordinate.fit", "asmr_cli.coordinate.halo", "asmr_cli.coordinate.model",
            "asmr_cli.latent.fit", "asmr_cli.clip.fit", "asmr_cli.core.device"}


MODULES = sorted(m.name for m in pkgutil.walk_packages(asmr_cli.__path__, "asmr_cli.") if m.name != "asmr_cli.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_tests_never_skip_a_project_module():
    """A module-level importorskip of a project module skips a whole file, silently, when
    that module breaks on import (tests/test_bad_inputs.py did this with asmr_cli.video)."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        assert not re.search(r"importorskip\(\s*[\"']asmr_cli", path.read_text()), path.name


def _imports(module: str) -> set[str]:
    """Every module `asmr_cli.<module>` imports, at the top or inside functions, resolved."""
    path = ROOT / "asmr_cli" / (module.replace(".", "/") + ".py")
    package = ("asmr_cli." + module).rsplit(".", 1)[0].split(".")
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # from . import x
    return found


@pytest.mark.parametrize("module", DECODE_SIDE)
def test_decode_side_modules_never_import_training_code(module):
    assert not {m for m in _imports(module) if m.split(".")[0] == "torch" or m in TRAINING}, module


def test_the_rule_sees_imports_inside_functions():
    assert "asmr_cli.latent.fit" in _imports("latent.encoder")  # imported inside encode()
    assert "asmr_cli.core.errors" in _imports("latent.codec")


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is not installed (.[test])")
def test_layer_contracts_hold():
    r = subprocess.run(["lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_the_registry_names_each_familys_versions():
    from asmr_cli.api import formats

    for name, versions in formats.FAMILIES.items():
        assert formats.family(name).versions == versions, name


def test_an_image_decode_loads_one_family(tmp_path):
    """The registry imports a family when a file of its version is read."""
    import sys as _sys

    code = ("import sys\nfrom asmr_cli.api import decode_bytes\n"
            f"decode_bytes(open({str(ROOT / 'tests' / 'latent' / 'golden' / 'image_v3.asmr')!r}, 'rb').read())\n"
            "print(sorted(m for m in ('asmr_cli.coordinate.family', 'asmr_cli.clip.family', "
            "'asmr_cli.collection.family', 'asmr_cli.latent.family') if m in sys.modules))")
    out = subprocess.run([_sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['asmr_cli.latent.family']"
