"""Fault containment of engine steps: a step that raises is answered, audited, counted, alerted
and undone, and its traceback is handed to the driver as data.

Decides: which calls are guarded (the engine's public entry points, marked ``@contained``),
what a failed step leaves behind (nothing it started: the requests it created are forgotten,
their queued commands withdrawn, the traffic places they reserved given back, the deliveries
it made dropped, the counters as they were), and what it returns instead (an ``H12`` refusal
to the frame's sender, an ``internal_error`` audit record, a hub-wide ``INTERNAL_ERROR`` hub
alert in the operator's audit, ``counters["internal_error"]``, and an ``EngineFault``).
Must never: log, print, or write anything (the traceback is text in ``Effects.faults``; the
driver logs it); raise, whatever the step raised; or catch ``BaseException`` that is not an
``Exception`` (a KeyboardInterrupt or SystemExit ends the driver as it should).
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from hub.engine.effects import Effects, EngineFault
from hub.reference.text import bounded

MAX_TRACEBACK_CHARS = 16_000
"""Most characters of a fault's traceback kept (its end, where the failing line is)."""

INTERNAL_ERROR_ALERT = "INTERNAL_ERROR"
"""Hub alert code of a contained failure (recorded in the operator's audit)."""

INTERNAL_ERROR_REASON = (
    "internal error: the hub failed while handling this frame and changed nothing; "
    "resubmit it later with the same request id"
)
"""The reason of the H12 refusal answering a frame whose step failed."""


@dataclass(frozen=True, slots=True)
class StepMark:
    """Where the engine stood when a guarded step began (what undoing it goes back to)."""

    seq: int
    """The next request seq: requests numbered from here were created by the step."""
    delivery: int
    """The next delivery id: deliveries numbered from here were made by the step."""
    counters: dict[str, int]
    """A copy of the counters."""


class Guarded(Protocol):
    """What ``contained`` needs of the engine it guards."""

    def _step_begin(self) -> StepMark | None: ...

    def _step_end(self) -> None: ...

    def _contain(
        self,
        where: str,
        err: Exception,
        mark: StepMark,
        frame: tuple[str, bytes] | None,
        now: float,
    ) -> Effects: ...


F = TypeVar("F", bound=Callable[..., Effects])


def contained(where: str, *, answers_frame: bool = False) -> Callable[[F], F]:
    """Guard a public engine entry point: whatever it raises is contained (see the module
    docstring). ``answers_frame``: its first two arguments are the user id and the frame, which
    is answered H12. A guarded call made from inside another one runs unguarded (the outer one
    contains it). ``now`` is the last positional argument (or the keyword ``now``)."""

    def wrap(step: F) -> F:
        @functools.wraps(step)
        def guarded(self: Guarded, *args: Any, **kwargs: Any) -> Effects:
            mark = self._step_begin()
            if mark is None:  # inside a guarded step already
                return step(self, *args, **kwargs)
            try:
                return step(self, *args, **kwargs)
            except Exception as err:
                now = kwargs.get("now", args[-1] if args else 0.0)
                frame = _frame_of(args) if answers_frame else None
                return self._contain(where, err, mark, frame, _instant(now))
            finally:
                self._step_end()

        return cast("F", guarded)

    return wrap


def fault_of(where: str, err: BaseException) -> EngineFault:
    """An exception as data: where, its type, its message and its traceback, bounded."""
    try:
        text = "".join(traceback.format_exception(err))
    except Exception:  # a hostile __str__ or __repr__: the type is still worth reporting
        text = f"{type(err).__qualname__} (traceback unavailable)"
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-(MAX_TRACEBACK_CHARS - 4) :]
    try:
        message = bounded(str(err))
    except Exception:
        message = "(message unavailable)"
    return EngineFault(where, type(err).__qualname__, message, text)


def _frame_of(args: tuple[Any, ...]) -> tuple[str, bytes] | None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], bytes):
        return args[0], args[1]
    return None


def _instant(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
