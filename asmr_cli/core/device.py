"""--device: where an encoder trains. Imports torch (encoders only)."""

from __future__ import annotations

from .errors import AsmrError


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise AsmrError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise AsmrError(f"--device {name}: expected auto, cpu or cuda")
    return name
