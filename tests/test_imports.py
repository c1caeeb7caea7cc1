"""Rules about imports that keep failures visible and the decoder light: every project
module imports; tests import project modules, never skip them; decode-side modules never
import torch or training code, even lazily."""

import ast
import importlib
import pkgutil
import re

import pytest

import asmr_cli

from .conftest import ROOT

DECODE_SIDE = ["bitstream", "clip_codec", "context_model", "decoding", "entropy", "files", "latent_codec",
               "latents", "media", "resample", "sizes", "synthesis", "video"]
TRAINING = {"torch", "asmr_cli.fit", "asmr_cli.halo", "asmr_cli.model", "asmr_cli.latent_fit", "asmr_cli.clip_fit"}


MODULES = sorted(m.name for m in pkgutil.iter_modules(asmr_cli.__path__) if m.name != "__main__")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(f"asmr_cli.{name}")


def test_tests_never_skip_a_project_module():
    """A module-level importorskip of a project module skips a whole file, silently, when
    that module breaks on import (tests/test_bad_inputs.py did this with asmr_cli.video)."""
    for path in sorted((ROOT / "tests").glob("*.py")):
        assert not re.search(r"importorskip\(\s*[\"']asmr_cli", path.read_text()), path.name


def _imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / "asmr_cli" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("asmr_cli." + (node.module or "")) if node.level else (node.module or "")
            found.add(base.rstrip("."))
            if node.level and not node.module:  # from . import x
                found |= {f"asmr_cli.{a.name}" for a in node.names}
    return found


@pytest.mark.parametrize("module", DECODE_SIDE)
def test_decode_side_modules_never_import_training_code(module):
    assert not {m for m in _imports(module) if m.split(".")[0] == "torch" or m in TRAINING}, module
