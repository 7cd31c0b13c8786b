"""The Store contract, held against every implementation: SQLite on a real file, and in memory.

Each test runs once per backend. ``reopen`` closes the SQLite file and opens it again (what a
restart sees); the in-memory store has no second life, so there it is the same store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from actors.store import SqliteStore
from hub import wire
from hub.engine import AuditKind, AuditRecord, Direction, Effects, RequestRecord, RequestState
from hub.engine.outbox import Delivery, DeliveryKind
from hub.flows.schedules import Schedule, Scheduler, parse_create
from hub.policies.sla import SlaRecord
from hub.ports.memory_store import MemoryStore
from hub.ports.store import Store, StoreConflictError, compact
from hub.reference.roles import Role
from hub.reference.uktime import uk_date
from hub.registers.changes import (
    ChangeId,
    ElectricitySupplierChange,
    Register,
    StoredChange,
    TenancyChange,
)
from tests.test_engine import T0, _engine, _req
from tests.world import ESME, MPAN


@dataclass
class Backend:
    """One store implementation under test, and how a restart reopens it."""

    store: Store
    reopen_with: Callable[[Store], Store]

    def reopen(self) -> Store:
        """The store as a restarted driver finds it."""
        self.store = self.reopen_with(self.store)
        return self.store


def _reopen_sqlite(path: Path) -> Callable[[Store], Store]:
    def reopen(store: Store) -> Store:
        store.close()
        return SqliteStore(path)

    return reopen


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "hub.sqlite"
        made = Backend(SqliteStore(path), _reopen_sqlite(path))
    else:
        made = Backend(MemoryStore(), lambda store: store)
    yield made
    made.store.close()


def _request(seq: int, request_id: str | None = None, **kw: object) -> RequestRecord:
    fields: dict[str, object] = {
        "seq": seq,
        "user_id": "u-supa",
        "request_id": request_id or f"r{seq}",
        "fingerprint": bytes([seq % 256]) * 8,
        "service": "4.1.1",
        "role": Role.IS,
        "device_id": ESME,
        "params": {"window_s": 3600, "registers": ["a", "b"], "nested": {"raw": b"\x00\x01"}},
        "execute_at": None,
        "received_at": T0,
        "state": RequestState.ACCEPTED,
        "reply": wire.encode(wire.Acknowledgement(request_id=request_id or f"r{seq}")),
        "comms_hub": "CHF-1",
        "head_end": "tlv",
        "signature": b"sig",
        "scheduled": False,
    }
    fields.update(kw)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def _delivery(delivery_id: int, user_id: str = "u-supa", **kw: object) -> Delivery:
    fields: dict[str, object] = {
        "delivery_id": delivery_id,
        "user_id": user_id,
        "kind": DeliveryKind.RESPONSE,
        "payload": b"response-" + str(delivery_id).encode(),
        "created_at": T0,
        "expires_at": T0 + 3600,
        "request_id": f"r{delivery_id}",
    }
    fields.update(kw)
    return Delivery(**fields)  # type: ignore[arg-type]


def _audit(
    at: float,
    user_id: str | None,
    device_id: str | None,
    kind: AuditKind = AuditKind.SERVICE_REQUEST,
) -> AuditRecord:
    return AuditRecord(
        at, Direction.IN, user_id, kind, "r1", "4.1.1", device_id, "I99", f"at {at}", None
    )


def _sla(service: str, responded_at: float, code: str = "I0") -> SlaRecord:
    return SlaRecord(service, "u-supa", responded_at - 2.0, responded_at, 30.0, code)


def _schedules(count: int) -> tuple[Scheduler, list[Schedule]]:
    scheduler = Scheduler()
    spec = parse_create(
        {
            "service": "4.8.1",
            "device_id": ESME,
            "recurrence": "daily",
            "start_date": uk_date(datetime.fromtimestamp(T0, UTC)).isoformat(),
            "time_of_day": "01:30",
            "params": {"window_s": 86400},
        }
    )
    return scheduler, [scheduler.create("u-supa", Role.IS, spec, T0) for _ in range(count)]


# ---- requests --------------------------------------------------------------------------


def test_a_saved_request_is_loaded_back_after_a_restart_with_every_field(
    backend: Backend,
) -> None:
    plain = _request(1)
    dated = _request(
        2, execute_at=T0 + 86400, scheduled=True, device_id=None, comms_hub=None, head_end=None
    )
    backend.store.apply(Effects(save_requests=[dated, plain]), 3, 1)
    assert backend.reopen().load(since=0.0).requests == [plain, dated]


def test_a_completed_request_is_loaded_back_completed_even_when_saved_in_the_same_batch(
    backend: Backend,
) -> None:
    backend.store.apply(Effects(save_requests=[_request(1)]), 2, 1)
    backend.store.apply(Effects(save_requests=[_request(2)], complete_requests=[1, 2, 99]), 3, 1)
    states = [r.state for r in backend.reopen().load(since=0.0).requests]
    assert states == [RequestState.COMPLETED, RequestState.COMPLETED]


def test_a_restart_loads_requests_received_since_the_cut_off_and_every_unanswered_one(
    backend: Backend,
) -> None:
    old = T0 - 100
    backend.store.apply(
        Effects(
            save_requests=[
                _request(4, received_at=T0 + 5, state=RequestState.COMPLETED),
                _request(1, received_at=old),  # unanswered: loaded whenever received
                _request(2, received_at=old, state=RequestState.COMPLETED),
                _request(3, received_at=old, state=RequestState.REFUSED),
                _request(5, received_at=T0, state=RequestState.REFUSED),
            ]
        ),
        6,
        1,
    )
    assert [r.seq for r in backend.reopen().load(since=T0).requests] == [1, 4, 5]


def test_a_request_stored_twice_is_a_conflict_and_nothing_of_its_batch_is_applied(
    backend: Backend,
) -> None:
    store = backend.store
    store.apply(Effects(save_requests=[_request(1)]), 2, 1)
    rest_of_batch = {
        "add_deliveries": [_delivery(1)],
        "audit": [_audit(T0, "u-supa", ESME)],
        "sla": [_sla("4.1.1", T0)],
        "complete_requests": [1],
        "save_transfers": [(1, 2)],
    }
    same_seq = _request(1, request_id="other")
    same_key = _request(7, request_id="r1")
    twice_in_batch = [_request(8), _request(8, request_id="again")]
    for saved in ([same_seq], [same_key], twice_in_batch):
        with pytest.raises(StoreConflictError):
            store.apply(Effects(save_requests=saved, **rest_of_batch), 9, 2)  # type: ignore[arg-type]
    again = backend.reopen().load(since=0.0)
    assert again.requests == [_request(1)]
    assert (again.deliveries, again.transfers, again.next_seq) == ([], {}, 2)
    assert backend.store.audit_records() == []
    assert backend.store.sla_records() == []


def test_purge_forgets_answered_and_refused_requests_before_the_cut_off_and_frees_their_ids(
    backend: Backend,
) -> None:
    store = backend.store
    store.apply(
        Effects(
            save_requests=[
                _request(1, received_at=T0 - 10, state=RequestState.COMPLETED),
                _request(2, received_at=T0 - 10, state=RequestState.REFUSED),
                _request(3, received_at=T0 - 10),  # still owed an answer
                _request(4, received_at=T0, state=RequestState.COMPLETED),  # inside the window
            ]
        ),
        5,
        1,
    )
    assert store.purge_requests(before=T0) == 2
    assert store.purge_requests(before=T0) == 0
    store.apply(Effects(save_requests=[_request(5, request_id="r1")]), 6, 1)  # r1 may be reused
    assert [r.seq for r in backend.reopen().load(since=0.0).requests] == [3, 4, 5]


def test_a_request_awaiting_its_outcome_is_loaded_however_old_and_purged_only_once_completed(
    backend: Backend,
) -> None:
    store = backend.store
    dated = _request(1, received_at=T0 - 10, execute_at=T0 + 86400, service="1.1.1")
    store.apply(Effects(save_requests=[dated]), 2, 1)
    store.apply(Effects(await_requests=[1, 99]), 2, 1)  # 99: not stored, no error
    assert store.purge_requests(before=T0) == 0  # the hub still owes it its outcome
    [loaded] = backend.reopen().load(since=T0).requests
    assert loaded == compact(replace(dated, state=RequestState.AWAITING_OUTCOME))
    assert (loaded.device_id, loaded.comms_hub, loaded.head_end) == (ESME, "CHF-1", "tlv")
    assert backend.store.load(since=T0).outcome_unrecorded == []
    backend.store.apply(Effects(complete_requests=[1]), 2, 1)  # its 8F66, or its E30
    assert backend.store.load(since=T0).requests == []
    assert backend.store.purge_requests(before=T0) == 1


def test_a_request_awaiting_and_completed_in_the_same_batch_is_loaded_back_completed(
    backend: Backend,
) -> None:
    dated = _request(1, execute_at=T0 + 86400, service="1.1.1")
    backend.store.apply(
        Effects(save_requests=[dated], await_requests=[1], complete_requests=[1]), 2, 1
    )
    [loaded] = backend.reopen().load(since=0.0).requests
    assert loaded.state is RequestState.COMPLETED


# ---- deliveries ------------------------------------------------------------------------


def test_deliveries_added_and_removed_leave_the_held_ones_by_id_without_payloads(
    backend: Backend,
) -> None:
    alert = _delivery(3, kind=DeliveryKind.DEVICE_ALERT, request_id=None)
    backend.store.apply(Effects(add_deliveries=[alert, _delivery(1), _delivery(2)]), 1, 4)
    backend.store.apply(
        Effects(add_deliveries=[_delivery(4, "u-other")], remove_deliveries=[2, 4, 42]), 1, 5
    )
    held = backend.reopen().load(since=0.0).deliveries
    assert held == [_delivery(1).held, alert.held]
    assert all(h.attempts == 0 for h in held)


def test_the_payloads_of_held_deliveries_are_read_by_id_and_removed_ones_are_left_out(
    backend: Backend,
) -> None:
    backend.store.apply(Effects(add_deliveries=[_delivery(i) for i in range(1, 1201)]), 1, 1201)
    backend.store.apply(Effects(remove_deliveries=[2]), 1, 1201)
    store = backend.reopen()
    assert store.payloads([3, 2, 1, 5000]) == {1: b"response-1", 3: b"response-3"}
    many = list(range(1, 1201))  # more ids than one query takes
    assert len(store.payloads(many)) == 1199
    assert store.payloads([]) == {}


def test_a_delivery_id_held_twice_is_a_conflict_and_nothing_of_its_batch_is_applied(
    backend: Backend,
) -> None:
    backend.store.apply(Effects(add_deliveries=[_delivery(1)]), 1, 2)
    with pytest.raises(StoreConflictError):
        backend.store.apply(
            Effects(save_requests=[_request(1)], add_deliveries=[_delivery(1, "u-other")]), 2, 2
        )
    again = backend.reopen().load(since=0.0)
    assert (again.requests, again.deliveries) == ([], [_delivery(1).held])
    assert backend.store.payloads([1]) == {1: b"response-1"}


# ---- schedules, transfers and the next ids -----------------------------------------------


def test_schedules_are_saved_replaced_and_deleted(backend: Backend) -> None:
    scheduler, (first, second, third) = _schedules(3)
    backend.store.apply(Effects(save_schedules=[first, second, third]), 1, 1, 4)
    moved_on = replace(first, next_index=first.next_index + 1)
    backend.store.apply(
        Effects(save_schedules=[moved_on], delete_schedules=[second.schedule_id, "S999"]), 1, 1
    )
    again = backend.reopen().load(since=0.0)
    assert sorted(again.schedules, key=lambda s: s.schedule_id) == [moved_on, third]
    assert again.next_schedule == scheduler.next_number == 4


def test_the_next_schedule_number_outlives_deleted_schedules_and_stays_above_stored_ones(
    backend: Backend,
) -> None:
    _, (first, second) = _schedules(2)
    backend.store.apply(Effects(save_schedules=[first, second]), 1, 1, 10)
    backend.store.apply(Effects(delete_schedules=[first.schedule_id, second.schedule_id]), 1, 1)
    assert backend.reopen().load(since=0.0).next_schedule == 10  # deleted ids are not reused
    late = replace(first, schedule_id="S20")
    backend.store.apply(Effects(save_schedules=[late]), 1, 1)  # no next number given
    assert backend.reopen().load(since=0.0).next_schedule == 21


def test_firmware_transfer_progress_is_kept_per_request_and_replaced_by_later_progress(
    backend: Backend,
) -> None:
    backend.store.apply(Effects(save_transfers=[(1, 1), (2, 4)]), 1, 1)
    backend.store.apply(Effects(save_transfers=[(1, 2), (1, 3)]), 1, 1)
    assert backend.reopen().load(since=0.0).transfers == {1: 3, 2: 4}


def test_the_next_ids_are_the_persisted_ones_and_never_below_what_is_stored(
    backend: Backend,
) -> None:
    fresh = backend.store.load(since=0.0)
    assert (fresh.next_seq, fresh.next_delivery, fresh.next_schedule) == (1, 1, 1)
    backend.store.apply(Effects(), 10, 20)
    again = backend.reopen().load(since=0.0)
    assert (again.next_seq, again.next_delivery) == (10, 20)
    backend.store.apply(Effects(save_requests=[_request(30)], add_deliveries=[_delivery(40)]), 1, 1)
    again = backend.reopen().load(since=0.0)
    assert (again.next_seq, again.next_delivery) == (31, 41)


def test_a_probe_of_a_working_store_succeeds_and_changes_nothing_a_restart_loads(
    backend: Backend,
) -> None:
    backend.store.apply(Effects(save_requests=[_request(1)], add_deliveries=[_delivery(1)]), 2, 2)
    before = backend.store.load(since=0.0)
    backend.store.probe()
    assert backend.reopen().load(since=0.0) == before


def test_what_is_applied_and_loaded_is_copied_so_callers_cannot_change_the_store(
    backend: Backend,
) -> None:
    applied, held = _request(1), _delivery(1)
    backend.store.apply(Effects(save_requests=[applied], add_deliveries=[held]), 2, 2)
    applied.state = RequestState.COMPLETED
    applied.params["registers"].append("c")  # type: ignore[union-attr]
    held.payload = b"changed"
    loaded = backend.store.load(since=0.0)
    assert (loaded.requests, loaded.deliveries) == ([_request(1)], [_delivery(1).held])
    loaded.requests[0].state = RequestState.REFUSED
    again = backend.reopen().load(since=0.0)
    assert (again.requests, again.deliveries) == ([_request(1)], [_delivery(1).held])
    assert backend.store.payloads([1]) == {1: b"response-1"}


def test_an_engine_restored_from_the_store_repeats_its_first_answer_to_a_resubmission(
    backend: Backend,
) -> None:
    eng = _engine()
    first = eng.on_frame("u-supa", _req("r1"), T0)
    backend.store.apply(first, eng.next_seq, eng.next_delivery)
    restored = backend.reopen().load(since=T0 - eng.config.idempotency_s)
    fresh = _engine()
    redo = fresh.restore(
        restored.requests,
        restored.deliveries,
        restored.next_seq,
        restored.next_delivery,
        T0 + 1,
        restored.schedules,
        restored.next_schedule,
        restored.transfers,
    )
    assert [d.command.command_id for d in redo.dispatch] == [
        d.command.command_id for d in first.dispatch
    ]
    again = fresh.on_frame("u-supa", _req("r1"), T0 + 2)
    assert [s.payload for s in again.send] == [s.payload for s in first.send]
    assert fresh.next_seq == eng.next_seq


# ---- the read side ---------------------------------------------------------------------


def _five_audit_records(backend: Backend) -> tuple[Store, list[AuditRecord]]:
    records = [
        _audit(T0 + 3, "u-supa", ESME),
        _audit(T0 + 1, "u-supa", None, AuditKind.HELLO),
        _audit(T0 + 2, "u-other", ESME),
        _audit(T0 + 4, None, "gas-1", AuditKind.DEVICE_ALERT),
        _audit(T0 + 5, "u-supa", "gas-1"),
    ]
    backend.store.apply(Effects(audit=records[:2]), 1, 1)
    backend.store.apply(Effects(audit=records[2:]), 1, 1)
    return backend.reopen(), records


def test_audit_records_are_filtered_by_user_device_and_time_oldest_first_up_to_the_limit(
    backend: Backend,
) -> None:
    store, records = _five_audit_records(backend)

    def oldest(**kw: object) -> list[AuditRecord]:
        return store.audit_records(oldest_first=True, **kw)  # type: ignore[arg-type]

    assert oldest() == records  # in the order recorded, not by time
    assert oldest(user_id="u-supa") == [records[0], records[1], records[4]]
    assert oldest(device_id=ESME) == [records[0], records[2]]
    assert oldest(user_id="u-supa", device_id="gas-1") == [records[4]]
    assert oldest(since=T0 + 2, until=T0 + 4) == [records[0], records[2]]
    assert oldest(limit=2) == records[:2]
    assert oldest(user_id="u-supa", limit=2) == records[:2]
    assert oldest(limit=0) == []
    assert oldest(limit=-1) == records
    assert oldest(user_id="nobody") == []


def test_audit_records_come_newest_recorded_first_by_default_and_the_limit_keeps_the_newest(
    backend: Backend,
) -> None:
    store, records = _five_audit_records(backend)
    newest = records[::-1]
    assert store.audit_records() == newest  # by the order recorded, not by time
    assert store.audit_records(limit=2) == [records[4], records[3]]
    assert store.audit_records(user_id="u-supa", limit=2) == [records[4], records[1]]
    assert store.audit_records(device_id=ESME, limit=1) == [records[2]]
    assert store.audit_records(since=T0 + 2, until=T0 + 4) == [records[2], records[0]]
    assert store.audit_records(user_id="u-supa", since=T0 + 2, limit=1) == [records[4]]
    assert store.audit_records(limit=0) == []
    assert store.audit_records(limit=-1) == newest
    assert store.audit_records(user_id="nobody") == []


def test_sla_records_are_filtered_by_response_time_and_service_in_the_order_recorded(
    backend: Backend,
) -> None:
    records = [
        _sla("4.8.1", T0 + 2),
        _sla("4.1.1", T0 + 1, "E21"),
        _sla("4.8.1", T0 + 3, "H11"),
        _sla("4.1.1", T0 + 4),
    ]
    backend.store.apply(Effects(sla=records), 1, 1)
    store = backend.reopen()
    assert store.sla_records() == records
    assert store.sla_records(since=T0 + 2) == [records[0], records[2], records[3]]
    assert store.sla_records(until=T0 + 3) == [records[0], records[1]]
    assert store.sla_records(since=T0 + 2, until=T0 + 4, service="4.8.1") == [
        records[0],
        records[2],
    ]
    assert store.sla_records(service="11.1") == []


def test_register_changes_come_back_in_the_order_applied_and_done_keeps_their_place(
    backend: Backend,
) -> None:
    first = TenancyChange(
        change_id=ChangeId(Register.ELECTRICITY, 7), effective=date(2026, 9, 1), mpxn=MPAN
    )
    second = ElectricitySupplierChange(
        change_id=ChangeId(Register.ELECTRICITY, 3),
        effective=date(2026, 9, 2),
        mpxn=MPAN,
        supplier="SUPC",
        source="electricity-2.csv:2",
    )
    backend.store.apply(
        Effects(save_register_changes=[StoredChange(first, False), StoredChange(second, False)]),
        1,
        1,
    )
    backend.store.apply(Effects(save_register_changes=[StoredChange(first, True)]), 1, 1)
    loaded = backend.reopen().load(since=0.0).register_changes
    assert loaded == [StoredChange(first, True), StoredChange(second, False)]


def test_inventory_changes_are_loaded_back_in_the_order_made_and_found_by_device_site_or_meter_point(
    backend: Backend,
) -> None:
    from hub.reference.roles import DeviceType as Type
    from hub.registers.inventory import (
        ChangeKind,
        Device,
        DeviceStatus,
        InventoryChange,
        Site,
    )

    site = Site("S9", "00000000000000C1", "SUPA", "South", "S-0009")
    device = Device(
        "00000000000000C2", Type.ESME, "S9", "Acme", "E1", "1.0", "tlv", DeviceStatus.PENDING, "M1"
    )
    changes = [
        InventoryChange(ChangeKind.SITE_ADDED, T0, "u-supa", "u-supa/r1", site_id="S9", site=site),
        InventoryChange(
            ChangeKind.DEVICE_ADDED,
            T0,
            "u-supa",
            "u-supa/r2",
            device_id=device.device_id,
            site_id="S9",
            mpxn="M1",
            device=device,
        ),
        InventoryChange(ChangeKind.OPTED_OUT, T0 + 1, "u-supa", "u-supa/r3", mpxn="M2"),
    ]
    backend.store.apply(Effects(inventory_changes=changes[:2]), 1, 1)
    backend.store.apply(Effects(inventory_changes=changes[2:]), 1, 1)
    store = backend.reopen()
    assert store.load(since=0).inventory_changes == changes
    assert store.inventory_history(device_id=device.device_id) == [changes[1]]
    assert store.inventory_history(site_id="S9") == changes[:2]
    assert store.inventory_history(mpxn="M2") == [changes[2]]
    assert store.inventory_history(device_id="nobody", mpxn="M2") == [changes[2]]
