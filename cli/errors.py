"""The command line's one error convention: what a user is told when something goes wrong.

Decides: the exit statuses (``ExitStatus``), the ``UserError`` a command raises for a problem
the user can fix, which known exceptions of the drivers and the core are user errors (and with
which words and status), and how an error is printed: one line saying what is wrong and, where
there is something to do, one line saying what, both on stderr.
Must never: print a traceback unless asked (``--debug`` or ``DCC_DEBUG=1``), print an error on
stdout, or swallow an exception it does not recognise (those are reported as internal errors
with status 1).
"""

from __future__ import annotations

import errno
import sys
from enum import IntEnum
from typing import TextIO


class ExitStatus(IntEnum):
    """The statuses ``dcc`` exits with (documented in docs/cli.md)."""

    OK = 0
    """Success."""
    FAILURE = 1
    """A runtime failure: hub unreachable, request refused, no response in time, no store."""
    USAGE = 2
    """Bad usage or input: an unknown option or value, a missing or malformed input file, an
    output that cannot be written."""
    SLA_BREACH = 3
    """The run or report breached a service level threshold."""
    INTERRUPTED = 130
    """Stopped by Ctrl-C before it finished."""


class UserError(Exception):
    """A problem the user can fix: what is wrong, what to do about it, and the exit status."""

    def __init__(self, message: str, hint: str = "", status: ExitStatus = ExitStatus.USAGE):
        super().__init__(message, hint, status)
        self.message = message
        """What is wrong, in one line."""
        self.hint = hint
        """What to do about it, in one line (empty when there is nothing to add)."""
        self.status = status
        """The exit status."""

    def __str__(self) -> str:
        return self.message


def _os_error(exc: OSError) -> UserError:
    """A file-system error on an input or an output."""
    name = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    text = f"{name}: {what}" if name else str(exc)
    if isinstance(exc, FileNotFoundError):
        hint = "check the path (and the --fleet, --data, --out or --config options)"
        return UserError(str(exc) if exc.strerror is None else text, hint)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(text, "choose a directory you can write to (for example --out)")
    return UserError(text, "check the path and the disk")


def explain(exc: BaseException) -> UserError | None:
    """The user error an exception stands for, or None when it is not a known user error.

    Known: ``UserError`` itself; a fleet file's ``RecordError``, a scenario's
    ``ScenarioError`` and a message field the wire protocol refuses (input, status 2); file-system errors on inputs and outputs (status 2);
    a ZeroMQ address already in use (status 1); a hub that does not answer (status 1).
    """
    if isinstance(exc, UserError):
        return exc
    from hub.registers.records import RecordError  # imported only when failing

    if isinstance(exc, RecordError):
        return UserError(
            str(exc), "fix that line of the fleet file (the format is in docs/fleet-files.md)"
        )
    scenario = sys.modules.get("meters_sim.scenario")
    if scenario is not None and isinstance(exc, scenario.ScenarioError):
        if not exc.key and "cannot be read" in exc.reason:
            return UserError(str(exc), "check the scenario file's path (scenarios/ holds examples)")
        return UserError(str(exc), "fix those keys (the format is in docs/scenarios.md)")
    checks = sys.modules.get("hub.wire.checks")
    if checks is not None and isinstance(exc, checks.InvalidMessageError):
        return UserError(
            f"the hub would refuse this message: {exc}",
            "correct that option (docs/protocol.md gives the form of every field)",
        )
    zmq = sys.modules.get("zmq")
    if zmq is not None and isinstance(exc, zmq.ZMQError):
        if exc.errno == errno.EADDRINUSE:
            return UserError(
                f"the address is already in use: {exc}",
                "is another hub running there? choose another --endpoint",
                ExitStatus.FAILURE,
            )
        return UserError(f"ZeroMQ error: {exc}", "check the --endpoint", ExitStatus.FAILURE)
    if isinstance(exc, TimeoutError):
        return UserError(str(exc), "is the hub running at that endpoint?", ExitStatus.FAILURE)
    if isinstance(exc, OSError):
        return _os_error(exc)
    return None


def internal(exc: BaseException) -> UserError:
    """An unexpected exception, reported in one line (a defect, not the user's fault)."""
    return UserError(
        f"internal error: {type(exc).__name__}: {exc}",
        "run again with --debug (or DCC_DEBUG=1) to see the traceback, and report it",
        ExitStatus.FAILURE,
    )


def report(err: UserError, stream: TextIO | None = None) -> None:
    """Print an error and its hint on stderr, one line each."""
    out = stream if stream is not None else sys.stderr
    lines = err.message.splitlines() or [""]
    out.write(f"error: {lines[0]}\n")
    for more in lines[1:]:  # a scenario file's further problems, one per line
        out.write(f"       {more}\n")
    if err.hint:
        out.write(f"hint: {err.hint}\n")
    out.flush()
