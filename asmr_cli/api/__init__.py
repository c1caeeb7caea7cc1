"""The library API, one way in for every kind and format version: encode an image or a
clip to .asmr bytes, decode or render them, report stats. The CLI and the batch runner
call these; api/formats.py dispatches to the format families."""

from ..core.errors import AsmrError
from ..core.options import EncodeOptions, EncodeResult
from .clips import decode_video, encode_clip, holds_video, read_video_stats, render_clip
from .collections import (
    add_member,
    collection_stats,
    decode_all,
    decode_member,
    encode_collection,
    holds_collection,
    members,
    open_collection,
)
from .formats import loads
from .images import decode_bytes, describe, encode_raster, read_stats, render_image

__all__ = ["AsmrError", "EncodeOptions", "EncodeResult", "add_member", "collection_stats", "decode_all",
           "decode_bytes", "decode_member", "decode_video", "describe", "encode_clip", "encode_collection",
           "encode_raster", "holds_collection", "holds_video", "loads", "members", "open_collection", "read_stats",
           "read_video_stats", "render_clip", "render_image"]
