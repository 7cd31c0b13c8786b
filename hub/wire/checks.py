"""Field checks shared by every wire message: the type, form and limits of each field.

Decides: what a well-formed request id, service reference, device id, alert code, count, instant
and map of wire values is, and the words of the error naming the offending field. Each check
raises ``InvalidMessageError``; received values reach the same checks through the decoder.
Must never: know a message kind or a msgpack byte; never print a hostile value in full (``show``
keeps a reason cheap and ASCII-only).
"""

from __future__ import annotations

import math
import re
from typing import Any

from hub.reference.text import show
from hub.wire.limits import MAX_INSTANT, MAX_VALUE_DEPTH

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""A well-formed request id, whole."""
_DEVICE_ID = re.compile(r"[0-9A-F]{16}")
_SERVICE = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4}){0,7}")
_ALERT_CODE = re.compile(r"[0-9A-Z_]{1,16}")
MPXN_PATTERN = re.compile(r"[0-9]{6,13}")
"""A well-formed meter point (MPAN or MPRN), whole."""


class InvalidMessageError(ValueError):
    """A message was built with a bad field: the fault of the program that built it."""


def check_text(value: object, name: str, max_chars: int) -> None:
    """Non-empty Unicode text of at most ``max_chars`` characters."""
    if type(value) is not str:
        raise InvalidMessageError(f"{name} must be a string, not {show(value)}")
    if not value:
        raise InvalidMessageError(f"{name} must not be empty")
    if len(value) > max_chars:
        raise InvalidMessageError(f"{name} is longer than {max_chars} characters")
    if not value.isascii():
        check_unicode(value, name)


def check_unicode(text: str, name: str) -> None:
    """Text that encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessageError(
            f"{name} holds a lone surrogate, which is not Unicode text"
        ) from None


def check_pattern(value: object, name: str, pattern: re.Pattern[str], form: str) -> None:
    """A string matching ``pattern`` whole; ``form`` says in words what was expected."""
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise InvalidMessageError(f"{name} must be {form}, not {show(value)}")


def check_request_id(value: object) -> None:
    """A request id: 1-64 characters of ``A-Z a-z 0-9 . _ : -``."""
    check_pattern(value, "request_id", REQUEST_ID_PATTERN, "1-64 characters of A-Z a-z 0-9 . _ : -")


def check_service(value: object) -> None:
    """A service reference variant such as ``4.1.1``."""
    check_pattern(value, "service", _SERVICE, "a service reference such as '4.1.1'")


def check_device_id(value: object, *, nullable: bool) -> None:
    """A device EUI-64 as 16 upper-case hex digits (or None where ``nullable``)."""
    if value is None and nullable:
        return
    check_pattern(value, "device_id", _DEVICE_ID, "16 upper-case hexadecimal digits")


def check_alert_code(value: object) -> None:
    """An alert code: 1-16 characters of ``0-9 A-Z _``."""
    check_pattern(value, "alert_code", _ALERT_CODE, "1-16 characters of 0-9 A-Z _")


def check_count(value: object, name: str, low: int, high: int) -> None:
    """An integer (not a bool) from ``low`` to ``high``."""
    if type(value) is not int:  # bool is a subclass of int, and is refused here
        raise InvalidMessageError(f"{name} must be an integer, not {show(value)}")
    if not low <= value <= high:
        raise InvalidMessageError(f"{name} must be from {low} to {high}, not {show(value)}")


def check_instant(value: object, name: str, *, nullable: bool = False) -> None:
    """Seconds since the epoch, from 1970 to the end of year 9999 (or None where ``nullable``)."""
    if value is None and nullable:
        return
    if type(value) is not float and type(value) is not int:
        raise InvalidMessageError(f"{name} must be a number of seconds, not {show(value)}")
    if not 0.0 <= value <= MAX_INSTANT:  # NaN fails this too
        raise InvalidMessageError(
            f"{name} must be seconds since 1970 up to year 9999, not {show(value)}"
        )


def check_map(value: object, name: str, depth: int = 1) -> None:
    """A msgpack map with string keys holding wire values, at most MAX_VALUE_DEPTH deep."""
    if type(value) is not dict:
        raise InvalidMessageError(f"{name} must be a map, not {show(value)}")
    if depth > MAX_VALUE_DEPTH:
        raise InvalidMessageError(f"{name} is nested deeper than {MAX_VALUE_DEPTH} levels")
    for key, item in value.items():
        if type(key) is not str:
            raise InvalidMessageError(f"{name} has a key that is not a string: {show(key)}")
        if not key.isascii():
            check_unicode(key, name)
        check_item(item, name, depth)


def check_item(value: Any, name: str, depth: int) -> None:
    """One value inside a container at level ``depth``; exact types only (no bool for int)."""
    kind = type(value)
    if kind is str:
        if not value.isascii():
            check_unicode(value, name)
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise InvalidMessageError(f"{name} holds an integer outside 64 bits: {show(value)}")
    elif kind is float:
        if not math.isfinite(value):
            raise InvalidMessageError(f"{name} holds a number that is not finite: {value}")
    elif kind is dict:
        check_map(value, name, depth + 1)
    elif kind is list:
        if depth + 1 > MAX_VALUE_DEPTH:
            raise InvalidMessageError(f"{name} is nested deeper than {MAX_VALUE_DEPTH} levels")
        for item in value:
            check_item(item, name, depth + 1)
    elif value is not None and kind is not bool and kind is not bytes:
        raise InvalidMessageError(f"{name} holds a {kind.__name__}, which is not a wire value")
