"""Collections (format 5): many images in one file sharing one set of networks. Encode a
set of named images, decode one member alone or all of them into a folder tree, add a
member against the frozen networks, list the members. The Python API beside the batch
one; `asmr encode DIR -r --collection`, `asmr decode --member` and `asmr stats` call it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..container.file import KIND_COLLECTION, MAGIC
from ..core.errors import AsmrError
from ..core.metrics import psnr
from ..core.options import DEFAULT_MAX_PIXELS, EncodeOptions, EncodeResult
from ..io.media import Raster
from ..io.sizes import check_region, output_size
from .formats import collection_encoder, family_of, loads

COLLECTION_VERSION = 5


def holds_collection(data: bytes) -> bool:
    """Whether .asmr bytes hold a collection (from the version byte; the parse checks the rest)."""
    return len(data) > 4 and data[:4] == MAGIC and data[4] == COLLECTION_VERSION


def encode_collection(named: list[tuple[str, Raster]], opts: EncodeOptions | None = None,
                      progress=None) -> EncodeResult:
    """[(name, raster)] -> one collection file; names are relative paths (a/b.png)."""
    return collection_encoder().encode_collection(named, opts or EncodeOptions(), progress)


def open_collection(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The parsed collection (networks decoded, members' latents still coded)."""
    from ..collection.codec import unpack

    f = loads(data)
    if f.header.kind != KIND_COLLECTION:
        raise AsmrError("this file holds a single image or clip, not a collection")
    family_of(f).check_decodable(f.header, max_pixels)
    return unpack(f)


def members(data: bytes) -> list[str]:
    return [m.name for m in open_collection(data).members]


def _index(c, name: str) -> int:
    try:
        return c.header.find(name)
    except KeyError:
        near = ", ".join(m.name for m in c.members[:5])
        raise AsmrError(f"no member {name!r} in this collection (it holds {len(c.members)}: {near}"
                        f"{', ...' if len(c.members) > 5 else ''})") from None


def decode_member(data: bytes, name: str, size: tuple[int, int] | None = None, scale: float | None = None,
                  width: int | None = None, height: int | None = None,
                  region: tuple[int, int, int, int] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                  collection=None) -> Raster:
    """One member, at any size or region (as api.images.render_image); only its own latents
    are entropy-decoded."""
    from ..collection.family import member_raster

    c = collection if collection is not None else open_collection(data, max_pixels)
    i = _index(c, name)
    m = c.members[i]
    ow, oh = output_size(m.width, m.height, size, scale, width, height)
    x, y, rw, rh = check_region(region, ow, oh, max_pixels)
    return member_raster(c, i, (oh, ow), (y, x), (y + rh, x + rw))


def member_output(root: Path, name: str) -> Path:
    """Where `decode -o out/` writes a member: its name under the folder, as PNG (the
    name was checked as a relative path of plain parts; checked again here)."""
    out = (root / name).with_suffix(".png") if Path(name).suffix.lower() != ".png" else root / name
    if os.path.commonpath([os.path.abspath(root), os.path.abspath(out)]) != os.path.abspath(root):
        raise AsmrError(f"member {name!r} would be written outside {root}")
    return out


def decode_all(data: bytes, root: Path, force: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Every member into the tree under `root` (names as paths, images as PNG)."""
    from ..collection.family import member_raster
    from ..io.media import write_image

    start = time.perf_counter()
    c = open_collection(data, max_pixels)
    outs = [member_output(root, m.name) for m in c.members]
    if not force:
        taken = [o for o in outs if o.exists()]
        if taken:
            raise AsmrError(f"{taken[0]} exists ({len(taken)} of the members' outputs do); use -f to overwrite")
    for i, out in enumerate(outs):
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, member_raster(c, i))
    return {"output": str(root), "members": len(outs), "decode_seconds": round(time.perf_counter() - start, 4)}


def add_member(data: bytes, name: str, raster: Raster, opts: EncodeOptions | None = None) -> EncodeResult:
    """The collection with one more member coded against its frozen networks (the other
    members' bytes and the networks unchanged)."""
    from ..collection.family import add_member as add

    if not holds_collection(data):
        raise AsmrError("--into: the file is not a collection")
    return add(data, name, raster, opts or EncodeOptions())


def collection_stats(data: bytes, ref: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """The collection's stats, the shared part's bytes and, per member, its bytes (its
    stream; the index is shared), bits per pixel and, with `ref` (the folder the members'
    names are relative to), PSNR."""
    from ..collection.family import describe, member_raster
    from ..io.media import read_image

    c = open_collection(data, max_pixels)
    h = c.header
    stats = describe(h, len(data), COLLECTION_VERSION)
    streams = 4 * sum(m.words for m in h.members)
    stats.update(network_bytes=len(c.records) if h.source.carried else 0, index_bytes=h.index_bytes,
                 framing_bytes=len(data) - streams - h.index_bytes - (len(c.records) if h.source.carried else 0))
    rows, scores = [], []
    for i, m in enumerate(h.members):
        row = {"name": m.name, "width": m.width, "height": m.height, "bytes": 4 * m.words,
               "bpp": round(32.0 * m.words / (m.width * m.height), 4)}
        if ref is not None:
            original = read_image(Path(ref) / m.name, max_pixels)
            decoded = member_raster(c, i)
            if original.pixels.shape != decoded.pixels.shape:
                raise AsmrError(f"--ref {Path(ref) / m.name}: its size does not match the member's")
            row["psnr"] = round(psnr(original.pixels, decoded.pixels, 65535.0 if original.bit_depth == 16 else 255.0),
                                3)
            scores.append(row["psnr"])
        rows.append(row)
    if scores:
        stats["psnr"] = round(sum(scores) / len(scores), 3)
    stats["member_list"] = rows
    return stats
