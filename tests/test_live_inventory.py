"""The inventory lifecycle on a running live hub (real CURVE sockets, pykka actors, a SQLite
file), without a restart: a new connection from pre-notification to a served read,
commissioning and decommissioning, opt-in and opt-out, early-smart adoption from the field
and from the operator's inbox, model suspension; and what a restart keeps. Every wait polls
with a generous timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from actors.operator_inbox import inbox_dir, write_command
from actors.store import open_store
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.mpxn import make_mpan
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.standard import Value
from hub.registers.inventory import ChangeKind, Device, DeviceStatus, InventoryChange, Site
from hub.registers.registration import MeterPoint, SupplierRegistration
from sdk.client import HubClient
from sdk.keys import hub_keypair, signing_key, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, today, wait_until

pytestmark = pytest.mark.timeout(180)

NEW_CHF, NEW_ESME = "0D0D0D0D0D0D0C01", "0D0D0D0D0D0D0E01"
NEW_SITE = "S-NEWCONN-1"


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=60)
    return directory


def _fleet_with_new_meter_point(fleet_dir: Path) -> tuple[Fleet, str, str]:
    """The fleet, with a meter point new to the registers (no devices), supplied by an
    active import supplier: (fleet, supplier user id, MPAN)."""
    fleet = load_fleet(fleet_dir)
    user_id, meter = supplier_meter(fleet)
    existing = fleet.registration.meter_points[meter.mpxn]
    mpan = make_mpan(existing.area, 9_999_001)
    fleet.registration.meter_points[mpan] = MeterPoint(
        mpan,
        Fuel.ELECTRICITY,
        existing.area,
        existing.network_operator,
        (SupplierRegistration(fleet.users[user_id].party_id, today().replace(year=2020)),),
    )
    return fleet, user_id, mpan


def _start(fleet_dir: Path, fleet: Fleet, data: Path) -> LiveHub:
    settings = HubSettings(
        fleet_dir=fleet_dir, data_dir=data, endpoint="tcp://127.0.0.1:0", pools=2, tick_s=0.1
    )
    return LiveHub(settings, fleet).start()


@pytest.fixture
def clients() -> Iterator[list[HubClient]]:
    made: list[HubClient] = []
    yield made
    for c in made:
        c.close()


def _client(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet, user_id: str, made: list[HubClient]
) -> HubClient:
    party = fleet.users[user_id].party_id
    c = HubClient(
        hub.endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user_id),
        signing_key=signing_key(fleet_dir, party),
    )
    made.append(c)
    c.connect(timeout_s=30)
    return c


def _run(
    client: HubClient,
    service: str,
    device: str | None,
    params: dict[str, Value] | None = None,
    execute_at: float | None = None,
) -> wire.ServiceResponse:
    ack = client.request(Role.IS, service, device, params, execute_at=execute_at, timeout_s=30)
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 60, request_id=ack.request_id)
    assert resp is not None, f"no response to {service}"
    client.ack([resp.delivery_id])
    return resp


def _refused(client: HubClient, service: str, device: str) -> wire.Refusal:
    answer = client.request(Role.IS, service, device, {}, timeout_s=30)
    assert isinstance(answer, wire.Refusal), answer
    return answer


def _history(hub: LiveHub, **where: str) -> list[InventoryChange]:
    with closing(open_store(hub.settings.data_dir, read_only=True)) as store:
        return store.inventory_history(**where)  # type: ignore[arg-type]


def _install_new_connection(hub: LiveHub, fleet: Fleet, user_id: str, mpan: str) -> None:
    """The installer fits a comms hub and an electricity meter at a new premises."""
    chf_model = next(
        p
        for p in fleet.inventory.products.values()
        if p.device_type is DeviceType.CHF and not p.early_smart
    )
    esme_model = next(
        p
        for p in fleet.inventory.products.values()
        if p.device_type is DeviceType.ESME and not p.early_smart
    )
    site = Site(NEW_SITE, NEW_CHF, fleet.users[user_id].party_id, "South", "S-0001")
    devices = [
        Device(NEW_CHF, DeviceType.CHF, NEW_SITE, chf_model.manufacturer, chf_model.model, "1.0", chf_model.head_end, DeviceStatus.PENDING),
        Device(NEW_ESME, DeviceType.ESME, NEW_SITE, esme_model.manufacturer, esme_model.model, "1.0", esme_model.head_end, DeviceStatus.PENDING, mpan),
    ]  # fmt: skip
    hub.install(site, devices)


def _prenotification(device: Device, mpan: str, **extra: Value) -> dict[str, Value]:
    return {
        "device_id": device.device_id,
        "device_type": device.device_type.value,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "firmware": device.firmware,
        "mpxn": mpan,
        "site_id": device.site_id,
        **extra,
    }


def test_a_new_connection_is_pre_notified_installed_commissioned_served_and_then_decommissioned(
    fleet_dir: Path, tmp_path: Path, clients: list[HubClient]
) -> None:
    fleet, user_id, mpan = _fleet_with_new_meter_point(fleet_dir)
    hub = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        _install_new_connection(hub, fleet, user_id, mpan)
        chf, esme = (hub.field.devices[d] for d in (NEW_CHF, NEW_ESME))
        client = _client(hub, fleet_dir, fleet, user_id, clients)
        assert _refused(client, "4.1.1", NEW_ESME).code is ResponseCode.E19  # not yet known
        pre = _run(client, "12.2", None, _prenotification(chf, mpan, region="South", cell="S-0001"))
        assert pre.code is ResponseCode.I0, pre
        assert pre.body["status"] == "Pending"
        assert _run(client, "12.2", None, _prenotification(esme, mpan)).code is ResponseCode.I0
        assert _run(client, "8.14.1", NEW_CHF).code is ResponseCode.I0
        assert _refused(client, "4.1.1", NEW_ESME).code is ResponseCode.E5  # Pending
        added = _run(client, "8.11", NEW_CHF, {"action": "add", "other_device_id": NEW_ESME})
        assert added.code is ResponseCode.I0, added
        assert added.body["inventory_status"] == "Commissioned"  # the comms hub's own
        commissioned = _run(client, "8.1.1", NEW_ESME, {"device_id": NEW_ESME})
        assert commissioned.code is ResponseCode.I0, commissioned
        assert commissioned.body["inventory_status"] == "Commissioned"
        read = _run(client, "4.1.1", NEW_ESME)
        assert read.code is ResponseCode.I0, read
        assert read.body
        assert _run(client, "8.3", NEW_ESME).code is ResponseCode.I0
        assert _refused(client, "4.1.1", NEW_ESME).code is ResponseCode.E5
        statuses = [
            c.status for c in _history(hub, device_id=NEW_ESME) if c.kind is ChangeKind.STATUS
        ]
        assert statuses == [
            DeviceStatus.WHITELISTED,
            DeviceStatus.INSTALLED_NOT_COMMISSIONED,
            DeviceStatus.COMMISSIONED,
            DeviceStatus.DECOMMISSIONED,
        ]
    finally:
        hub.stop()
    # a restart over the same store replays the changes once: the meter stays decommissioned
    again = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        client = _client(again, fleet_dir, fleet, user_id, clients)
        assert _refused(client, "4.1.1", NEW_ESME).code is ResponseCode.E5
        engine = again.engine
        assert engine is not None
        assert engine.access.inventory.devices[NEW_CHF].status is DeviceStatus.COMMISSIONED
        assert len(_history(again, device_id=NEW_ESME)) == 5  # entered, then four moves
    finally:
        again.stop()


def _non_domestic_meter(fleet: Fleet) -> tuple[str, Device]:
    day = today()
    for device in fleet.inventory.devices.values():
        mp = fleet.registration.meter_point(device.mpxn) if device.mpxn else None
        if mp is None or mp.domestic or mp.fuel is not Fuel.ELECTRICITY or mp.export:
            continue
        party = mp.supplier_on(day)
        for user in fleet.users.values():
            if user.party_id == party and Role.IS in user.roles and user.status.value == "active":
                return user.user_id, device
    pytest.skip("the generated fleet has no non-domestic electricity meter with a supplier user")


def test_opt_in_and_opt_out_change_what_a_running_hub_serves(
    fleet_dir: Path, tmp_path: Path, clients: list[HubClient]
) -> None:
    fleet = load_fleet(fleet_dir)
    user_id, meter = _non_domestic_meter(fleet)
    hub = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        client = _client(hub, fleet_dir, fleet, user_id, clients)
        served = fleet.registration.meter_points[meter.mpxn].served_by_hub
        if served:  # start from opted out
            _run(client, "8.5", meter.device_id, execute_at=_soon())
        assert _refused(client, "4.1.1", meter.device_id).code is ResponseCode.H6
        assert _run(client, "8.6", meter.device_id).code is ResponseCode.I0
        assert _run(client, "4.1.1", meter.device_id).code is ResponseCode.I0
        opted_out = _run(client, "8.5", meter.device_id, execute_at=_soon())
        assert opted_out.code is ResponseCode.I0, opted_out
        assert _refused(client, "4.1.1", meter.device_id).code is ResponseCode.H6
    finally:
        hub.stop()


def _soon() -> float:
    import time

    return time.time() + 1.0


def _candidate_meter(fleet: Fleet) -> Device:
    for d in fleet.early_smart_candidates:
        product = fleet.inventory.approved(d.manufacturer, d.model)
        if d.device_type is DeviceType.ESME and product is not None and product.early_smart:
            mp = fleet.registration.meter_point(d.mpxn)
            if mp is not None and mp.served_by_hub and mp.supplier_on(today()):
                return d
    pytest.skip("the generated fleet has no compliant early-smart electricity meter")


def _supplier_user(fleet: Fleet, device: Device) -> str:
    mp = fleet.registration.meter_points[device.mpxn]
    party = mp.supplier_on(today())
    return next(
        u.user_id
        for u in sorted(fleet.users.values(), key=lambda u: u.user_id)
        if u.party_id == party and Role.IS in u.roles and u.status.value == "active"
    )


def test_an_early_smart_meter_of_an_approved_model_is_adopted_and_served(
    fleet_dir: Path, tmp_path: Path, clients: list[HubClient]
) -> None:
    fleet = load_fleet(fleet_dir)
    meter = _candidate_meter(fleet)
    user_id = _supplier_user(fleet, meter)
    hub = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        client = _client(hub, fleet_dir, fleet, user_id, clients)
        assert _refused(client, "4.1.1", meter.device_id).code is ResponseCode.E19
        hub.early_smart_contact(meter.device_id)
        hub.early_smart_contact(meter.device_id)  # it calls again: adopted once
        wait_until(lambda: bool(_history(hub, device_id=meter.device_id)), 30, "the adoption")
        [adopted] = _history(hub, device_id=meter.device_id)
        assert adopted.kind is ChangeKind.ADOPTED
        assert _run(client, "4.1.1", meter.device_id).code is ResponseCode.I0
    finally:
        hub.stop()


def test_a_suspended_model_is_not_adopted_and_its_supplier_is_alerted(
    fleet_dir: Path, tmp_path: Path, clients: list[HubClient]
) -> None:
    fleet = load_fleet(fleet_dir)
    meter = _candidate_meter(fleet)
    user_id = _supplier_user(fleet, meter)
    hub = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        client = _client(hub, fleet_dir, fleet, user_id, clients)
        # the operator suspends the model through the inbox, as 'dcc inventory suspend-model'
        write_command(
            fleet_dir,
            {"action": "suspend_model", "manufacturer": meter.manufacturer, "model": meter.model},
        )
        model = f"{meter.manufacturer}/{meter.model}"
        wait_until(lambda: any(c.model == model for c in _history(hub)), 30, "the model suspension")
        assert not list(inbox_dir(fleet_dir).glob("*.json")), "a carried-out command stays"
        hub.early_smart_contact(meter.device_id)
        alert = client.wait_for(wire.HubAlert, 30)
        assert alert is not None, "the supplier was not told"
        assert alert.alert_code == "NOT_ADOPTED"
        assert alert.data["device_id"] == meter.device_id
        assert [c.kind for c in _history(hub, device_id=meter.device_id)] == [
            ChangeKind.ADOPTION_REFUSED
        ]
        assert _refused(client, "4.1.1", meter.device_id).code is ResponseCode.E19
        with closing(open_store(hub.settings.data_dir, read_only=True)) as store:
            audit = store.audit_records(limit=-1)
        assert any(a.kind == "inventory_change" and a.code == "model_suspended" for a in audit)
    finally:
        hub.stop()
        for left in inbox_dir(fleet_dir).glob("*"):
            left.unlink()


def test_an_unreadable_command_file_is_moved_aside_with_its_reason(
    fleet_dir: Path, tmp_path: Path
) -> None:
    fleet = load_fleet(fleet_dir)
    hub = _start(fleet_dir, fleet, tmp_path / "data")
    try:
        path = write_command(fleet_dir, {"action": "adopt", "device_id": "FFFFFFFFFFFFFFF0"})
        rejected = fleet_dir / "operator" / "rejected" / path.name
        wait_until(rejected.exists, 30, "the command moved aside")
        assert "not an early-smart meter" in (rejected.parent / f"{path.name}.reason").read_text()
        assert json.loads(rejected.read_text())["device_id"] == "FFFFFFFFFFFFFFF0"
    finally:
        hub.stop()
