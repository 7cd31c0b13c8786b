"""A Device-pattern command's wait for its outcome across a restart, with the real engine over a
real SQLite file: one that failed before its outcome stays answered (no E30 after the restart),
one the device took still gets its E30 when no outcome comes, or is completed by its 8F66;
and a store written by schema 4 (which did not record the wait) upgrades."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from actors.store import SCHEMA_VERSION, SqliteStore
from hub import wire
from hub.engine import Effects, EngineConfig, HubEngine, RequestState
from hub.reference.codes import ResponseCode
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceResponse
from tests.test_engine import SIGNATURE, T0, _req
from tests.world import ESME, World

OUTCOME_TIMEOUT_S = 600.0
RESPONSE_TIMEOUT_S = 60.0


class _Hub:
    """A real engine over a real SQLite file: each step's effects stored as a driver stores
    them (before anything is sent); a restart reopens the file and rebuilds the engine from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = SqliteStore(path)
        self.engine = self._engine()

    @staticmethod
    def _engine() -> HubEngine:
        config = EngineConfig(
            outcome_timeout_s=OUTCOME_TIMEOUT_S, response_timeout_s=RESPONSE_TIMEOUT_S
        )
        return HubEngine(World().access, config)

    def step(self, effects: Effects) -> Effects:
        self.store.apply(effects, self.engine.next_seq, self.engine.next_delivery)
        return effects

    def restart(self, now: float) -> Effects:
        self.store.close()
        self.store = SqliteStore(self.path)
        restored = self.store.load(since=now - EngineConfig().idempotency_s)
        self.engine = self._engine()
        return self.step(
            self.engine.restore(
                restored.requests,
                restored.deliveries,
                restored.next_seq,
                restored.next_delivery,
                now,
                restored.schedules,
                restored.next_schedule,
                restored.transfers,
                register_changes=restored.register_changes,
                inventory_changes=restored.inventory_changes,
                outcome_unrecorded=restored.outcome_unrecorded,
            )
        )

    def tariff_change(self, request_id: str, execute_at: float, now: float) -> str:
        """A 1.1.1 tariff change for ``execute_at`` (Device pattern: sent at once); its
        command id."""
        frame = _req(request_id, service="1.1.1", execute_at=execute_at, signature=SIGNATURE)
        [dispatch] = self.step(self.engine.on_frame("u-supa", frame, now)).dispatch
        return dispatch.command.command_id

    def scheduled(self, command_id: str, now: float) -> Effects:
        """The device took the command for its execution time (SCHEDULED)."""
        response = DeviceResponse(command_id, ESME, "1.1.1", CommandStatus.SCHEDULED)
        return self.step(self.engine.on_device_response(response, now))

    def tick(self, now: float) -> list[ResponseCode]:
        """Codes of the responses a tick at ``now`` makes."""
        return _codes(self.step(self.engine.tick(now)))

    def stored_states(self) -> dict[int, RequestState]:
        return {r.seq: r.state for r in self.store.load(since=0.0).requests}


def _codes(effects: Effects) -> list[ResponseCode]:
    decoded = [wire.decode(d.payload) for d in effects.add_deliveries]
    return [m.code for m in decoded if isinstance(m, wire.ServiceResponse)]


def test_a_device_pattern_command_that_failed_e21_before_a_restart_gets_no_e30_after_it(
    tmp_path: Path,
) -> None:
    hub = _Hub(tmp_path / "hub.sqlite")
    later = T0 + 3600
    command_id = hub.tariff_change("r1", later, T0)
    assert hub.tick(T0 + RESPONSE_TIMEOUT_S) == [ResponseCode.E21]  # it never answered
    assert hub.stored_states() == {int(command_id): RequestState.COMPLETED}
    assert hub.restart(T0 + 120).add_deliveries == []
    assert hub.tick(later + OUTCOME_TIMEOUT_S) == []  # no second answer
    assert hub.tick(later + 7 * OUTCOME_TIMEOUT_S) == []


def test_a_device_pattern_command_scheduled_before_a_restart_gets_its_e30_after_it_once(
    tmp_path: Path,
) -> None:
    hub = _Hub(tmp_path / "hub.sqlite")
    later = T0 + 3600
    command_id = hub.tariff_change("r1", later, T0)
    taken = hub.scheduled(command_id, T0 + 1)
    assert _codes(taken) == [ResponseCode.I0]
    assert taken.await_requests == [int(command_id)]
    assert hub.stored_states() == {int(command_id): RequestState.AWAITING_OUTCOME}
    hub.restart(T0 + 10)
    assert hub.tick(later + OUTCOME_TIMEOUT_S - 1) == []
    assert hub.tick(later + OUTCOME_TIMEOUT_S) == [ResponseCode.E30]
    assert hub.stored_states() == {int(command_id): RequestState.COMPLETED}
    hub.restart(later + OUTCOME_TIMEOUT_S + 1)
    assert hub.tick(later + 7 * OUTCOME_TIMEOUT_S) == []  # answered once


def test_a_device_pattern_command_scheduled_before_a_restart_is_completed_by_its_8f66_after_it(
    tmp_path: Path,
) -> None:
    hub = _Hub(tmp_path / "hub.sqlite")
    later = T0 + 3600
    command_id = hub.tariff_change("r1", later, T0)
    hub.scheduled(command_id, T0 + 1)
    hub.restart(T0 + 10)
    alert = DeviceAlert(ESME, "8F66", later, {"command_id": command_id})
    outcome = hub.step(hub.engine.on_device_alert(alert, later))
    assert "u-supa" in {d.user_id for d in outcome.add_deliveries}  # the sender gets it
    assert outcome.complete_requests == [int(command_id)]
    assert hub.stored_states() == {int(command_id): RequestState.COMPLETED}
    assert hub.tick(later + OUTCOME_TIMEOUT_S) == []  # no E30: the outcome came
    hub.restart(later + 1)
    assert hub.tick(later + 7 * OUTCOME_TIMEOUT_S) == []


def test_an_outcome_deadline_that_passed_while_the_hub_was_down_is_answered_e30_at_once(
    tmp_path: Path,
) -> None:
    hub = _Hub(tmp_path / "hub.sqlite")
    later = T0 + 3600
    command_id = hub.tariff_change("r1", later, T0)
    hub.scheduled(command_id, T0 + 1)
    back = later + OUTCOME_TIMEOUT_S + 300  # down across the deadline
    hub.restart(back)
    assert hub.engine.next_due(back) is not None
    assert hub.tick(back) == [ResponseCode.E30]
    assert hub.stored_states() == {int(command_id): RequestState.COMPLETED}


def _as_schema_4(path: Path) -> None:
    """Make the file what a hub of schema 4 would have written for the same requests: every
    answered request completed (awaiting ones too), a future-dated one keeping its route."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE requests SET state = 1 WHERE state = 3")
        db.execute(
            "UPDATE requests SET device_id = ?, comms_hub = 'CHF-1', head_end = 'tlv' "
            "WHERE state = 1 AND execute_at IS NOT NULL",
            (ESME,),
        )
        db.execute("PRAGMA user_version=4")
        db.commit()


def test_a_schema_4_store_upgrades_keeping_its_inference_once_for_its_dated_completed_requests(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    hub = _Hub(path)
    later, sooner = T0 + 7200, T0 + 1800
    taken = int(hub.tariff_change("taken", later, T0))
    hub.scheduled(str(taken), T0 + 1)
    failed = int(hub.tariff_change("failed", later, T0))
    hub.tick(T0 + RESPONSE_TIMEOUT_S)  # E21
    early = int(hub.tariff_change("early", sooner, T0 + RESPONSE_TIMEOUT_S))
    hub.scheduled(str(early), T0 + RESPONSE_TIMEOUT_S + 1)
    plain = hub.step(hub.engine.on_frame("u-supa", _req("plain"), T0 + 70)).save_requests[0]
    done = DeviceResponse(str(plain.seq), ESME, "4.1.1", CommandStatus.SUCCESS)
    hub.step(hub.engine.on_device_response(done, T0 + 71))
    hub.store.close()
    _as_schema_4(path)

    hub.store = SqliteStore(path)
    assert hub.store.schema_version == SCHEMA_VERSION == 5
    assert hub.store.load(since=0.0).outcome_unrecorded == [taken, failed, early]
    now = sooner + OUTCOME_TIMEOUT_S + 1  # the early one's deadline has passed
    settled = hub.restart(now)
    # as schema 4 inferred: dated Device-pattern ones whose deadline is ahead await (the failed
    # one too: schema 4 did not record its failure); then each is stored as decided
    assert settled.await_requests == [taken, failed]
    assert settled.complete_requests == [early]
    assert hub.store.load(since=0.0).outcome_unrecorded == []
    assert hub.stored_states() == {
        taken: RequestState.AWAITING_OUTCOME,
        failed: RequestState.AWAITING_OUTCOME,
        early: RequestState.COMPLETED,
        plain.seq: RequestState.COMPLETED,
    }
    assert hub.tick(now) == []  # the early one is not answered again
    alert = DeviceAlert(ESME, "8F66", later, {"command_id": str(taken)})
    assert hub.step(hub.engine.on_device_alert(alert, later)).complete_requests == [taken]
    hub.restart(later + 1)  # from here on, what is stored is what is awaited
    assert hub.tick(later + OUTCOME_TIMEOUT_S) == [ResponseCode.E30]  # the failed one, once
    assert hub.tick(later + 7 * OUTCOME_TIMEOUT_S) == []
    assert set(hub.stored_states().values()) == {RequestState.COMPLETED}
