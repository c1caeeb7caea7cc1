"""The .asmr container: magic, version, header, payload, crc32 on each part.

Layout (all integers little-endian; docs/format.md lists every field):

    magic "ASMR" | version u8 | header_len u32 | header | header_crc u32
    | payload_len u32 | payload | payload_crc u32

The container knows the framing and the caps every format shares; what a header and a
payload hold is each format family's (coordinate/format.py, latent/format.py,
clip/format.py), and api/formats.py says which family reads which version.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..core.errors import AsmrError
from .records import Reader, check

MAGIC = b"ASMR"
MAX_HEADER = 4096

KIND_IMAGE, KIND_VIDEO = 0, 1
KIND_COLLECTION = 2  # format 5: many images sharing networks
# caps shared by every format's header
MAX_AXIS = 1 << 20
MAX_SAMPLES = 1 << 34  # T*H*W declared by a header
MAX_CHANNELS = 4


@dataclass
class AsmrFile:
    """A parsed file: its family's header, the coded tensors (networks) and, for latent
    formats, the coded latent streams."""

    header: object
    tensors: list = field(default_factory=list)
    version: int = 0
    grids: list = field(default_factory=list)  # latent formats: a tensors.CodedStream per grid or group


def frame(version: int, header: bytes, payload: bytes) -> bytes:
    """A whole file from its version, header bytes and payload bytes."""
    return (MAGIC + struct.pack("<BI", version, len(header)) + header
            + struct.pack("<I", zlib.crc32(header)) + struct.pack("<I", len(payload)) + payload
            + struct.pack("<I", zlib.crc32(payload)))


def unframe(data: bytes, versions: tuple[int, ...]) -> tuple[int, bytes, bytes]:
    """(version, header bytes, payload bytes), every length and checksum checked; a
    version outside `versions` (the ones this build reads) is refused."""
    r = Reader(data, "file")
    if len(data) < 4 or data[:4] != MAGIC:
        raise AsmrError("not an .asmr file (bad magic bytes)")
    r.take(4)
    version, header_len = r.unpack("BI")
    if version not in versions:
        raise AsmrError(f"unsupported .asmr format version {version} (this build reads "
                        f"{', '.join(map(str, versions))})")
    check(header_len <= MAX_HEADER, f"header length {header_len}")
    header = r.take(header_len)
    crc, = r.unpack("I")
    check(zlib.crc32(header) == crc, "header checksum mismatch")
    payload_len, = r.unpack("I")
    payload = r.take(payload_len)
    crc, = r.unpack("I")
    check(zlib.crc32(payload) == crc, "payload checksum mismatch")
    check(r.done(), "trailing bytes after the payload")
    return version, header, payload
