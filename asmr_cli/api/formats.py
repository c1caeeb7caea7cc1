"""The registry of format families: which family reads each format version, and which
encodes an image or a clip for given options. Adding a format is a new family folder
(core/family.py's interface) and one line in FAMILIES."""

from __future__ import annotations

from ..clip.family import FAMILY as CLIP
from ..collection.family import FAMILY as COLLECTION
from ..container.file import AsmrFile, unframe
from ..coordinate.family import FAMILY as COORDINATE
from ..core.family import Family
from ..core.options import EncodeOptions
from ..latent.family import FAMILY as LATENT

FAMILIES: tuple[Family, ...] = (COORDINATE, LATENT, CLIP, COLLECTION)
BY_VERSION: dict[int, Family] = {v: f for f in FAMILIES for v in f.versions}
READ_VERSIONS = tuple(sorted(BY_VERSION))


def loads(data: bytes) -> AsmrFile:
    """Parse and validate a whole file, through the family of its version; every failure
    is an AsmrError."""
    version, header, payload = unframe(data, READ_VERSIONS)
    return BY_VERSION[version].parse(version, header, payload)


def family_of(f: AsmrFile) -> Family:
    return BY_VERSION[f.version]


def image_encoder(opts: EncodeOptions) -> Family:
    """Format 3 (the latent pyramid) unless the coordinate network is asked for."""
    return COORDINATE if opts.coordinate_image() else LATENT


def clip_encoder(opts: EncodeOptions) -> Family:
    """Format 4 (latent pyramids per frame) unless the coordinate network is asked for."""
    return COORDINATE if opts.coordinate_image() else CLIP


def collection_encoder() -> Family:
    """Format 5: many images sharing one set of networks."""
    return COLLECTION
