"""The store port: what the drivers need from durable storage, as a typed protocol.

Decides: the contract every store backend keeps (embedded SQLite, in-memory, a server
database later): what a restart loads, that one batch of engine ``Effects`` is applied
atomically (all of it or none of it), which requests a purge forgets, and what the read side
used by the reports returns (filters, order, limits). ``tests/test_store_contract.py`` holds
every implementation to it.
Must never: open a file or a connection, or import a database driver (``hub`` stays pure);
the implementations live with their drivers (``actors.store``) or are pure Python
(``hub.ports.memory_store``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import msgpack

from hub.engine import AuditRecord, Effects, RequestRecord, RequestState
from hub.engine.lifecycle import REMEMBERED_FINGERPRINT_BYTES, REMEMBERED_REASON_CHARS, Remembered
from hub.engine.outbox import Held
from hub.flows.schedules import Schedule
from hub.policies.sla import SlaRecord
from hub.reference.codes import MEANINGS, ResponseCode
from hub.reference.text import bounded
from hub.registers.changes import StoredChange
from hub.registers.inventory import InventoryChange

OPEN_STATES: frozenset[RequestState] = frozenset(
    {RequestState.ACCEPTED, RequestState.AWAITING_OUTCOME}
)
"""Request states the hub still owes something for: an answer (accepted), or the outcome of
a Device-pattern command (awaiting outcome: its 8F66 / 8F67 alert, or E30). Always loaded on
a restart, never purged."""
KEPT_WHOLE: frozenset[RequestState] = frozenset({RequestState.ACCEPTED})
"""Request states a store keeps whole (parameters and signature too): still to be carried out."""


def first_answer(reply: bytes) -> tuple[ResponseCode | None, str | None]:
    """What a store keeps of a request's encoded first answer: its code (None: it had none,
    as a schedule firing) and its reason bounded as the engine remembers it (None: the
    code's own meaning)."""
    if not reply:
        return None, None
    body = msgpack.unpackb(reply, raw=False)
    code = ResponseCode(body["code"])
    reason = bounded(str(body["reason"]), REMEMBERED_REASON_CHARS)
    return code, None if reason == MEANINGS[code] else reason


def answer_bytes(request_id: str, code: ResponseCode | None, reason: str | None) -> bytes:
    """The encoded first answer a store gives back for what ``first_answer`` kept (the same
    bytes the engine repeats to a resubmission)."""
    if code is None:
        return b""
    return Remembered("", request_id, b"", code, reason or MEANINGS[code]).reply


def compact(rec: RequestRecord) -> RequestRecord:
    """What a store keeps of a request, and loads back: all of it while it is still to be
    carried out (``KEPT_WHOLE``; its first answer as ``first_answer`` keeps it); once
    answered (awaiting its outcome, completed) or refused, only what idempotency and a restart
    need: its identity, service, role, times, state, the first
    ``REMEMBERED_FINGERPRINT_BYTES`` of its fingerprint and its first answer. Its device,
    comms hub and head-end are kept only while it awaits its outcome (its E30 names the
    device); no parameters, no signature."""
    reply = answer_bytes(rec.request_id, *first_answer(rec.reply))
    state = rec.state.persisted
    if state in KEPT_WHOLE:
        return replace(rec, state=state, reply=reply)
    awaiting = state is RequestState.AWAITING_OUTCOME
    return replace(
        rec,
        state=state,
        reply=reply,
        fingerprint=rec.fingerprint[:REMEMBERED_FINGERPRINT_BYTES],
        params={},
        signature=b"",
        device_id=rec.device_id if awaiting else None,
        comms_hub=rec.comms_hub if awaiting else None,
        head_end=rec.head_end if awaiting else None,
    )


class StoreConflictError(Exception):
    """A batch broke a uniqueness rule (a request seq or (user, request id) pair, or a delivery
    id, stored twice); nothing of the batch was applied."""


class StoreFailedError(Exception):
    """The storage itself failed (disk full, I/O error, the file gone or locked): nothing of
    the batch was applied, and the store may work again later (``probe`` tells when).

    ``str()`` is the first error the storage reported; the driver's own failures while
    cleaning up (a rollback that fails too) never replace it.
    """


@dataclass(frozen=True, slots=True)
class Restored:
    """What a restart needs from the store."""

    requests: list[RequestRecord]
    """Requests received since the idempotency cut-off, and every request in ``OPEN_STATES``
    whenever received; by seq."""
    deliveries: list[Held]
    """Every held delivery, by delivery id, without its payload (``Store.payloads`` reads
    those when they are pushed), not in flight (no attempts)."""
    next_seq: int
    """The next request seq: the last one persisted, and never below any stored request's."""
    next_delivery: int
    """The next delivery id: the last one persisted, and never below any held delivery's."""
    schedules: list[Schedule]
    """Every live schedule, in no particular order."""
    next_schedule: int
    """The next schedule number: the last one persisted, never below any stored schedule's, so
    the id of a deleted schedule is never reused."""
    transfers: dict[int, int]
    """Firmware transfer progress: request seq -> next block."""
    register_changes: list[StoredChange] = field(default_factory=list)
    """Every register change applied, in the order first applied, with whether its effective
    day has been carried out."""
    inventory_changes: list[InventoryChange] = field(default_factory=list)
    """Every inventory and election change made, in the order made (replayed over the
    fleet's initial inventory)."""
    outcome_unrecorded: list[int] = field(default_factory=list)
    """Seqs of the loaded requests a store of an older schema (SQLite schema 4 and before)
    kept completed without recording whether each still awaited its Device-pattern outcome
    (``HubEngine.restore`` infers it for these as those hubs did); once the engine's restore
    effects are applied, each is stored as it decided and is no longer listed."""


class Store(Protocol):
    """Durable memory of the hub: written by the driver that owns the engine, read by reports.

    One writer at a time (the driver's engine thread or process); readers may be other
    processes where the backend allows it.
    """

    def load(self, since: float) -> Restored:
        """What a restart needs: requests received at or after ``since`` or still open,
        every held delivery (not its payload) and schedule, transfer progress, every
        inventory change in order, and the next ids (``StoreFailedError`` if the storage
        cannot be read)."""
        ...

    def apply(
        self, effects: Effects, next_seq: int, next_delivery: int, next_schedule: int | None = None
    ) -> None:
        """Write one batch of decisions atomically, before anything of it is sent.

        In this order: requests saved (``StoreConflictError`` if a seq or (user, request id) is
        already stored), requests now awaiting their outcome, requests completed, deliveries added (``StoreConflictError`` on a held id)
        and removed, audit and SLA records appended, schedules saved (replacing one of the same
        id) and deleted, transfer progress saved (replacing), register changes saved (a new id
        appended after every stored one; a stored id keeps its place and takes the new
        ``done``), inventory changes appended in order, then the next ids
        (``next_schedule`` only when given). Removing, awaiting or completing what is not stored is no
        error. On any error nothing of the batch is applied; a failure of the storage itself
        (not of the batch) raises ``StoreFailedError``, and the store stays usable for later
        calls.

        A request is stored as ``compact`` gives it: once answered or refused (a refused
        one, an awaiting one from its answer on, a completed one from its completion on) it
        keeps no parameters and no signature, only
        what idempotency and a restart need (its identity, a fingerprint prefix and its first
        answer), so what a store holds per remembered request does not grow with the
        request's size; ``load`` gives back ``compact(record)``.
        """
        ...

    def inventory_history(
        self, device_id: str | None = None, site_id: str | None = None, mpxn: str | None = None
    ) -> list[InventoryChange]:
        """The inventory changes of this device, site or meter point (None: any; several
        given: a change matching any of them), in the order made."""
        ...

    def payloads(self, delivery_ids: list[int]) -> dict[int, bytes]:
        """The payloads of these held deliveries, by delivery id (ids not held are left out;
        ``StoreFailedError`` if the storage cannot be read)."""
        ...

    def probe(self) -> None:
        """Check that the store takes writes again after a ``StoreFailedError``: write and
        commit something of the size of a large batch, then remove it, so nothing a ``load``
        or a report reads changes. Raises ``StoreFailedError`` while it cannot."""
        ...

    def purge_requests(self, before: float) -> int:
        """Forget requests received before ``before`` that are answered or refused (past the
        idempotency window); return how many were forgotten."""
        ...

    def close(self) -> None:
        """Release the store; nothing else is called on it afterwards."""
        ...

    def audit_records(
        self,
        user_id: str | None = None,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit records of this user and this device (None: any), at or after ``since`` and
        before ``until`` (None: unbounded), the newest recorded first (``oldest_first``: in the
        order they were recorded), the first ``limit`` of them in that order (a negative
        limit: all). The limit is kept by the backend's query, so the newest few of a long
        history are found without reading the rest."""
        ...

    def sla_records(
        self, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[SlaRecord]:
        """SLA records of responses made at or after ``since`` (None: from 0) and before
        ``until`` (None: unbounded), of this service (None: any), in the order recorded."""
        ...
