"""Checks on a command's input and output paths, made before any work is done (no typer
here: the light `asmr decode` entry uses them as well as the typer commands)."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import AsmrError


def output_path(inp: Path, out: Path | None, suffix: str) -> Path:
    """The output the user named, or the input's name with `suffix` (added to a folder's
    name, whose dots are not an extension)."""
    if out is not None:
        return Path(out)
    inp = Path(inp)
    return inp.with_name(inp.name + suffix) if inp.is_dir() else inp.with_suffix(suffix)


def names_folder(out: str | Path | None) -> bool:
    """Whether an output names a folder: written with a trailing slash (a str: Path drops
    the slash), or an existing folder."""
    if out is None:
        return False
    return (isinstance(out, str) and out.endswith(("/", os.sep))) or Path(out).is_dir()


def output_in(inp: Path, out: str | Path | None, suffix: str) -> Path:
    """output_path, where an output that names a folder (`-o dir/`) gets the input's
    default name inside it; a folder that does not exist is refused before any work."""
    if names_folder(out):
        folder = Path(out)
        if not folder.is_dir():
            raise AsmrError(f"{out}: no such folder")
        name = Path(inp).name if Path(inp).is_dir() else Path(inp).stem
        return folder / f"{name}{suffix}"
    return output_path(inp, Path(out) if out is not None else None, suffix)


def refuse_overwrite(out: Path, force: bool) -> None:
    """An existing file is replaced only with -f, a folder never; the output's folder must
    exist (found before the work, not after it)."""
    if out.exists() and not force:
        raise AsmrError(f"{out} exists (use -f to overwrite)")
    if out.exists() and out.is_dir():
        raise AsmrError(f"{out} is a directory")
    check_parent(out)


def refuse_folder_overwrite(out: Path, force: bool, frame_exts: set[str]) -> None:
    """A frame folder is replaced only with -f, and only if it holds nothing but frames."""
    if out.exists() and not force:
        raise AsmrError(f"{out} exists (use -f to overwrite)")
    if out.is_dir() and any(p.suffix.lower() not in frame_exts or p.is_dir() for p in out.iterdir()):
        raise AsmrError(f"{out}: folder holds more than frames; not overwriting it")
    check_parent(out)


def check_parent(out: Path) -> None:
    if not out.parent.is_dir():
        raise AsmrError(f"{out}: no such folder {out.parent}")


def read_input(path: Path) -> bytes:
    """The whole input file, or one clear error."""
    if not path.exists():
        raise AsmrError(f"{path}: no such file")
    if path.is_dir():
        raise AsmrError(f"{path}: is a directory")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AsmrError(f"{path}: cannot read ({exc.strerror or exc})") from None
