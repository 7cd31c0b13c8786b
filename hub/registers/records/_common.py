"""What every fleet file parser and writer shares: the checked CSV table and field forms.

Decides: that a file starts with exactly its header, that every row has the header's width
(blank lines skipped), that a ``ValueError`` raised while a row is read becomes a
``RecordError`` naming that line; and the forms of the shared fields (Y/N flags, yyyy-mm-dd
days, required fields) both ways.
Must never: know a record kind or open a file.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Protocol

from hub.reference.mpxn import mpan_problem, mprn_problem
from hub.registers.records.formats import (
    RecordError,
)

_FLAGS = {"Y": True, "N": False}


def flag(text: str, column: str) -> bool:
    """A ``Y``/``N`` field as a bool; anything else is refused naming ``column``."""
    value = _FLAGS.get(text)
    if value is None:
        raise ValueError(f"{column} must be Y or N, not {text!r}")
    return value


def date_parser() -> Callable[[str, str], date]:
    """A strict yyyy-mm-dd parser with a cache (fleet files repeat the same days often)."""
    cache: dict[str, date] = {}

    def parse(text: str, column: str) -> date:
        day = cache.get(text)
        if day is not None:
            return day
        if len(text) != 10 or text[4] != "-" or text[7] != "-":
            raise ValueError(f"{column} {text!r} is not a date yyyy-mm-dd")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{column} {text!r} is not a valid date") from None
        cache[text] = day
        return day

    return parse


def empty(**fields: str) -> str | None:
    """The name of the first empty field, or None."""
    return next((name for name, value in fields.items() if not value), None)


def require(**fields: str) -> None:
    """Refuse the row if any of the named fields is empty."""
    name = empty(**fields)
    if name is not None:
        raise ValueError(f"{name} is empty")


def mpxn_problem(mpxn: str) -> str | None:
    """What is wrong with a meter point number (an MPAN of 13 digits, else an MPRN), or None."""
    return mpan_problem(mpxn) if len(mpxn) == 13 else mprn_problem(mpxn)


class CsvReader(Protocol):
    """What the parsers need of a csv reader: the number of lines read so far."""

    @property
    def line_num(self) -> int: ...


def data_rows(reader: Iterator[list[str]], width: int) -> Iterator[list[str]]:
    """The rows of ``reader``, blank lines skipped; a row of another width is refused."""
    for row in reader:
        if len(row) != width:
            if not row:
                continue  # blank line
            raise ValueError(f"expected {width} columns, found {len(row)}")
        yield row


@contextmanager
def table(
    lines: Iterable[str], file: str, header: tuple[str, ...]
) -> Iterator[tuple[Iterator[list[str]], CsvReader]]:
    """The rows after a checked header, and the reader (for line numbers).

    A ``ValueError`` raised while the rows are read becomes a ``RecordError`` naming the line
    being read, so the parsers below just raise ``ValueError(reason)``.
    """
    reader = csv.reader(lines, strict=True)
    try:
        first = next(reader, None)
        if first is None:
            raise RecordError(file, 1, f"missing header row {','.join(header)}")
        if first:
            first[0] = first[0].removeprefix("\ufeff")
        if tuple(first) != header:
            raise RecordError(file, 1, f"header must be {','.join(header)}, not {','.join(first)}")
        yield data_rows(reader, len(header)), reader
    except RecordError:
        raise
    except csv.Error as exc:
        raise RecordError(file, reader.line_num, f"malformed CSV: {exc}") from None
    except ValueError as exc:
        raise RecordError(file, reader.line_num, str(exc)) from None


def quoted(text: str) -> str:
    """One CSV field, quoted only if it holds a comma, a quote or a line break."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(fields: Iterable[str]) -> str:
    """One CSV line (with its LF ending), quoting only fields that need it."""
    return ",".join(quoted(f) for f in fields) + "\n"


def flag_text(value: bool) -> str:
    """A bool as a ``Y``/``N`` field."""
    return "Y" if value else "N"


def day_text(value: date | None) -> str:
    """A day as a yyyy-mm-dd field; None as an empty one."""
    return "" if value is None else value.isoformat()
