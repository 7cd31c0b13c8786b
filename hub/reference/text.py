"""Bounded text for reasons and notes the hub builds from what users sent.

Decides: how long a reason may be (``MAX_REASON_CHARS``, the wire's limit), how an offending
value is pictured in one (``show``: short, ASCII-only, never walking a container or printing a
huge number), and how a list of problems is joined within the limit (``join_reasons``).
Must never: raise on any input; every reason the hub builds passes through ``bounded`` or
``join_reasons`` where it is built, so no constructor downstream has to refuse it.
"""

from __future__ import annotations

from collections.abc import Iterable

MAX_REASON_CHARS = 1024
"""Longest reason text on the wire."""
SHOW_CHARS = 40
"""Characters of a hostile string shown in a reason."""
_ELLIPSIS = "..."


def show(value: object) -> str:
    """A short, ASCII-only picture of an offending value for a reason text."""
    if isinstance(value, str | bytes):
        text = ascii(value[:SHOW_CHARS])
        return text + _ELLIPSIS if len(value) > SHOW_CHARS else text
    if isinstance(value, list | dict | tuple):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, int | float):
        return ascii(value)
    return f"a {type(value).__name__}"


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters (marked with an ellipsis when cut);
    never empty, so it is always a valid reason."""
    if not text:
        return "-"
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(_ELLIPSIS))] + _ELLIPSIS


def join_reasons(parts: Iterable[str], limit: int = MAX_REASON_CHARS, sep: str = "; ") -> str:
    """Problems joined with ``sep`` within ``limit`` characters; those that do not fit are
    counted ("and 17 more problems") rather than cut mid-word."""
    items = [p for p in parts if p]
    if not items:
        return "-"
    out = bounded(items[0], limit)
    for i in range(1, len(items)):
        candidate = out + sep + items[i]
        left = len(items) - i - 1
        tail = f"{sep}and {left} more problems" if left else ""
        if len(candidate) + len(tail) > limit:
            more = len(items) - i
            return bounded(f"{out}{sep}and {more} more problem{'s' * (more != 1)}", limit)
        out = candidate
    return out
