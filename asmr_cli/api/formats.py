"""The registry of format families: which family reads each format version, and which
encodes an image or a clip for given options. Adding a format is a new family folder
(core/family.py's interface) and one line in FAMILIES."""

from __future__ import annotations

from ..clip.family import FAMILY as CLIP
from ..container.file import AsmrFile, unframe
from ..coordinate.family import FAMILY as COORDINATE
from ..core.family import Family
from ..core.options import EncodeOptions
from ..latent.family import FAMILY as LATENT

FAMILIES: tuple[Family, ...] = (COORDINATE, LATENT, CLIP)
BY_VERSION: dict[int, Family] = {v: f for f in FAMILIES for v in f.versions}
READ_VERSIONS = tuple(sorted(BY_VERSION))


def loads(data: bytes) -> tuple[AsmrFile, Family]:
    """Parse and validate a whole file; every failure is an AsmrError."""
    version, header, payload = unframe(data, READ_VERSIONS)
    family = BY_VERSION[version]
    return family.parse(version, header, payload), family


def image_encoder(opts: EncodeOptions) -> Family:
    """Format 3 (the latent pyramid) unless the coordinate network is asked for."""
    return COORDINATE if opts.coordinate_image() else LATENT


def clip_encoder(opts: EncodeOptions) -> Family:
    """Format 4 (latent pyramids per frame) unless the coordinate network is asked for."""
    return COORDINATE if opts.coordinate_image() else CLIP
