"""Head-ends: translators between standard messages and each manufacturer's device frames.

Re-exports only; each format lives in its own module (``tlv``, ``cosem``, ``text``) and the
contract in ``base``.
"""

from hub.headends.base import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    EncodeError,
    FrameError,
    HeadEnd,
    HeadEndError,
    HeadEndRegistry,
    IntegrityError,
    UnknownHeadEndError,
    head_end_problems,
)
from hub.headends.cosem import CosemHeadEnd
from hub.headends.text import TextHeadEnd
from hub.headends.tlv import TlvHeadEnd

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "MAX_FRAME_BYTES",
    "CosemHeadEnd",
    "EncodeError",
    "FrameError",
    "HeadEnd",
    "HeadEndError",
    "HeadEndRegistry",
    "IntegrityError",
    "TextHeadEnd",
    "TlvHeadEnd",
    "UnknownHeadEndError",
    "head_end_problems",
]
