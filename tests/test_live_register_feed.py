"""Register change files dropped into the inbox of a running live hub: real CURVE sockets, real
actors, a real SQLite file, the hub's clock moved forward to the effective day. And a kill -9
between applying a file and moving it: after the restart nothing is lost or applied twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from actors.register_feed import APPLIED_DIR, INBOX_DIR, REJECTED_DIR
from hub import wire
from hub.engine import AuditKind, EngineConfig
from hub.engine.register_changes import CHANGE_OF_SUPPLIER_ALERT
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.uktime import from_uk_local, uk_date
from hub.registers.change_files import change_file_lines
from hub.registers.changes import ChangeId, ElectricitySupplierChange, Register
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet
from tests.live_support import free_port, make_fleet, other_supplier, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(180)


class Clock:
    """Wall-clock time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _day_start(day: date) -> float:
    return from_uk_local(datetime.combine(day, datetime.min.time())).timestamp()


def _write(inbox: Path, name: str, text: str) -> None:
    """Write a change file as a register would: aside first, then renamed into the inbox."""
    inbox.mkdir(parents=True, exist_ok=True)
    part = inbox.parent / f".{name}.part"
    part.write_text(text, encoding="utf-8")
    part.replace(inbox / name)


def _cos_file(mpan: str, supplier: str, effective: date, seq: int = 1) -> str:
    change = ElectricitySupplierChange(
        change_id=ChangeId(Register.ELECTRICITY, seq),
        effective=effective,
        mpxn=mpan,
        supplier=supplier,
    )
    return "".join(change_file_lines(Register.ELECTRICITY, [change]))


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Fleet]:
    fleet_dir = tmp_path / "fleet"
    return fleet_dir, make_fleet(fleet_dir, sites=30, seed=11)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(world: tuple[Path, Fleet], tmp_path: Path, clock: Clock) -> Iterator[LiveHub]:
    fleet_dir, fleet = world
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.05,
        engine=EngineConfig(schedule_window_s=60.0),
        feed_poll_s=0.05,
    )
    h = LiveHub(settings, fleet, clock=clock).start()
    try:
        yield h
    finally:
        h.stop()


def _client(hub: LiveHub, fleet_dir: Path, user: str) -> HubClient:
    client = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    client.connect()
    return client


def _read_code(client: HubClient, device: str) -> ResponseCode:
    answer = client.request(Role.IS, "4.1.1", device, timeout_s=20)
    return answer.code if isinstance(answer, wire.Refusal) else ResponseCode.I99


def test_a_change_of_supplier_dropped_into_the_inbox_moves_access_on_its_effective_day_and_stops_the_losers_schedules(
    hub: LiveHub, world: tuple[Path, Fleet], clock: Clock
) -> None:
    fleet_dir, fleet = world
    loser, meter = supplier_meter(fleet)
    gainer = other_supplier(fleet, loser)
    mpan = meter.mpxn
    gaining_party = fleet.users[gainer].party_id
    effective = uk_date(datetime.now(UTC)) + timedelta(days=2)
    old = _client(hub, fleet_dir, loser)
    new = _client(hub, fleet_dir, gainer)
    try:
        params = {
            "service": "4.6.1",
            "device_id": meter.device_id,
            "recurrence": "daily",
            "start_date": uk_date(datetime.now(UTC)).isoformat(),
            "time_of_day": "03:00",
            "params": {"window_s": 86400},
        }
        ack = old.request(Role.IS, "5.1", None, params, timeout_s=20)
        assert isinstance(ack, wire.Acknowledgement), ack
        created = old.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
        assert created is not None
        assert created.code is ResponseCode.I0, created
        old.ack([created.delivery_id])
        sid = created.body["schedule_id"]

        inbox = fleet_dir / INBOX_DIR
        _write(inbox, "electricity-0001.csv", _cos_file(mpan, gaining_party, effective))
        wait_until(
            lambda: (inbox / APPLIED_DIR / "electricity-0001.csv").exists(),
            what="the change file applied",
        )
        assert not (inbox / "electricity-0001.csv").exists()
        # before its effective day nothing moves
        assert _read_code(old, meter.device_id) is ResponseCode.I99
        assert _read_code(new, meter.device_id) is ResponseCode.E4

        clock.offset = _day_start(effective) + 60 - time.time()  # the hub reaches that day
        stopped = told = None
        deadline = time.monotonic() + 30
        while (stopped is None or told is None) and time.monotonic() < deadline:
            alert = old.wait_for(wire.HubAlert, 2)
            if alert is None:
                continue
            if alert.alert_code == "SCHEDULE_STOPPED" and alert.data.get("schedule_id") == sid:
                stopped = alert
            if alert.alert_code == CHANGE_OF_SUPPLIER_ALERT:
                told = alert
        assert stopped is not None, "the losing supplier's schedule was not stopped"
        assert told is not None, "the losing supplier was not told"
        assert told.data["mpxn"] == mpan
        assert told.data["effective"] == effective.isoformat()
        engine = hub.engine
        assert engine is not None
        assert hub.front_door is not None
        assert hub.front_door.call_in_loop(lambda: engine.scheduler.get(str(sid))) is None
        assert _read_code(old, meter.device_id) is ResponseCode.E4
        assert _read_code(new, meter.device_id) is ResponseCode.I99
    finally:
        old.close()
        new.close()


def test_a_malformed_change_file_is_refused_with_file_line_and_reason_and_changes_nothing(
    hub: LiveHub, world: tuple[Path, Fleet]
) -> None:
    fleet_dir, fleet = world
    loser, meter = supplier_meter(fleet)
    party = fleet.users[other_supplier(fleet, loser)].party_id
    good = _cos_file(meter.mpxn, party, uk_date(datetime.now(UTC)))
    text = good + f"2,supplier,2026-02-30,{meter.mpxn},{party},,,,,,,\n"
    inbox = fleet_dir / INBOX_DIR
    _write(inbox, "electricity-0002.csv", text)
    reason_file = inbox / REJECTED_DIR / "electricity-0002.csv.reason"
    wait_until(reason_file.exists, what="the file refused")
    reason = reason_file.read_text(encoding="utf-8")
    assert reason.startswith("electricity-0002.csv:3: ")
    assert "not a valid date" in reason
    assert (inbox / REJECTED_DIR / "electricity-0002.csv").exists()
    assert not (inbox / "electricity-0002.csv").exists()
    engine = hub.engine
    assert engine is not None
    mp = engine.access.registration.meter_points[meter.mpxn]
    assert mp.supplier_on(uk_date(datetime.now(UTC))) == fleet.users[loser].party_id
    assert not engine.registers.applied("electricity:1")
    records = hub.in_store_thread(lambda s: s.audit_records(limit=-1))
    refused = [r for r in records if r.kind is AuditKind.REGISTER_CHANGE_REFUSED]
    assert len(refused) == 1
    assert "electricity-0002.csv:3" in refused[0].reason
    assert not [r for r in records if r.kind is AuditKind.REGISTER_CHANGE]
    # the register sends the file again, corrected, under the same name: it is applied
    _write(inbox, "electricity-0002.csv", good)
    wait_until(
        lambda: (inbox / APPLIED_DIR / "electricity-0002.csv").exists(),
        what="the corrected file applied",
    )
    assert engine.registers.applied("electricity:1")


def _serve(fleet: Path, data: Path, endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "serve",
            "--fleet",
            str(fleet),
            "--data",
            str(data),
            "--endpoint",
            endpoint,
            "--pools",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        if p.stderr:
            p.stderr.close()


def _stored(data: Path) -> tuple[list[str], int]:
    with sqlite3.connect(data / "hub.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT change_id FROM register_changes ORDER BY position")]
        audits = db.execute("SELECT COUNT(*) FROM audit WHERE kind = 'register_change'").fetchone()
    return ids, int(audits[0])


def test_after_a_kill_between_applying_a_file_and_moving_it_no_change_is_lost_or_applied_twice(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=30, seed=12)
    loser, meter = supplier_meter(fleet)
    party = fleet.users[other_supplier(fleet, loser)].party_id
    effective = uk_date(datetime.now(UTC)) + timedelta(days=3)
    data = tmp_path / "data"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(_serve(fleet_dir, data, endpoint))
    inbox = fleet_dir / INBOX_DIR
    _write(inbox, "electricity-0001.csv", _cos_file(meter.mpxn, party, effective))
    applied = inbox / APPLIED_DIR / "electricity-0001.csv"
    wait_until(applied.exists, timeout_s=90, what="the change file applied")
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(timeout=30)
    assert _stored(data) == (["electricity:1"], 1)
    # as if the kill came after the commit and before the move: the file is back in the inbox
    applied.replace(inbox / "electricity-0001.csv")
    _write(
        inbox,
        "electricity-0002.csv",
        _cos_file(meter.mpxn, fleet.users[loser].party_id, effective + timedelta(days=7), seq=2),
    )
    processes.append(_serve(fleet_dir, data, endpoint))
    wait_until(
        lambda: (inbox / APPLIED_DIR / "electricity-0002.csv").exists(),
        timeout_s=90,
        what="both files settled after the restart",
    )
    assert applied.exists()
    assert _stored(data) == (["electricity:1", "electricity:2"], 2)
    client = HubClient(endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, loser))
    try:
        client.connect(timeout_s=60)
        # access follows both changes, reapplied over the fleet's registers after the restart
        ack = client.request(
            Role.IS, "4.1.1", meter.device_id, execute_at=_day_start(effective) + 3600, timeout_s=30
        )
        assert isinstance(ack, wire.Refusal), ack
        assert ack.code is ResponseCode.E4
        later = _day_start(effective + timedelta(days=7)) + 3600
        ack = client.request(Role.IS, "4.1.1", meter.device_id, execute_at=later, timeout_s=30)
        assert isinstance(ack, wire.Acknowledgement), ack
    finally:
        client.close()
