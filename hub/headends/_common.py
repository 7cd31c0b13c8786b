"""Checks every head-end shares: what a frame must be on arrival, what a message field must be
before it is written.

Decides: that a frame is bytes no longer than ``MAX_FRAME_BYTES``, that a text field is valid
Unicode, that an instant is a finite number, that a message mapping is a mapping, and that a
written frame fits the size limit; each failure is raised as the head-end's own error.
Must never: know a vendor format; the formats live in their own modules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hub.headends.base import MAX_DEPTH, MAX_FRAME_BYTES, EncodeError, FrameError
from hub.reference.standard import CommandStatus, Value


def received(head_end: str, frame: object) -> bytes:
    """``frame`` as bytes, or ``FrameError`` if it is not bytes or is too large."""
    if isinstance(frame, bytearray | memoryview):
        frame = bytes(frame)
    if not isinstance(frame, bytes):
        raise FrameError(head_end, f"a frame is bytes, not {type(frame).__name__}")
    if len(frame) > MAX_FRAME_BYTES:
        raise FrameError(head_end, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    return frame


def sendable(head_end: str, frame: bytes) -> bytes:
    """``frame`` unchanged, or ``EncodeError`` if a peer would refuse it as too large."""
    if len(frame) > MAX_FRAME_BYTES:
        raise EncodeError(head_end, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    return frame


def utf8(head_end: str, what: str, text: object) -> bytes:
    """``text`` encoded as UTF-8, or ``EncodeError`` if it is not a valid Unicode string."""
    if not isinstance(text, str):
        raise EncodeError(head_end, f"{what} must be a str, not {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(head_end, f"{what} is not valid Unicode (lone surrogate)") from None


def text(head_end: str, what: str, value: object) -> str:
    """``value`` if it is a valid Unicode string, else ``EncodeError``."""
    utf8(head_end, what, value)
    assert isinstance(value, str)  # checked by utf8
    return value


def instant(head_end: str, what: str, value: object) -> float:
    """``value`` as a finite float, or ``EncodeError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EncodeError(head_end, f"{what} must be a number, not {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise EncodeError(head_end, f"{what} is out of the float range") from None
    if not math.isfinite(result):
        raise EncodeError(head_end, f"{what} must be finite, got {result!r}")
    return result


def finite(head_end: str, value: float) -> float:
    """``value`` if finite, else ``EncodeError``."""
    if not math.isfinite(value):
        raise EncodeError(head_end, f"floats must be finite, got {value!r}")
    return value


def message_map(head_end: str, what: str, value: object) -> Mapping[str, Value]:
    """``value`` if it is a mapping (its keys are checked as it is written), else ``EncodeError``."""
    if not isinstance(value, Mapping):
        raise EncodeError(head_end, f"{what} must be a mapping, not {type(value).__name__}")
    return value


def octets(head_end: str, what: str, value: object) -> bytes:
    """``value`` if it is bytes, else ``EncodeError``."""
    if not isinstance(value, bytes):
        raise EncodeError(head_end, f"{what} must be bytes, not {type(value).__name__}")
    return value


def status(head_end: str, value: object) -> CommandStatus:
    """``value`` if it is a ``CommandStatus``, else ``EncodeError``."""
    if not isinstance(value, CommandStatus):
        raise EncodeError(head_end, f"status must be a CommandStatus, not {value!r}")
    return value


def depth_exceeded(head_end: str) -> EncodeError:
    """The error for a value nested deeper than ``MAX_DEPTH``."""
    return EncodeError(head_end, f"values nest deeper than {MAX_DEPTH} levels")


def not_a_value(head_end: str, value: object) -> EncodeError:
    """The error for an object that is not a ``Value``."""
    return EncodeError(head_end, f"{type(value).__name__} is not a Value")


def int_out_of_range(head_end: str, value: int) -> EncodeError:
    """The error for an integer outside the int64 range."""
    return EncodeError(head_end, f"integer {value} is outside the int64 range")
