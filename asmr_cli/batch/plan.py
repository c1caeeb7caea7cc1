"""A batch's plan: files, folders and globs expanded into jobs, each with its output path;
inputs that match nothing and outputs that already parse settled before any work."""


from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import AsmrError

# no numpy or torch at import: worker processes set their thread counts before loading them

GLOB_CHARS = "*?["


@dataclass
class FileResult:
    """One input's outcome: status "ok" (stats are `--json`'s fields), "skipped" (its
    output exists and parses) or "failed" (error is one line that names the input)."""
    input: str
    output: str | None
    status: str
    stats: dict = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict:
        out = {"input": self.input, "output": self.output, "status": self.status}
        if self.error is not None:
            out["error"] = self.error
        return {**out, **{k: v for k, v in self.stats.items() if k != "output"}}


@dataclass
class Job:
    kind: str  # "encode" | "decode"
    input: str
    output: str


@dataclass
class Task:
    """What every job of a batch does: the kind, and the options of a single-file run."""
    kind: str
    options: object  # api.EncodeOptions for "encode", jobs.DecodeOptions for "decode"
    frames: str | None = None  # encode: a video's frames START:END


@dataclass
class Batch:
    jobs: list[Job]
    settled: list[FileResult]  # known before any work: inputs that match nothing, outputs to skip

    @property
    def total(self) -> int:
        return len(self.jobs) + len(self.settled)


# -- inputs -> jobs ---------------------------------------------------------------------------

def _wanted(kind: str, path: Path) -> bool:
    """Under a folder: .asmr files to decode; images (video.FRAME_EXTS) and videos to encode."""
    from ..io.video import FRAME_EXTS, VIDEO_READ_EXTS

    ext = path.suffix.lower()
    return ext == ".asmr" if kind == "decode" else ext in FRAME_EXTS | VIDEO_READ_EXTS


def _under(kind: str, folder: Path) -> list[Path]:
    """The inputs of this kind anywhere under a folder, hidden files and folders left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".") and _wanted(kind, Path(f))]
    return found


def _glob_anchor(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard."""
    parts = Path(pattern).parts
    fixed = next((i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARS)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path(".")


def expand_inputs(kind: str, inputs: Iterable, recursive: bool = False
                  ) -> tuple[list[tuple[Path, Path]], list[FileResult]]:
    """Files, folders (their files of this kind, with `recursive`) and glob patterns ->
    ([(file, anchor)], failures), each file once; the anchor is the folder the output tree
    mirrors from. For encode a folder without `recursive` is one input, a clip's frames."""
    found: list[tuple[Path, Path]] = []
    failed: list[FileResult] = []
    for arg in inputs:
        text = str(arg)
        path = Path(text)
        if path.is_dir() and recursive:
            files = _under(kind, path)
            found += [(f, path) for f in files]
            if not files:
                failed.append(FileResult(text, None, "failed", error=f"{text}: no {_noun(kind)} under this folder"))
        elif path.is_dir() and kind == "decode":
            failed.append(FileResult(text, None, "failed",
                                     error=f"{text}: is a directory (add --recursive for the .asmr files in it)"))
        elif path.exists():
            found.append((path, path.parent))
        elif any(c in text for c in GLOB_CHARS):
            anchor = _glob_anchor(text)
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [m for m in matches if m.is_file() and _wanted(kind, m)]
            files += [f for m in matches if m.is_dir() and recursive for f in _under(kind, m)]
            found += [(f, anchor) for f in files]
            if not files:
                failed.append(FileResult(text, None, "failed", error=f"{text}: no {_noun(kind)} matches"))
        else:
            failed.append(FileResult(text, None, "failed", error=f"{text}: no such file"))
    seen, unique = set(), []
    for f, anchor in found:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            unique.append((f, anchor))
    return unique, failed


def _noun(kind: str) -> str:
    return ".asmr file" if kind == "decode" else "image or video"


def plan_batch(kind: str, inputs: Iterable, output_dir: Path | str | None = None, *,
               recursive: bool = False, force: bool = False, fmt: str | None = None) -> Batch:
    """The jobs for these inputs. Outputs go beside the inputs, or with `output_dir` into a
    tree under it that mirrors the inputs' (from the folder that all inputs share). An
    output that exists and parses is skipped unless `force`. `fmt`: decode's `--format`
    (api.files.output_formats), the outputs' extensions."""
    from .jobs import output_parses, output_suffix

    if kind not in ("encode", "decode"):
        raise ValueError(kind)
    files, settled = expand_inputs(kind, inputs, recursive)
    out_root = Path(output_dir) if output_dir is not None else None
    if out_root is not None and out_root.exists() and not out_root.is_dir():
        raise AsmrError(f"-o {out_root}: with several inputs -o names a folder, and this is a file")
    base = os.path.commonpath([os.path.abspath(a) for _, a in files]) if files else ""
    jobs, claimed = [], {}
    for path, _ in files:
        suffix = ".asmr"
        if kind == "decode":
            try:
                suffix = output_suffix(path.read_bytes(), fmt)
            except OSError:
                suffix = output_suffix(b"", fmt)  # the job reports why the input cannot be read
        if out_root is None:
            out = path.with_suffix(suffix)
        else:
            out = (out_root / os.path.relpath(os.path.abspath(path), base)).with_suffix(suffix)
        key = os.path.abspath(out)
        if key in claimed:
            settled.append(FileResult(str(path), str(out), "failed",
                                      error=f"{path}: its output {out} is also {claimed[key]}'s"))
            continue
        claimed[key] = str(path)
        if out.is_dir():
            settled.append(FileResult(str(path), str(out), "failed", error=f"{path}: output {out} is a directory"))
        elif not force and output_parses(out):
            settled.append(FileResult(str(path), str(out), "skipped"))
        else:
            jobs.append(Job(kind, str(path), str(out)))
    return Batch(jobs, settled)
