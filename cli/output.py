"""How results leave the command line for tools: JSON documents and JSON lines.

Decides: the one JSON convention (a stream such as ``listen`` or ``audit`` is JSON lines, one
object a line; a report or a single answer is one document), how values are written (times
as ISO 8601 UTC strings, enums as their domain codes, bytes as hex), and how a wire message
becomes an object (its ``type`` and its fields). The keys are documented in docs/cli.md.
Must never: write through rich (it wraps long lines when stdout is not a terminal) or write
anything but the results on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from typing import Any

from cli.inputs import iso

__all__ = ["document", "humane", "iso", "line", "message_fields", "plain", "record"]


def plain(value: Any) -> Any:
    """A value as JSON can carry it: enums by value, bytes as hex, tuples as lists, maps and
    lists converted all the way down."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    return value


def humane(value: Any) -> Any:
    """A value for people: like ``plain``, and inside maps the numbers under a key ``at`` or
    ending ``_at`` (epoch seconds by the protocol's naming) as ISO 8601 UTC."""
    if isinstance(value, dict):
        return {
            str(k): iso(v)
            if (k == "at" or str(k).endswith("_at"))
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            else humane(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [humane(v) for v in value]
    return plain(value)


def _is_instant(field: dataclasses.Field[Any]) -> bool:
    return "Instant" in str(field.type)


def message_fields(msg: Any) -> dict[str, Any]:
    """A wire message (a dataclass) as a JSON object: ``type`` (its wire kind), then its fields,
    the instants among them as ISO 8601 UTC strings."""
    out: dict[str, Any] = {"type": getattr(msg, "KIND", type(msg).__name__)}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        out[f.name] = iso(value) if _is_instant(f) and value is not None else plain(value)
    return out


def record(obj: Any, times: tuple[str, ...] = ()) -> dict[str, Any]:
    """A dataclass record as a JSON object; the fields named in ``times`` (epoch seconds)
    written as ISO 8601 UTC strings."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = iso(value) if f.name in times and value is not None else plain(value)
    return out


def document(doc: Any) -> None:
    """Print one JSON document (indented, keys in a stable order) on stdout."""
    sys.stdout.write(json.dumps(plain(doc), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def line(obj: Any) -> None:
    """Print one JSON object on one line on stdout (a JSON lines stream), flushed at once so
    a pipe sees each as it happens."""
    sys.stdout.write(json.dumps(plain(obj), ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()
