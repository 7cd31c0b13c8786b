"""The live hub's register change feed: change files dropped into ``<fleet>/inbox/``, offered to
the running engine one file at a time, in name order.

Decides: which files of the inbox are change files (``<register>-<name>.csv``; anything else is
left alone), that a file over ``MAX_CHANGE_FILE_BYTES`` or not UTF-8 or with a bad row is
refused whole (the engine audits it; the file moves to ``inbox/rejected/`` beside a
``<name>.reason`` file saying file, line and reason), that a file is parsed whole before the
engine sees any of it, and that a file moves to ``inbox/applied/`` only once the engine has
applied it and its store has committed (a kill -9 before the move offers it again at the next
start, and the store's applied change ids make that a repeat that changes nothing).
Must never: apply a change itself (the engine does, in the front door's thread), or move a file
the engine has not answered for (an outage of the store leaves it in the inbox, offered again).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.registers.change_files import MAX_CHANGE_FILE_BYTES, parse_change_file, register_of
from hub.registers.changes import ChangeBatch
from hub.registers.records import RecordError

log = logging.getLogger(__name__)

INBOX_DIR = "inbox"
"""The inbox beside the fleet files."""
APPLIED_DIR = "applied"
"""Where applied files go (under the inbox)."""
REJECTED_DIR = "rejected"
"""Where refused files go (under the inbox), each with a ``.reason`` file."""
DEFAULT_POLL_S = 2.0
"""How often the inbox is looked at."""
ANSWER_WAIT_S = 30.0
"""How long the feed waits for the engine's answer to one file before trying it again later."""


@dataclass(frozen=True, slots=True)
class RegisterBatch:
    """Message to the front door: apply this batch of register changes."""

    batch: ChangeBatch
    """The changes of one file (or the reason it could not be read)."""


@dataclass(frozen=True, slots=True)
class FileResult:
    """What became of one change file."""

    name: str
    """The file's name."""
    applied: int
    """Changes applied now."""
    repeated: int
    """Changes applied before (a file offered again after a restart)."""
    refused: str | None
    """Why the file was refused (``file:line: reason``), or None."""


Offer = Callable[[ChangeBatch], "tuple[int, int, str | None] | None"]
"""Hands a batch to the engine and waits for its answer: (applied, repeated, refused reason),
or None when there was none in time (the file stays, to be offered again)."""


def read_batch(path: Path) -> ChangeBatch:
    """One change file read whole and parsed (a batch with a ``problem`` if it will not do)."""
    name = path.name
    register = register_of(name)
    if register is None:
        return ChangeBatch(name, problem=f"{name}:0: not a change file name")
    size = path.stat().st_size
    if size > MAX_CHANGE_FILE_BYTES:
        return ChangeBatch(
            name, problem=f"{name}:0: {size} bytes, more than {MAX_CHANGE_FILE_BYTES}"
        )
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return ChangeBatch(name, problem=f"{name}:0: not UTF-8 ({err.reason})")
    try:
        changes = parse_change_file(text.splitlines(keepends=True), name, register)
    except RecordError as err:
        return ChangeBatch(name, problem=f"{err.file}:{err.line}: {err.reason}")
    return ChangeBatch(name, changes)


class RegisterFeed:
    """Looks at an inbox every ``poll_s`` in a thread of its own and offers each change file."""

    def __init__(self, inbox: Path, offer: Offer, poll_s: float = DEFAULT_POLL_S) -> None:
        self.inbox = inbox
        """The inbox directory (created if missing)."""
        self._offer = offer
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.error: BaseException | None = None
        """The exception that ended the thread, if one did."""
        self.results: list[FileResult] = []
        """Every file handled, in order (most recent last; bounded)."""
        self._thread = threading.Thread(target=self._run, name="dcc-register-feed", daemon=True)

    def start(self) -> RegisterFeed:
        """Create the inbox and its folders and start the thread."""
        for d in (self.inbox, self.inbox / APPLIED_DIR, self.inbox / REJECTED_DIR):
            d.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (a file being offered is finished first, or left in the inbox)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=ANSWER_WAIT_S + 5)

    def is_alive(self) -> bool:
        """Whether the thread runs."""
        return self._thread.is_alive()

    def poke(self) -> None:
        """Look at the inbox now rather than at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.poll_once()
                except OSError as err:  # a file gone or unwritable meanwhile: next poll
                    log.warning(
                        "register inbox %s could not be read or tidied (%s); trying again",
                        self.inbox,
                        err,
                        extra={"part": "register-feed"},
                    )
                self._wake.wait(self._poll_s)
                self._wake.clear()
        except Exception as err:  # kept for the watchdog; the thread ends
            self.error = err
            log.exception("register feed failed; its thread ends", extra={"part": "register-feed"})

    def poll_once(self) -> list[FileResult]:
        """Offer every change file of the inbox, in name order; return what became of each
        one answered."""
        done: list[FileResult] = []
        names = sorted(p.name for p in self.inbox.iterdir() if p.is_file() and register_of(p.name))
        for name in names:
            if self._stop.is_set():
                break
            batch = read_batch(self.inbox / name)
            answer = self._offer(batch)
            if answer is None:
                log.warning("no answer for register change file %s; it is offered again", name)
                break  # keep the order: nothing after it goes first
            applied, repeated, refused = answer
            result = FileResult(name, applied, repeated, refused)
            self._settle(result)
            done.append(result)
            self.results.append(result)
            del self.results[:-1000]
        return done

    def _settle(self, result: FileResult) -> None:
        source = self.inbox / result.name
        if result.refused is None:
            os.replace(source, self.inbox / APPLIED_DIR / result.name)
            log.info(
                "register change file %s applied (%d changes, %d repeated)",
                result.name,
                result.applied,
                result.repeated,
            )
            return
        rejected = self.inbox / REJECTED_DIR
        (rejected / f"{result.name}.reason").write_text(result.refused + "\n", encoding="utf-8")
        os.replace(source, rejected / result.name)
        log.warning("register change file %s refused: %s", result.name, result.refused)
