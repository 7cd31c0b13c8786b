"""The request lifecycle: every state a service request has, the one table of its legal moves,
and the one index of requests the engine keeps.

Decides: which move is legal from which state (``TRANSITIONS``, in the style of h11's
``_state.py``: (state, event) -> next state), how a state is persisted (the store keeps four:
accepted, awaiting outcome, completed, refused), what the index holds for each state (the comms hub queue
counts, the held-until heap, the outcome deadlines, the dispatch order for response timeouts),
when the next of those deadlines falls (``next_due``), and what is remembered of a request for
idempotency: its full record only while it is open; otherwise a compact entry (a digest of user
and request id, the first 16 bytes of its fingerprint, its first answer's code and a bounded
reason), two ints in one dict entry, about 130 bytes whatever the request's size. A refused
request is remembered, and stored, without its parameters.
Must never: decide what a request means (the pipeline and the service flows do), send anything,
or read a clock (``now`` is given).

The comms hub and hub-wide counts are kept per priority class, so a capacity check can count
only the work of a class and the classes above it (a lower class never takes the room of a
higher one).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from array import array
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

import msgpack

from hub import wire
from hub.reference.catalogue import PriorityClass
from hub.reference.codes import MEANINGS, ResponseCode
from hub.reference.roles import Role
from hub.reference.standard import Value
from hub.reference.text import bounded

REMEMBERED_REASON_CHARS = 128
"""Longest reason remembered with a request (a resubmission's answer repeats it)."""
REMEMBERED_FINGERPRINT_BYTES = 16
"""Bytes of a request's fingerprint remembered to tell a resubmission from a reused id."""
MAX_SHARED_REASONS = 4096
"""Distinct reasons remembered once and shared by number; beyond them each is kept inline."""
_CODES: tuple[ResponseCode, ...] = tuple(ResponseCode)
_NO_REPLY = 0xFF  # code byte of a request that had no answer of its own (a schedule firing)
_SHARED = 0x80  # code byte flag: the reason is a number into the shared reasons


class RequestState(StrEnum):
    """Where a request stands. Values of the persisted ones (accepted, awaiting outcome,
    completed, refused) are the text the store keeps."""

    ACCEPTED = "accepted"
    """I99 given; not yet carried out (the state a restart finds unanswered requests in)."""
    REFUSED = "refused"
    """Refused with a code; nothing carried out."""
    HELD = "held"
    """DSP-pattern future dated: the hub holds it until its execution time."""
    QUEUED = "queued"
    """Its command waits in traffic management."""
    DISPATCHED = "dispatched"
    """Its command went to the head-end; the response clock runs."""
    TRANSFERRING = "transferring"
    """A firmware image on its way to the device, block by block."""
    AWAITING_OUTCOME = "awaiting_outcome"
    """Answered, a Device-pattern command awaiting its 8F66 / 8F67 outcome alert (or E30);
    persisted as itself, so a restart awaits exactly these."""
    COMPLETED = "completed"
    """Answered; its response is in the outbox."""

    @property
    def persisted(self) -> RequestState:
        """The state the store keeps for this one (states inside a run map onto four)."""
        return _PERSISTED[self]

    @property
    def in_flight(self) -> bool:
        """Its commands hold a place in a comms hub's queue (counted against its bound)."""
        return self in IN_FLIGHT

    @property
    def final(self) -> bool:
        """No move leaves it."""
        return self in FINAL


class RequestEvent(StrEnum):
    """What happens to a request."""

    HOLD = "hold"
    """DSP future dated: kept by the hub until its execution time."""
    QUEUE = "queue"
    """Its command is offered to traffic management."""
    DISPATCH = "dispatch"
    """Traffic management lets its command start."""
    TRANSFER = "transfer"
    """A firmware block transfer starts (or resumes after a restart)."""
    ANSWER = "answer"
    """Its response is made (any code)."""
    ANSWER_BEFORE_OUTCOME = "answer_before_outcome"
    """Its response is made while its Device-pattern outcome is still awaited."""
    OUTCOME = "outcome"
    """Its 8F66 / 8F67 outcome alert arrived, or its outcome deadline passed (E30)."""


_S, _E = RequestState, RequestEvent

TRANSITIONS: dict[tuple[RequestState, RequestEvent], RequestState] = {
    (_S.ACCEPTED, _E.HOLD): _S.HELD,
    (_S.ACCEPTED, _E.QUEUE): _S.QUEUED,
    (_S.ACCEPTED, _E.TRANSFER): _S.TRANSFERRING,
    (_S.ACCEPTED, _E.ANSWER): _S.COMPLETED,
    (_S.HELD, _E.QUEUE): _S.QUEUED,
    (_S.HELD, _E.ANSWER): _S.COMPLETED,
    (_S.QUEUED, _E.DISPATCH): _S.DISPATCHED,
    (_S.QUEUED, _E.ANSWER): _S.COMPLETED,
    (_S.QUEUED, _E.ANSWER_BEFORE_OUTCOME): _S.AWAITING_OUTCOME,
    (_S.DISPATCHED, _E.ANSWER): _S.COMPLETED,
    (_S.DISPATCHED, _E.ANSWER_BEFORE_OUTCOME): _S.AWAITING_OUTCOME,
    (_S.TRANSFERRING, _E.ANSWER): _S.COMPLETED,
    (_S.AWAITING_OUTCOME, _E.OUTCOME): _S.COMPLETED,
}
"""Every legal move: (state, event) -> next state. Anything else raises ``IllegalMoveError``."""

INITIAL: frozenset[RequestState] = frozenset({_S.ACCEPTED, _S.REFUSED})
"""States a request is decided into."""
FINAL: frozenset[RequestState] = frozenset({_S.REFUSED, _S.COMPLETED})
"""States no move leaves."""
IN_FLIGHT: frozenset[RequestState] = frozenset({_S.QUEUED, _S.DISPATCHED, _S.TRANSFERRING})
"""States whose commands count against the comms hub and hub-wide bounds."""
_PERSISTED: dict[RequestState, RequestState] = {
    _S.ACCEPTED: _S.ACCEPTED,
    _S.REFUSED: _S.REFUSED,
    _S.HELD: _S.ACCEPTED,
    _S.QUEUED: _S.ACCEPTED,
    _S.DISPATCHED: _S.ACCEPTED,
    _S.TRANSFERRING: _S.ACCEPTED,
    _S.AWAITING_OUTCOME: _S.AWAITING_OUTCOME,
    _S.COMPLETED: _S.COMPLETED,
}


class IllegalMoveError(RuntimeError):
    """The engine tried a move the lifecycle table does not allow (a bug in the engine, never
    the user's fault)."""


def next_state(state: RequestState, event: RequestEvent) -> RequestState:
    """The state ``event`` leads to from ``state``; raises ``IllegalMoveError`` if there is none."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalMoveError(f"a request cannot {event.value} when {state.value}") from None


def lifecycle_markdown() -> str:
    """The transition table as a Markdown table (the copy in docs/design.md is this text)."""
    lines = ["| from | event | to |", "| --- | --- | --- |"]
    for (state, event), target in TRANSITIONS.items():
        lines.append(f"| {state.value} | {event.value} | {target.value} |")
    lines.append("")
    lines.append(
        "Initial: "
        + ", ".join(s.value for s in RequestState if s in INITIAL)
        + ". Final: "
        + ", ".join(s.value for s in RequestState if s in FINAL)
        + ". Persisted as: "
        + ", ".join(f"{s.value} -> {s.persisted.value}" for s in RequestState if s.persisted != s)
        + "."
    )
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class RequestRecord:
    """A service request the hub has decided on (persisted for restart and idempotency)."""

    seq: int
    """Hub-assigned sequence number; the device command id is its decimal string."""
    user_id: str
    """The service user that sent it (or owns the schedule that fired it)."""
    request_id: str
    """The user's id for it (idempotency key with ``user_id``)."""
    fingerprint: bytes
    """Digest of the request's content, to tell a resubmission from a reused id."""
    service: str
    """DUIS service reference, e.g. ``4.1.1``."""
    role: Role
    """The role the user acted in."""
    device_id: str | None
    """The target device, if any."""
    params: dict[str, Value]
    """Service parameters."""
    execute_at: float | None
    """Requested execution time (future dated), or None for now."""
    received_at: float
    """When the hub decided on it."""
    state: RequestState
    """Where it stands; moved only by ``RequestIndex.move``."""
    reply: bytes
    """The encoded first answer (acknowledgement or refusal), repeated on resubmission."""
    comms_hub: str | None = None
    """The comms hub the command goes through (device services only)."""
    head_end: str | None = None
    """The head-end that translates it (device services only)."""
    signature: bytes = b""
    """The user's signature of a critical command."""
    scheduled: bool = False
    """A firing of a DCC schedule (travels as bulk)."""
    priority: PriorityClass | None = None
    """The traffic class its commands travel in, set when it is carried out (not persisted:
    a restart carries it out again and sets it again)."""


_CLASSES = len(PriorityClass)


@dataclass(frozen=True, slots=True)
class Remembered:
    """What the index remembers of a request for idempotency, once it is no longer open (and
    while it is): enough to repeat its first answer and to tell a resubmission from reuse."""

    user_id: str
    """The service user that sent it."""
    request_id: str
    """The user's id for it."""
    fingerprint: bytes
    """The first ``REMEMBERED_FINGERPRINT_BYTES`` of its fingerprint."""
    code: ResponseCode | None
    """Its first answer's code (None: it had no answer of its own, as a schedule firing)."""
    reason: str
    """Its first answer's reason, bounded to ``REMEMBERED_REASON_CHARS``."""

    def same_content(self, fingerprint: bytes) -> bool:
        """Whether a request with this (full) fingerprint is a resubmission of this one."""
        return _prefix(fingerprint) == self.fingerprint

    @property
    def reply(self) -> bytes:
        """The encoded first answer, as repeated on resubmission."""
        if self.code is None:
            return b""
        if self.code is ResponseCode.I99:
            return wire.encode(
                wire.Acknowledgement(request_id=self.request_id, code=self.code, reason=self.reason)
            )
        refusal = wire.Refusal(
            request_id=self.request_id, code=self.code, reason=self.reason, retry_after_s=None
        )
        return wire.encode(refusal)


def _first_answer(reply: bytes) -> tuple[ResponseCode | None, str]:
    """The code and bounded reason of an encoded first answer (None: there was none)."""
    if not reply:
        return None, ""
    body = msgpack.unpackb(reply, raw=False)
    code = ResponseCode(body["code"])
    return code, bounded(str(body["reason"]), REMEMBERED_REASON_CHARS)


def _prefix(fingerprint: bytes) -> bytes:
    """The remembered part of a fingerprint (a short one padded)."""
    n = REMEMBERED_FINGERPRINT_BYTES
    return fingerprint[:n].ljust(n, b"\x00")


def _key(user_id: str, request_id: str) -> int:
    """The remembered key of (user, request id): a 128-bit digest, as an int (one object of
    48 bytes, where a bytes object of 16 takes 64)."""
    both = f"{user_id}\x00{request_id}".encode()
    digest = hashlib.blake2b(both, digest_size=16, person=b"dcc-hub-rid-v1").digest()
    return int.from_bytes(digest, "big")


_Entry = int | bytes
"""What is remembered of one request id. Usually an int: fingerprint prefix (128 bits), code
byte (8 bits), shared reason number (16 bits), one object of 48 bytes. When its reason is not
shared (more than ``MAX_SHARED_REASONS`` distinct ones): bytes of the fingerprint prefix, the
code byte and the reason inline."""
_ENTRY_TAIL_BITS = 24  # code byte and reason number below the fingerprint prefix


class RequestIndex:
    """The one index of requests: by (user, request id) for idempotency, by seq for those not
    yet final, and by deadline (held-until heap, outcome deadlines, dispatch order). Every
    change of state goes through ``move``, which keeps the indexes in step."""

    def __init__(self) -> None:
        # idempotency memory: key digest -> entry (``_Entry``); forgotten oldest first, by
        # runs of (received second, count)
        self._memory: dict[int, _Entry] = {}
        self._order: deque[int] = deque()
        self._run_at: array[int] = array("q")  # received second of each run, oldest first
        self._run_len: array[int] = array("q")  # how many ids each run holds
        self._run_head = 0  # runs before it are forgotten
        self._reasons: list[str] = []
        self._reason_numbers: dict[str, int] = {}
        # what the current step added: (record, key digest, the entry it replaced or None),
        # kept only while a step runs (None between steps)
        self._journal: list[tuple[RequestRecord, int, _Entry | None]] | None = None
        self._live: dict[int, RequestRecord] = {}
        self._per_hub: dict[str, list[int]] = {}  # comms hub -> in flight per class
        self._in_flight = [0] * _CLASSES
        self._held: list[tuple[float, int]] = []  # heap of (execute_at, seq); stale ones skipped
        self._outcomes: dict[int, float] = {}  # seq -> outcome deadline, while awaited
        self._outcome_heap: list[tuple[float, int]] = []  # stale entries skipped
        # in dispatch order; an OrderedDict so its head is found at once however many left it
        self._dispatched_at: OrderedDict[int, float] = OrderedDict()

    # ---- membership ----------------------------------------------------------------------

    def add(self, rec: RequestRecord) -> None:
        """Remember a request just decided on (in an initial state). A refused one is made
        compact at once (no parameters or signature, its reply's reason bounded), so that is
        all the store keeps of it too."""
        if rec.state not in INITIAL:
            raise IllegalMoveError(f"a request cannot start {rec.state.value}")
        if rec.state is _S.REFUSED:
            rec.params, rec.signature = {}, b""
            code, reason = _first_answer(rec.reply)
            rec.reply = Remembered(rec.user_id, rec.request_id, b"", code, reason).reply
        if self._journal is not None:
            key = _key(rec.user_id, rec.request_id)
            self._journal.append((rec, key, self._memory.get(key)))
        self._remember(rec)

    def restore(self, rec: RequestRecord, state: RequestState) -> None:
        """Put a request loaded from the store back into ``state``: the state it was stored
        in, or awaiting outcome for one stored completed by a hub that did not keep that state
        (schema 4 and before) whose Device-pattern outcome is still due."""
        stored = rec.state.persisted
        inferred = stored is _S.COMPLETED and state is _S.AWAITING_OUTCOME
        if state is not stored and not inferred:
            raise IllegalMoveError(f"a {rec.state.value} request cannot be restored {state.value}")
        rec.state = state
        self._remember(rec)

    def _remember(self, rec: RequestRecord) -> None:
        key = _key(rec.user_id, rec.request_id)
        code, reason = _first_answer(rec.reply)
        if code is None:
            head = _NO_REPLY
        else:
            head = _CODES.index(code)
            if reason == MEANINGS[code]:
                reason = ""
        number = self._reason_numbers.get(reason)
        if number is None and reason and len(self._reasons) < MAX_SHARED_REASONS:
            number = self._reason_numbers[reason] = len(self._reasons)
            self._reasons.append(reason)
        prefix = _prefix(rec.fingerprint)
        entry: _Entry
        if head == _NO_REPLY or not reason:
            entry = (int.from_bytes(prefix, "big") << _ENTRY_TAIL_BITS) | (head << 16)
        elif number is not None:
            entry = (int.from_bytes(prefix, "big") << _ENTRY_TAIL_BITS) | (head | _SHARED) << 16
            entry |= number
        else:
            entry = prefix + head.to_bytes(1, "big") + reason.encode()
        if key not in self._memory:
            self._order.append(key)
            at = math.ceil(rec.received_at)  # forgotten no earlier than due
            if len(self._run_at) > self._run_head and self._run_at[-1] == at:
                self._run_len[-1] += 1
            else:
                self._run_at.append(at)
                self._run_len.append(1)
        self._memory[key] = entry
        if not rec.state.final:
            self._live[rec.seq] = rec

    def known(self, user_id: str, request_id: str) -> Remembered | None:
        """What is remembered of the request with this id from this user."""
        entry = self._memory.get(_key(user_id, request_id))
        if entry is None:
            return None
        reason = ""
        if isinstance(entry, int):
            fingerprint = (entry >> _ENTRY_TAIL_BITS).to_bytes(REMEMBERED_FINGERPRINT_BYTES, "big")
            head = (entry >> 16) & 0xFF
            if head & _SHARED and head != _NO_REPLY:
                reason = self._reasons[entry & 0xFFFF]
        else:
            fingerprint = entry[:REMEMBERED_FINGERPRINT_BYTES]
            head = entry[REMEMBERED_FINGERPRINT_BYTES]
            reason = entry[REMEMBERED_FINGERPRINT_BYTES + 1 :].decode()
        if head == _NO_REPLY:
            return Remembered(user_id, request_id, fingerprint, None, "")
        code = _CODES[head & ~_SHARED]
        return Remembered(user_id, request_id, fingerprint, code, reason or MEANINGS[code])

    def step_begins(self) -> None:
        """An engine step begins: the requests it adds are noted, so that ``discard_since`` can
        undo them (compact memory cannot be searched by seq)."""
        self._journal = []

    def step_ends(self) -> None:
        """The engine step ended: what it added stays (the note of it is dropped, so it costs
        only what one step adds)."""
        self._journal = None

    def discard_since(self, seq: int) -> list[RequestRecord]:
        """Forget every request numbered ``seq`` or later that the current step added, as if it
        had never been decided (the undo of an engine step that failed); returns them, newest
        first, in the state they had reached."""
        gone: list[RequestRecord] = []
        journal, memory = self._journal or [], self._memory
        while journal and journal[-1][0].seq >= seq:
            rec, key, before = journal.pop()
            gone.append(rec)
            if key not in memory:
                continue  # forgotten already, later in the same step
            if before is not None:
                memory[key] = before
                continue
            del memory[key]
            if self._order and self._order[-1] == key:
                self._order.pop()
                self._run_len[-1] -= 1
                if not self._run_len[-1] and len(self._run_len) > self._run_head:
                    self._run_at.pop()
                    self._run_len.pop()
        seen = {id(r) for r in gone}
        gone += [r for s, r in self._live.items() if s >= seq and id(r) not in seen]
        for rec in gone:
            self._live.pop(rec.seq, None)
            if rec.state.in_flight:
                self._leave_hub(rec)
            self._dispatched_at.pop(rec.seq, None)
            self._outcomes.pop(rec.seq, None)  # heap entries go stale and are skipped
        return gone

    @property
    def remembered(self) -> int:
        """Request ids remembered for idempotency."""
        return len(self._memory)

    def oldest_remembered_at(self) -> float | None:
        """When the oldest remembered request id was received (to the second above), or None."""
        if len(self._run_at) > self._run_head:
            return float(self._run_at[self._run_head])
        return None

    def get(self, seq: int) -> RequestRecord | None:
        """A request not yet final, by seq."""
        return self._live.get(seq)

    def in_state(self, *states: RequestState) -> Iterator[RequestRecord]:
        """Requests not yet final in any of ``states``, in seq order of arrival."""
        return (r for r in self._live.values() if r.state in states)

    def forget(self, now: float, keep_s: float, most: int) -> int:
        """Forget request ids received ``keep_s`` or more before ``now`` and, beyond ``most``
        remembered, the oldest ones early; returns how many were forgotten early. Requests not
        yet final stay indexed by seq."""
        early = 0
        memory, order, run_at, run_len = self._memory, self._order, self._run_at, self._run_len
        head = self._run_head
        while order:
            kept = run_at[head] + keep_s > now
            if kept and len(memory) <= most:
                break
            if kept:
                early += 1
            del memory[order.popleft()]
            run_len[head] -= 1
            if not run_len[head]:
                head += 1
        if head > 1024 and head * 2 > len(run_at):  # drop the forgotten runs' slots
            del run_at[:head]
            del run_len[:head]
            head = 0
        self._run_head = head
        return early

    # ---- moves ---------------------------------------------------------------------------

    def move(self, rec: RequestRecord, event: RequestEvent) -> RequestState:
        """Move a request by ``event`` (raises ``IllegalMoveError`` if the table has no such move)
        and keep every index in step with its new state."""
        before = rec.state
        after = next_state(before, event)
        if before.in_flight and not after.in_flight:
            self._leave_hub(rec)
        if after.in_flight and not before.in_flight:
            self._enter_hub(rec)
        if before in (_S.DISPATCHED, _S.TRANSFERRING):
            self._dispatched_at.pop(rec.seq, None)
        if after is _S.HELD:
            assert rec.execute_at is not None, rec.seq
            heapq.heappush(self._held, (rec.execute_at, rec.seq))
        if after is _S.COMPLETED:
            self._outcomes.pop(rec.seq, None)
        rec.state = after
        if after.final:
            self._live.pop(rec.seq, None)
        return after

    def answer_event(self, rec: RequestRecord, code: ResponseCode) -> RequestEvent:
        """The event of answering this request now with ``code``: before its outcome (the
        device took a Device-pattern command: its 8F66 / 8F67 is still to come), or plainly
        (a failure, E20, E21, H11 among them, ends it: no outcome will come, so no E30 either)."""
        if (
            rec.seq in self._outcomes
            and rec.state in (_S.QUEUED, _S.DISPATCHED)
            and code.is_success
        ):
            return _E.ANSWER_BEFORE_OUTCOME
        if rec.state is _S.AWAITING_OUTCOME:
            return _E.OUTCOME
        return _E.ANSWER

    def _enter_hub(self, rec: RequestRecord) -> None:
        assert rec.comms_hub is not None, rec.seq
        assert rec.priority is not None, rec.seq  # set when it is carried out
        counts = self._per_hub.get(rec.comms_hub)
        if counts is None:
            counts = self._per_hub[rec.comms_hub] = [0] * _CLASSES
        counts[rec.priority] += 1
        self._in_flight[rec.priority] += 1

    def _leave_hub(self, rec: RequestRecord) -> None:
        assert rec.comms_hub is not None, rec.seq
        assert rec.priority is not None, rec.seq
        counts = self._per_hub[rec.comms_hub]
        counts[rec.priority] -= 1
        if not any(counts):
            del self._per_hub[rec.comms_hub]
        self._in_flight[rec.priority] -= 1

    # ---- counts and deadlines -----------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests whose commands are queued, dispatched or transferring, hub-wide."""
        return sum(self._in_flight)

    def in_flight_from(self, priority: PriorityClass) -> int:
        """Requests in flight hub-wide in ``priority`` or a more urgent class."""
        return sum(self._in_flight[: priority + 1])

    def queued_at(self, comms_hub: str, priority: PriorityClass | None = None) -> int:
        """Requests in flight through one comms hub: all of them, or (``priority``) those in
        that class or a more urgent one."""
        counts = self._per_hub.get(comms_hub)
        if counts is None:
            return 0
        return sum(counts if priority is None else counts[: priority + 1])

    def dispatched(self, seq: int, now: float) -> None:
        """A command of a dispatched or transferring request started: its response clock runs
        from ``now``."""
        rec = self._live.get(seq)
        if rec is not None and rec.state in (_S.DISPATCHED, _S.TRANSFERRING):
            self._dispatched_at.pop(seq, None)  # a command started again goes to the back
            self._dispatched_at[seq] = now

    def answered_block(self, seq: int) -> None:
        """A block of a transfer was answered: its response clock stops."""
        self._dispatched_at.pop(seq, None)

    def next_timeout(self, now: float, timeout_s: float = 0.0) -> RequestRecord | None:
        """The earliest-dispatched request whose command started ``timeout_s`` or more before
        ``now`` (its response is overdue), taken off the dispatch clock."""
        for seq, at in self._dispatched_at.items():
            if at + timeout_s > now:
                return None
            del self._dispatched_at[seq]
            return self._live.get(seq)
        return None

    def due_held(self, now: float) -> list[RequestRecord]:
        """Held requests whose execution time has come (taken off the heap)."""
        due = []
        while self._held and self._held[0][0] <= now:
            _, seq = heapq.heappop(self._held)
            rec = self._live.get(seq)
            if rec is not None and rec.state is _S.HELD:
                due.append(rec)
        return due

    def await_outcome(self, rec: RequestRecord, deadline: float) -> None:
        """A Device-pattern command: its outcome alert is awaited until ``deadline``."""
        self._outcomes[rec.seq] = deadline
        heapq.heappush(self._outcome_heap, (deadline, rec.seq))

    def cancel_outcome(self, seq: int) -> None:
        """The command of ``seq`` will not reach its device (displaced before dispatch): its
        outcome alert is no longer awaited."""
        self._outcomes.pop(seq, None)

    def outcome_arrived(self, seq: int) -> RequestRecord | None:
        """The outcome alert of ``seq`` arrived: the request it answers, if it was awaited
        (an answered one completes now)."""
        if self._outcomes.pop(seq, None) is None:
            return None
        rec = self._live.get(seq)
        if rec is not None and rec.state is _S.AWAITING_OUTCOME:
            self.move(rec, _E.OUTCOME)
        return rec

    def due_outcomes(self, now: float) -> list[RequestRecord]:
        """Requests whose outcome deadline has passed without their alert."""
        due = []
        while self._outcome_heap and self._outcome_heap[0][0] <= now:
            deadline, seq = heapq.heappop(self._outcome_heap)
            if self._outcomes.get(seq) != deadline:
                continue  # answered by its alert, or awaited again later
            del self._outcomes[seq]
            rec = self._live.get(seq)
            if rec is not None:
                due.append(rec)
        return due

    # ---- the next deadline ----------------------------------------------------------------

    def next_due(self, now: float, timeout_s: float, keep_s: float, most: int) -> float | None:
        """The earliest instant at which a response times out (``timeout_s`` after its command
        started), a held request comes due, an outcome deadline passes, or a request id is to
        be forgotten (``keep_s`` after it was received; ``now`` while more than ``most`` are
        remembered); None when there is none of these. Costs the heads of the indexes: heap
        entries found stale are dropped on the way, and one found stale only later makes the
        answer early, never late."""
        due: float | None = None
        for head in self._dispatched_at.values():
            due = head + timeout_s
            break
        held, live = self._held, self._live
        while held and not ((r := live.get(held[0][1])) is not None and r.state is _S.HELD):
            heapq.heappop(held)
        if held and (due is None or held[0][0] < due):
            due = held[0][0]
        outcomes, heap = self._outcomes, self._outcome_heap
        while heap and outcomes.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        if heap and (due is None or heap[0][0] < due):
            due = heap[0][0]
        if len(self._memory) > most:
            return now
        oldest = self.oldest_remembered_at()
        if oldest is not None and (due is None or oldest + keep_s < due):
            due = oldest + keep_s
        return due
