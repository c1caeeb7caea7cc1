"""The registry of format families: which family reads each format version, and which
encodes an image, a clip or a collection for given options. Adding a format is a new
family folder (core/family.py's interface) and one line in FAMILIES.

A family is imported when a file of its version is read or an encode asks for it, so a
decode loads one family's code (tests/test_imports.py checks that each family's
`FAMILY.versions` matches the table)."""

from __future__ import annotations

import functools
import importlib

from ..container.file import AsmrFile, unframe
from ..core.family import Family
from ..core.options import EncodeOptions

# family package (asmr_cli.<name>.family.FAMILY) -> the format versions it reads
FAMILIES: dict[str, tuple[int, ...]] = {
    "coordinate": (1, 2),
    "latent": (3, 8),
    "clip": (4, 7, 9),
    "collection": (5,),
}
VERSION_FAMILY = {v: name for name, versions in FAMILIES.items() for v in versions}
READ_VERSIONS = tuple(sorted(VERSION_FAMILY))


@functools.cache
def family(name: str) -> Family:
    return importlib.import_module(f"asmr_cli.{name}.family").FAMILY


def loads(data: bytes) -> AsmrFile:
    """Parse and validate a whole file, through the family of its version; every failure
    is an AsmrError."""
    version, header, payload = unframe(data, READ_VERSIONS)
    return family(VERSION_FAMILY[version]).parse(version, header, payload)


def family_of(f: AsmrFile) -> Family:
    return family(VERSION_FAMILY[f.version])


def image_encoder(opts: EncodeOptions) -> Family:
    """Format 3 (the latent pyramid) unless the coordinate network is asked for."""
    return family("coordinate" if opts.coordinate_image() else "latent")


def clip_encoder(opts: EncodeOptions) -> Family:
    """Format 4 (latent pyramids per frame) unless the coordinate network is asked for."""
    return family("coordinate" if opts.coordinate_image() else "clip")


def collection_encoder() -> Family:
    """Format 5: many images sharing one set of networks."""
    return family("collection")
