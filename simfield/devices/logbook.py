"""Bounded logs of fixed-width integer records, stored flat in an ``array``.

Decides: how a device keeps its logs (event, security, billing snapshots, top-ups, daily
reads) small: each record is a few 64-bit integers (instants in milliseconds, money in
millipence, codes as integers), 8 bytes a field instead of a Python object per value.
Must never: grow past its limit; the oldest record is dropped first.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from hub.reference.standard import Instant


def to_ms(at: Instant) -> int:
    """An instant as integer milliseconds."""
    return round(at * 1000.0)


def from_ms(ms: int) -> Instant:
    """Integer milliseconds as an instant."""
    return ms / 1000.0


def code_number(code: str) -> int:
    """An alert or event code (``8F35``, ``AD1``: both hex) as an integer."""
    return int(code, 16)


def code_text(number: int) -> str:
    """The code of ``code_number``: four hex digits, or ``AD1``."""
    return f"{number:04X}" if number >= 0x1000 else f"{number:X}"


class RecordLog:
    """A bounded log of records of ``width`` integers each."""

    __slots__ = ("_data", "_limit", "_width")

    def __init__(self, width: int, limit: int) -> None:
        self._data: array[int] | None = None  # allocated on the first record
        self._width = width
        self._limit = limit

    def append(self, *fields: int) -> None:
        """Add a record (exactly ``width`` integers); drop the oldest past the limit."""
        if len(fields) != self._width:
            raise ValueError(f"a record has {self._width} fields, got {len(fields)}")
        if self._data is None:
            self._data = array("q")
        self._data.extend(fields)
        if len(self._data) > self._width * self._limit:
            del self._data[: self._width]

    def contents(self) -> tuple[int, int, array[int]]:
        """(width, limit, the flat records) for the field's snapshot."""
        return self._width, self._limit, self._data if self._data is not None else array("q")

    @classmethod
    def from_contents(cls, width: int, limit: int, data: array[int]) -> RecordLog:
        """A log holding ``data`` (flat records of ``contents``); ``ValueError`` if it is not
        whole records within the limit."""
        if width < 1 or len(data) % width or len(data) > width * limit:
            raise ValueError(f"{len(data)} values are not whole records of {width} within {limit}")
        log = cls(width, limit)
        log._data = data if len(data) else None
        return log

    def __len__(self) -> int:
        return len(self._data or ()) // self._width

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        data, width = self._data or array("q"), self._width
        for i in range(0, len(data), width):
            yield tuple(data[i : i + width])
