"""Format versions 1-2 as a family (core/family.py): the paper's coordinate network, for
images (--model coordinate) and clips."""

from __future__ import annotations

from ..core.family import Family
from . import codec, encoder
from .format import READ_VERSIONS, parse

FAMILY = Family("coordinate", READ_VERSIONS, parse, codec.describe, codec.check_decodable,
                render_image=codec.render_image, decode_frames=codec.decode_frames,
                render_frames=codec.render_frames, encode_image=encoder.encode_image,
                encode_clip=encoder.encode_clip)
