"""The interface every format family implements (coordinate/, latent/, clip/): what it
reads, how it describes and renders a file, how it encodes. api/formats.py holds the
registry; adding a format is a new folder with a `family.py` and one line there.

A family's functions take and return plain data: parsed files (container.file.AsmrFile
with the family's own header), rasters' float arrays, uint8 frames, EncodeResult."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    versions: tuple[int, ...]  # the format versions it reads
    parse: Callable  # (version, header bytes, payload bytes) -> AsmrFile
    describe: Callable  # (header, file bytes, version) -> dict of `asmr stats` fields
    check_decodable: Callable  # (header, max_pixels) -> None; raises AsmrError before any decoding
    # images: (file, (out_h, out_w), (top, left), (bottom, right)) -> (C, h, w) float on [0, 1]
    render_image: Callable | None = None
    # clips: (file, start, end) -> (n, H, W, C) uint8 at the native size
    decode_frames: Callable | None = None
    # clips: (file, start, end, (out_h, out_w), (top, left), (bottom, right)) -> (n, h, w, C) uint8
    render_frames: Callable | None = None
    encode_image: Callable | None = None  # (Raster, EncodeOptions, progress) -> EncodeResult
    encode_clip: Callable | None = None  # (Clip, EncodeOptions, progress) -> EncodeResult
    # collections: ([(name, Raster)], EncodeOptions, progress) -> EncodeResult
    encode_collection: Callable | None = None
