"""Scheduling, future-dated requests, anomaly quarantine and SLA on the live hub: real CURVE
sockets, real actors, a real SQLite file. The hub's clock is injected, so a test can move it
forward to a firing instead of waiting for it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.live import HubSettings, LiveHub
from cli.app import app
from hub import wire
from hub.engine import EngineConfig
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.uktime import uk_date
from sdk.client import HubClient
from sdk.keys import hub_keypair, signing_key, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter

pytestmark = pytest.mark.timeout(120)


class Clock:
    """Wall-clock time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=60, seed=5)
    return directory


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path) -> Fleet:
    return load_fleet(fleet_dir)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(fleet_dir: Path, fleet: Fleet, tmp_path: Path, clock: Clock) -> Iterator[LiveHub]:
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.05,
        engine=EngineConfig(schedule_window_s=60.0),
    )
    h = LiveHub(settings, fleet, clock=clock).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def owner(hub: LiveHub, fleet_dir: Path, fleet: Fleet) -> Iterator[tuple[HubClient, str, str]]:
    user, meter = supplier_meter(fleet)
    client = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    client.connect()
    try:
        yield client, user, meter.device_id
    finally:
        client.close()


def test_a_schedule_created_over_the_wire_fires_and_its_response_reaches_the_owner(
    hub: LiveHub, owner: tuple[HubClient, str, str], clock: Clock
) -> None:
    client, _, device = owner
    params = {
        "service": "4.8.1",
        "device_id": device,
        "recurrence": "daily",
        "start_date": uk_date(datetime.now(UTC)).isoformat(),
        "time_of_day": "03:00",
        "params": {"window_s": 86400},
    }
    ack = client.request(Role.IS, "5.1", None, params)
    assert isinstance(ack, wire.Acknowledgement), ack
    created = client.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
    assert created is not None
    assert created.code is ResponseCode.I0, created
    client.ack([created.delivery_id])
    sid = created.body["schedule_id"]
    first = created.body["first_firing_at"]
    assert isinstance(first, float)
    clock.offset = first - time.time() + 0.5  # the hub's clock reaches the firing
    deadline = time.monotonic() + 30
    fired = None
    while fired is None and time.monotonic() < deadline:
        msg = client.wait_for(wire.ServiceResponse, 5)
        if msg is not None and msg.request_id.startswith(f"{sid}:"):
            fired = msg
    assert fired is not None, "the firing's response never arrived"
    assert fired.code is ResponseCode.I0
    assert fired.service == "4.8.1"
    assert fired.body


def test_a_dsp_future_dated_read_is_held_and_answered_after_its_time(
    owner: tuple[HubClient, str, str], clock: Clock
) -> None:
    client, _, device = owner
    at = clock() + 600
    ack = client.request(Role.IS, "4.1.1", device, execute_at=at)
    assert isinstance(ack, wire.Acknowledgement)
    assert client.wait_for(wire.ServiceResponse, 1.0, request_id=ack.request_id) is None  # held
    clock.offset += 601
    resp = client.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
    assert resp is not None
    assert resp.code is ResponseCode.I0


def test_a_device_pattern_tariff_change_is_scheduled_then_actioned_with_8f66(
    owner: tuple[HubClient, str, str], fleet: Fleet, fleet_dir: Path, clock: Clock
) -> None:
    client, user, device = owner
    from hub.reference.service_params import example_params

    party = fleet.users[user].party_id
    at = clock() + 2.0
    params = example_params("1.1.1", at)
    ack = client.request(
        Role.IS,
        "1.1.1",
        device,
        params,
        execute_at=at,
        signature=signing_key(fleet_dir, party).sign("1.1.1", device, params),
    )
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
    assert resp is not None
    assert resp.code is ResponseCode.I0, resp
    outcome = client.wait_for(wire.DeviceAlertNotice, 30)
    while outcome is not None and outcome.alert_code not in ("8F66", "8F67"):
        client.ack([outcome.delivery_id])
        outcome = client.wait_for(wire.DeviceAlertNotice, 30)
    assert outcome is not None, "no 8F66 / 8F67 outcome"
    assert outcome.alert_code == "8F66"


def test_requests_over_the_users_threshold_are_quarantined_and_released_over_the_wire(
    owner: tuple[HubClient, str, str],
) -> None:
    client, _, device = owner
    client.set_thresholds("4.1.1", warning=1, quarantine=2, period_s=3600.0)
    answers = [client.request(Role.IS, "4.1.1", device) for _ in range(4)]
    assert [a.code for a in answers] == [
        ResponseCode.I99,
        ResponseCode.I99,
        ResponseCode.H7,
        ResponseCode.H7,
    ]
    notice = client.wait_for(wire.HubAlert, 120)
    assert notice is not None
    client.release([answers[2].request_id])
    released = client.wait_for(wire.Acknowledgement, 20, request_id=answers[2].request_id)
    assert released is not None
    resp = client.wait_for(wire.ServiceResponse, 20, request_id=answers[2].request_id)
    assert resp is not None
    assert resp.code is ResponseCode.I0


def test_the_sla_report_shows_the_responses_made(
    hub: LiveHub, owner: tuple[HubClient, str, str]
) -> None:
    client, _, device = owner
    for _ in range(3):
        ack = client.request(Role.IS, "4.1.1", device)
        assert client.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id) is not None
    result = CliRunner().invoke(
        app, ["report", "sla", "--data", str(hub.settings.data_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"4.1.1"' in result.output


def test_a_firmware_rollout_transfers_the_image_in_blocks_then_activates_it(
    owner: tuple[HubClient, str, str], fleet: Fleet, fleet_dir: Path, clock: Clock
) -> None:
    client, user, device = owner
    party = fleet.users[user].party_id
    ack = client.request(Role.IS, "11.1", device, {"version": "9.9.9", "image_size": 300_000})
    assert isinstance(ack, wire.Acknowledgement), ack
    done = client.wait_for(wire.ServiceResponse, 60, request_id=ack.request_id)
    assert done is not None
    assert done.code is ResponseCode.I0, done
    assert done.body["blocks"] == 7
    transferred = client.wait_for(wire.DeviceAlertNotice, 30)
    while transferred is not None and transferred.alert_code != "8F8A":
        client.ack([transferred.delivery_id])
        transferred = client.wait_for(wire.DeviceAlertNotice, 30)
    assert transferred is not None, "no 8F8A firmware transfer success alert"
    at = clock() + 1.0
    activate = client.request(
        Role.IS,
        "11.3",
        device,
        {"version": "9.9.9"},
        execute_at=at,
        signature=signing_key(fleet_dir, party).sign("11.3", device, {"version": "9.9.9"}),
    )
    assert isinstance(activate, wire.Acknowledgement), activate
    assert client.wait_for(wire.ServiceResponse, 20, request_id=activate.request_id) is not None
    read = client.request(Role.IS, "11.2", device)
    version = None
    deadline = time.monotonic() + 30
    while version != "9.9.9" and time.monotonic() < deadline:
        resp = client.wait_for(wire.ServiceResponse, 20, request_id=read.request_id)
        assert resp is not None
        version = resp.body.get("firmware_version", resp.body.get("version"))
        if version != "9.9.9":
            read = client.request(Role.IS, "11.2", device)
    assert version == "9.9.9", resp.body


def test_overload_is_answered_busy_with_a_retry_after_and_the_hub_keeps_serving(
    fleet_dir: Path, fleet: Fleet, tmp_path: Path
) -> None:
    from hub.policies.traffic import TrafficConfig
    from hub.reference.catalogue import PriorityClass

    traffic = TrafficConfig(
        capacity_per_s=5.0,
        capacity_burst=5.0,
        queue_bounds={
            PriorityClass.ALERT: 10,
            PriorityClass.URGENT: 10,
            PriorityClass.ON_DEMAND: 20,
            PriorityClass.BULK: 20,
        },
        hub_bound=60,
    )
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "busy",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.05,
        engine=EngineConfig(traffic=traffic),
    )
    user, meter = supplier_meter(fleet)
    with LiveHub(settings, fleet) as hub:
        client = HubClient(
            hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user)
        )
        try:
            client.connect()
            ids = [client.next_request_id() for _ in range(120)]
            for rid in ids:
                client.submit(rid, Role.IS, "4.1.1", meter.device_id)
            answers: dict[str, wire.Acknowledgement | wire.Refusal] = {}
            answered: set[str] = set()  # responses may overtake the last answers

            def take(msg: object) -> None:
                if isinstance(msg, wire.Acknowledgement | wire.Refusal) and msg.request_id in ids:
                    answers[msg.request_id] = msg
                elif isinstance(msg, wire.ServiceResponse):
                    answered.add(msg.request_id)
                    client.ack([msg.delivery_id])

            deadline = time.monotonic() + 30
            while len(answers) < len(ids) and time.monotonic() < deadline:
                take(client.receive(1.0))
            busy = [a for a in answers.values() if a.code is ResponseCode.H8]
            accepted = [a for a in answers.values() if a.code is ResponseCode.I99]
            assert len(answers) == len(ids)
            assert busy, "overload must be answered busy"
            assert all(b.retry_after_s is not None and b.retry_after_s >= 1.0 for b in busy)
            assert accepted
            assert hub.engine is not None
            assert sum(hub.engine.traffic.depth(p) for p in PriorityClass) <= 60
            # the accepted ones are still answered: the hub keeps working under overload
            wanted = {a.request_id for a in accepted}
            deadline = time.monotonic() + 60
            while not wanted <= answered and time.monotonic() < deadline:
                take(client.receive(1.0))
            assert wanted <= answered, f"{len(wanted & answered)} of {len(wanted)} answered"
        finally:
            client.close()


def test_a_held_request_of_the_losing_supplier_stops_on_the_change_of_supplier_day(
    hub: LiveHub, owner: tuple[HubClient, str, str], fleet: Fleet, clock: Clock
) -> None:
    from dataclasses import replace
    from datetime import timedelta

    from tests.live_support import other_supplier, today

    client, user, device = owner
    meter = fleet.inventory.devices[device]
    mp = fleet.registration.meter_points[meter.mpxn]
    gaining = fleet.users[other_supplier(fleet, user)].party_id
    execute_at = clock() + 3 * 86400
    ack = client.request(Role.IS, "4.1.1", device, execute_at=execute_at)
    assert isinstance(ack, wire.Acknowledgement), ack
    # the register learns of a change of supplier that takes effect before the execution day
    cos_day = today() + timedelta(days=1)
    current = next(r for r in mp.registrations if r.covers(today()))
    changed = replace(
        mp,
        registrations=(
            *[r for r in mp.registrations if r.effective_from < current.effective_from],
            replace(current, effective_to=cos_day),
            type(current)(gaining, cos_day),
        ),
    )
    fleet.registration.meter_points[meter.mpxn] = changed
    try:
        clock.offset += 3 * 86400 + 1
        resp = client.wait_for(wire.ServiceResponse, 30, request_id=ack.request_id)
        assert resp is not None
        assert resp.code is ResponseCode.E4
        assert "stopped at execution" in str(resp.body["reason"])
    finally:
        fleet.registration.meter_points[meter.mpxn] = mp
