"""A timer thread: run a callback at a wall-clock time, for the live driver.

Decides: nothing; it only fires callbacks in due order.
Must never: run a callback's work itself for long: callbacks should only ``tell`` an actor.
A callback that tells an actor which has stopped is harmless (it happens while the hub stops);
any other exception is a bug: it is logged with its traceback, kept in ``error``, and ends the
thread, so ``is_alive`` turns false for the hub's watchdog.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

import pykka

log = logging.getLogger(__name__)


class TimerService:
    """One daemon thread with a heap of due callbacks."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self.error: BaseException | None = None
        """The exception that ended the thread, if one did."""
        self._thread = threading.Thread(target=self._run, name="dcc-timers", daemon=True)
        self._thread.start()

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the timer thread after ``delay_s`` seconds (never, once
        stopped)."""
        with self._cond:
            heapq.heappush(self._heap, (self._clock() + delay_s, next(self._counter), callback))
            self._cond.notify()

    def stop(self) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        """Whether the thread still runs (false once stopped, or once a callback failed)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:  # kept for the watchdog; the thread ends
            self.error = err
            log.exception("timer callback failed; the timer thread ends", extra={"part": "timers"})

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    timeout = None if not self._heap else max(0.0, self._heap[0][0] - self._clock())
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except pykka.ActorDeadError:
                log.debug("timer fired for an actor that has stopped")
