"""An in-memory store: the ``Store`` contract kept in plain Python structures.

Decides: nothing beyond the contract; it keeps the same records, in the same shapes, as the
SQLite store does (requests, deliveries, schedules as their plain records, transfer progress,
register changes, audit, SLA, the next ids), for drivers that need no durability across processes (the
simulator, tests).
Must never: share a mutable record with its caller (what is applied is copied, what is loaded
is a fresh copy, as a database would give), apply part of a batch, or do any I/O.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from hub.engine import AuditRecord, Effects, RequestRecord, RequestState
from hub.engine.outbox import Delivery
from hub.flows.schedules import Schedule
from hub.policies.sla import SlaRecord
from hub.ports.store import OPEN_STATES, Restored, Store, StoreConflictError, compact
from hub.reference.standard import Value
from hub.registers.changes import StoredChange
from hub.registers.inventory import InventoryChange


class MemoryStore(Store):
    """Requests, deliveries, schedules, audit and SLA records held in memory (see ``Store``)."""

    def __init__(self) -> None:
        self._requests: dict[int, RequestRecord] = {}
        self._request_keys: dict[tuple[str, str], int] = {}
        self._deliveries: dict[int, Delivery] = {}
        self._schedules: dict[str, dict[str, Value]] = {}
        self._transfers: dict[int, int] = {}
        self._register_changes: dict[str, StoredChange] = {}  # in the order first applied
        self._audit: list[AuditRecord] = []
        self._sla: list[SlaRecord] = []
        self._inventory: list[InventoryChange] = []
        self._next_seq = 1
        self._next_delivery = 1
        self._next_schedule = 1
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")

    def close(self) -> None:
        """Release the store; later calls raise ``RuntimeError``."""
        self._closed = True

    def probe(self) -> None:
        """Memory always takes writes: nothing to check beyond being open."""
        self._check_open()

    def load(self, since: float) -> Restored:
        """Requests received since ``since`` or still open, and every held delivery (every
        state recorded as it was: none is ``outcome_unrecorded``)."""
        self._check_open()
        requests = [
            _copy_request(r)
            for _, r in sorted(self._requests.items())
            if r.received_at >= since or r.state in OPEN_STATES
        ]
        deliveries = [d.held for _, d in sorted(self._deliveries.items())]
        schedules = [Schedule.from_record(copy.deepcopy(r)) for r in self._schedules.values()]
        next_seq = max(self._next_seq, max(self._requests, default=0) + 1)
        next_delivery = max(self._next_delivery, max(self._deliveries, default=0) + 1)
        max_schedule = max((int(x.schedule_id[1:]) for x in schedules), default=0)
        return Restored(
            requests,
            deliveries,
            next_seq,
            next_delivery,
            schedules,
            max(self._next_schedule, max_schedule + 1),
            dict(self._transfers),
            list(self._register_changes.values()),
            list(self._inventory),
        )

    def apply(
        self, effects: Effects, next_seq: int, next_delivery: int, next_schedule: int | None = None
    ) -> None:
        """Apply one batch of decisions, all of it or (on ``StoreConflictError``) none of it."""
        self._check_open()
        # everything that can fail happens before the first change: copies and conflict checks
        saved = [_stored_request(r) for r in effects.save_requests]
        seqs = set(self._requests)
        keys = set(self._request_keys)
        for r in saved:
            key = (r.user_id, r.request_id)
            if r.seq in seqs or key in keys:
                raise StoreConflictError(
                    f"request {r.seq} ({r.user_id}, {r.request_id}) already stored"
                )
            seqs.add(r.seq)
            keys.add(key)
        added = [replace(d) for d in effects.add_deliveries]
        held = set(self._deliveries)
        for d in added:
            if d.delivery_id in held:
                raise StoreConflictError(f"delivery {d.delivery_id} already held")
            held.add(d.delivery_id)
        schedules = [(x.schedule_id, copy.deepcopy(x.to_record())) for x in effects.save_schedules]

        for r in saved:
            self._requests[r.seq] = r
            self._request_keys[(r.user_id, r.request_id)] = r.seq
        for answered, state in (
            (effects.await_requests, RequestState.AWAITING_OUTCOME),
            (effects.complete_requests, RequestState.COMPLETED),
        ):
            for seq in answered:
                if seq in self._requests:
                    done = self._requests[seq]
                    self._requests[seq] = compact(replace(done, state=state))
        for d in added:
            self._deliveries[d.delivery_id] = d
        for delivery_id in effects.remove_deliveries:
            self._deliveries.pop(delivery_id, None)
        self._audit += effects.audit
        self._sla += effects.sla
        self._schedules.update(schedules)
        for schedule_id in effects.delete_schedules:
            self._schedules.pop(schedule_id, None)
        self._transfers.update(effects.save_transfers)
        for stored in effects.save_register_changes:
            self._register_changes[str(stored.change.change_id)] = stored
        self._inventory += effects.inventory_changes  # immutable records: no copy needed
        if next_schedule is not None:
            self._next_schedule = next_schedule
        self._next_seq, self._next_delivery = next_seq, next_delivery

    def inventory_history(
        self, device_id: str | None = None, site_id: str | None = None, mpxn: str | None = None
    ) -> list[InventoryChange]:
        """The inventory changes of a device, site or meter point, in the order made."""
        self._check_open()
        wanted = [
            (v, a) for v, a in ((device_id, "device_id"), (site_id, "site_id"), (mpxn, "mpxn"))
        ]
        if all(v is None for v, _ in wanted):
            return list(self._inventory)
        return [
            c
            for c in self._inventory
            if any(v is not None and getattr(c, a) == v for v, a in wanted)
        ]

    def payloads(self, delivery_ids: list[int]) -> dict[int, bytes]:
        """The payloads of these held deliveries, by delivery id (ids not held are left out)."""
        self._check_open()
        held = self._deliveries
        return {i: held[i].payload for i in delivery_ids if i in held}

    def purge_requests(self, before: float) -> int:
        """Forget answered and refused requests older than the idempotency window."""
        self._check_open()
        gone = [
            r
            for r in self._requests.values()
            if r.received_at < before and r.state not in OPEN_STATES
        ]
        for r in gone:
            del self._requests[r.seq]
            del self._request_keys[(r.user_id, r.request_id)]
        return len(gone)

    def audit_records(
        self,
        user_id: str | None = None,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit records filtered by user, device and time, newest first unless
        ``oldest_first``, up to ``limit``."""
        self._check_open()
        out: list[AuditRecord] = []
        if limit == 0:
            return out
        for a in self._audit if oldest_first else reversed(self._audit):
            if (
                (user_id is None or a.user_id == user_id)
                and (device_id is None or a.device_id == device_id)
                and (since is None or a.at >= since)
                and (until is None or a.at < until)
            ):
                out.append(a)
                if len(out) == limit:
                    break
        return out

    def sla_records(
        self, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[SlaRecord]:
        """SLA records of responses made in a time range, of one service or all."""
        self._check_open()
        low = since if since is not None else 0.0
        high = until if until is not None else float("inf")
        return [
            r
            for r in self._sla
            if low <= r.responded_at < high and (service is None or r.service == service)
        ]


def _copy_request(r: RequestRecord) -> RequestRecord:
    return replace(r, params=copy.deepcopy(r.params))


def _stored_request(r: RequestRecord) -> RequestRecord:
    """What is kept of a request (``compact``), copied."""
    return _copy_request(compact(r))
