"""The command line's logging: configured once, for every command, by ``dcc`` itself.

Decides: the level (``--log-level``, ``DCC_LOG_LEVEL``, ``log_level`` in ``dcc.toml``), the
form of a line (``--log-format``: ``human`` lines for a person at a terminal, or ``json``, one
compact object a line for a log collector), what every line carries (the time in ISO 8601
UTC, the level, the component, which is the logger's name, the message, and the ids a log
call gives through ``extra=``: ``user``, ``request_id``, ``device``, ``part``, ``status``),
that logs go to stderr, and that the death of any thread is logged.
Must never: write to stdout (it carries results), wrap or split a JSON line, or carry a
reading or any other transaction data (log calls give ids, never bodies).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

import typer

IDS = ("user", "request_id", "device", "part", "status")
"""The ``extra=`` keys a line shows, in this order, when a log call gives them."""

log = logging.getLogger(__name__)


class LogLevel(StrEnum):
    """The least severe level that is written."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def number(self) -> int:
        """The ``logging`` module's number for this level."""
        return int(logging.getLevelName(self.value.upper()))


class LogFormat(StrEnum):
    """How a log line is written."""

    HUMAN = "human"
    """``2025-03-03T09:30:00.000Z WARNING actors.store: message user=u-one``."""
    JSON = "json"
    """One JSON object a line: ``time``, ``level``, ``component``, ``message``, the ids."""


def _time(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ids(record: logging.LogRecord) -> dict[str, Any]:
    return {k: getattr(record, k) for k in IDS if getattr(record, k, None) is not None}


class HumanFormatter(logging.Formatter):
    """One line per record (a traceback, when there is one, on the lines after it)."""

    def format(self, record: logging.LogRecord) -> str:
        """``TIME LEVEL COMPONENT: MESSAGE key=value ...``."""
        ids = "".join(f" {k}={v}" for k, v in _ids(record).items())
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}{ids}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One compact JSON object per record, on one line whatever the message holds."""

    def format(self, record: logging.LogRecord) -> str:
        """``{"time", "level", "component", "message", ids..., "exception"?}``."""
        doc: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "component": record.name,
            "message": record.getMessage(),
        }
        doc.update(_ids(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":"))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (as ``logging.lastResort``
    does), so that a replaced stderr (a test runner's) is followed, never written after close."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_handler: logging.Handler | None = None
"""The one handler ``configure`` installed (None before)."""


def configure(
    level: LogLevel, form: LogFormat = LogFormat.HUMAN, stream: TextIO | None = None
) -> None:
    """Send every logger's records at ``level`` or above to ``stream`` (by default the
    current stderr) in ``form``, replacing the handler an earlier call installed; log the
    death of any thread."""
    global _handler
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if form is LogFormat.JSON else HumanFormatter())
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level.number)
    _handler = handler
    threading.excepthook = _thread_died


def _thread_died(args: threading.ExceptHookArgs) -> None:
    exc = (args.exc_type, args.exc_value, args.exc_traceback)
    name = args.thread.name if args.thread is not None else "?"
    log.error("thread %s died", name, exc_info=exc)  # type: ignore[arg-type]


def is_json() -> bool:
    """Whether log lines are JSON (then a command's final error is written as one too)."""
    return _handler is not None and isinstance(_handler.formatter, JsonFormatter)


def refuse(component: str, message: str, status: int) -> None:
    """Write the error that ends a command: a JSON line (level ERROR, whatever the level set)
    when log lines are JSON, else ``error: MESSAGE`` as every command's errors are."""
    if _handler is None or not is_json():
        typer.echo(f"error: {message}", err=True)
        return
    record = logging.getLogger(component).makeRecord(
        component, logging.ERROR, "(dcc)", 0, message, (), None, extra={"status": status}
    )
    _handler.handle(record)
