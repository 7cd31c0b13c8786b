"""The live hub's field on its own: a new connection fitted through the operator inbox that
survives a SIGKILL of ``dcc serve`` (the premises rebuilt, the read served, nothing applied
twice), early-smart meters calling on the hub's own seeded schedule, and unreadable operator
command files audited. Real processes, sockets and SQLite files; every wait polls with a
generous timeout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from actors.operator_inbox import Fitting, fittings_dir, inbox_dir, write_command
from actors.store import open_store
from hub import wire
from hub.engine.effects import AuditKind, AuditRecord
from hub.reference.codes import ResponseCode
from hub.reference.mpxn import make_mpan
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.standard import Value
from hub.registers.changes import ChangeId, NewMeterPoint, Register
from hub.registers.inventory import ChangeKind, Device, DeviceStatus, InventoryChange, Site
from hub.registers.registration import MeterPoint, SupplierRegistration
from sdk.client import HubClient
from sdk.keys import hub_keypair, signing_key, user_keypair
from simfield.fleet_dir import Fleet
from simfield.fleet_files import write_change_files
from tests.live_support import free_port, make_fleet, supplier_meter, today, wait_until

pytestmark = pytest.mark.timeout(240)

NEW_CHF, NEW_ESME = "0D0D0D0D0D0D0C07", "0D0D0D0D0D0D0E07"
NEW_SITE = "S-FITTED-7"


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


def _serve(fleet: Path, data: Path, endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "cli", "serve", "--fleet", str(fleet), "--data", str(data),
            "--endpoint", endpoint, "--pools", "2", "--field-synchronous", "normal",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def _fitting(fleet: Fleet, user_id: str, mpan: str) -> Fitting:
    def model(device_type: DeviceType) -> tuple[str, str]:
        p = next(
            p
            for _, p in sorted(fleet.inventory.products.items())
            if p.device_type is device_type and not p.early_smart
        )
        return p.manufacturer, p.model

    party = fleet.users[user_id].party_id
    site = Site(NEW_SITE, NEW_CHF, party, "South", "S-0001")
    (cm, cmodel), (em, emodel) = model(DeviceType.CHF), model(DeviceType.ESME)
    return Fitting(
        f"fit-{NEW_SITE}",
        site,
        (
            Device(NEW_CHF, DeviceType.CHF, NEW_SITE, cm, cmodel, "1.0", "", DeviceStatus.PENDING),
            Device(
                NEW_ESME, DeviceType.ESME, NEW_SITE, em, emodel, "1.0", "", DeviceStatus.PENDING,
                mpan,
            ),
        ),
    )  # fmt: skip


def _new_meter_point(fleet_dir: Path, fleet: Fleet, user_id: str, area_of: str) -> str:
    """A change file reporting a new MPAN supplied by the user's party from today."""
    existing = fleet.registration.meter_points[area_of]
    mpan = make_mpan(existing.area, 9_999_007)
    mp = MeterPoint(
        mpan,
        Fuel.ELECTRICITY,
        existing.area,
        existing.network_operator,
        (SupplierRegistration(fleet.users[user_id].party_id, today()),),
    )
    change = NewMeterPoint(
        change_id=ChangeId(Register.ELECTRICITY, 7001), effective=today(), meter_point=mp
    )
    write_change_files(fleet_dir / "inbox", {Register.ELECTRICITY: [change]})
    return mpan


def _client(endpoint: str, fleet_dir: Path, fleet: Fleet, user: str) -> HubClient:
    party = fleet.users[user].party_id
    return HubClient(
        endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user),
        signing_key=signing_key(fleet_dir, party),
    )


def _run(
    client: HubClient, service: str, device: str | None, params: dict[str, Value] | None = None
) -> wire.ServiceResponse:
    ack = client.request(Role.IS, service, device, params or {}, timeout_s=60)
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 90, request_id=ack.request_id)
    assert resp is not None, f"no response to {service}"
    client.ack([resp.delivery_id])
    return resp


def _pre(device: Device, mpan: str, **extra: Value) -> dict[str, Value]:
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


def _history(data: Path, **where: str) -> list[InventoryChange]:
    with closing(open_store(data, read_only=True)) as store:
        return store.inventory_history(**where)  # type: ignore[arg-type]


def test_a_new_connection_fitted_through_the_inbox_is_served_after_a_sigkill_and_restart(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir, data = tmp_path / "fleet", tmp_path / "data"
    fleet = make_fleet(fleet_dir, sites=40)
    user, meter = supplier_meter(fleet)
    mpan = _new_meter_point(fleet_dir, fleet, user, meter.mpxn)
    fitting = _fitting(fleet, user, mpan)
    chf, esme = fitting.devices
    write_command(fleet_dir, fitting.to_json())
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(_serve(fleet_dir, data, endpoint))
    client = _client(endpoint, fleet_dir, fleet, user)
    try:
        client.connect(timeout_s=60)
        fitted = fittings_dir(data) / f"{NEW_SITE}.json"
        wait_until(fitted.exists, 60, "the fitting remembered")
        wait_until(lambda: not list(inbox_dir(fleet_dir).glob("*.json")), 60, "the inbox")
        wait_until(lambda: (fleet_dir / "inbox" / "applied").is_dir(), 60, "the new MPAN")
        chf_pre = _pre(chf, mpan, region="South", cell="S-0001")
        assert _run(client, "12.2", None, chf_pre).code is ResponseCode.I0
        assert _run(client, "12.2", None, _pre(esme, mpan)).code is ResponseCode.I0
        assert _run(client, "8.14.1", NEW_CHF).code is ResponseCode.I0
        add = {"action": "add", "other_device_id": NEW_ESME}
        assert _run(client, "8.11", NEW_CHF, add).code is ResponseCode.I0
        commissioned = _run(client, "8.1.1", NEW_ESME, {"device_id": NEW_ESME})
        assert commissioned.code is ResponseCode.I0, commissioned
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        # the same fitting dropped again while the hub is down changes nothing
        write_command(fleet_dir, fitting.to_json())
        processes.append(_serve(fleet_dir, data, endpoint))
        read = _run(client, "4.1.1", NEW_ESME)
        assert read.code is ResponseCode.I0, read
        assert read.body
        wait_until(lambda: not list(inbox_dir(fleet_dir).glob("*.json")), 60, "the inbox")
    finally:
        client.close()
    statuses = [c.status for c in _history(data, device_id=NEW_ESME) if c.kind is ChangeKind.STATUS]
    assert statuses == [
        DeviceStatus.WHITELISTED,
        DeviceStatus.INSTALLED_NOT_COMMISSIONED,
        DeviceStatus.COMMISSIONED,
    ]
    assert len(_history(data, device_id=NEW_ESME)) == 4  # entered, then three moves
    assert [
        json.loads(p.read_text())["site"]["site_id"] for p in fittings_dir(data).glob("*.json")
    ] == [NEW_SITE]


def _start(fleet_dir: Path, fleet: Fleet, data: Path, **extra: float) -> LiveHub:
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=data,
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.1,
        **extra,  # type: ignore[arg-type]
    )
    return LiveHub(settings, fleet).start()


def test_early_smart_meters_call_the_hub_on_its_own_seeded_schedule(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=200)
    meters = [d for d in fleet.early_smart_candidates if d.device_type.value in ("ESME", "GSME")]
    compliant = [
        d
        for d in meters
        if (p := fleet.inventory.approved(d.manufacturer, d.model)) is not None and p.early_smart
    ]
    if not compliant or len(compliant) == len(meters):
        pytest.skip("the generated fleet needs compliant and non-compliant early-smart meters")
    data = tmp_path / "data"
    # every candidate calls within a few seconds of the start; nothing else asks the hub
    hub = _start(fleet_dir, fleet, data, early_smart_per_day=len(meters) * 86_400.0 / 3)
    try:
        wait_until(
            lambda: len(_history(data)) >= len(meters), 60, "every early-smart meter's contact"
        )
    finally:
        hub.stop()
    history = _history(data)
    adopted = {c.device_id for c in history if c.kind is ChangeKind.ADOPTED}
    refused = {c.device_id for c in history if c.kind is ChangeKind.ADOPTION_REFUSED}
    assert adopted == {d.device_id for d in compliant}
    assert refused == {d.device_id for d in meters} - adopted
    # a restart plays the same draw again: every contact is a command carried out already
    again = _start(fleet_dir, fleet, data, early_smart_per_day=len(meters) * 86_400.0 / 3)
    try:
        wait_until(lambda: again.early_smart_calls == len(meters), 60, "the contacts again")
        # a command file taken after every contact: once it is recorded, they were all handled
        product = fleet.inventory.approved(compliant[0].manufacturer, compliant[0].model)
        assert product is not None
        write_command(
            fleet_dir,
            {
                "action": "approve_model",
                "manufacturer": product.manufacturer,
                "model": product.model,
                "device_type": product.device_type.value,
                "head_end": product.head_end,
                "early_smart": product.early_smart,
            },
        )
        wait_until(lambda: len(_history(data)) > len(history), 60, "the marker command")
    finally:
        again.stop()
    after = _history(data)
    assert len(after) == len(history) + 1
    assert after[-1].kind is ChangeKind.MODEL_APPROVED


def _audit(data: Path) -> list[AuditRecord]:
    with closing(open_store(data, read_only=True)) as store:
        return store.audit_records(limit=-1)


def test_an_unreadable_operator_command_file_is_audited_and_moved_aside(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=20)
    data = tmp_path / "data"
    hub = _start(fleet_dir, fleet, data)
    try:
        inbox = inbox_dir(fleet_dir)
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / "0001-broken.json").write_text("{not json")
        write_command(fleet_dir, {"action": "adopt", "device_id": "FFFFFFFFFFFFFFF0"})
        rejected = fleet_dir / "operator" / "rejected"
        wait_until(lambda: len(list(rejected.glob("*.json"))) == 2, 60, "both files moved aside")
    finally:
        hub.stop()
    refused = [
        r for r in _audit(data) if r.kind is AuditKind.INVENTORY_CHANGE and r.code == "refused"
    ]
    assert sorted(r.request_id or "" for r in refused)[0] == "0001-broken.json"
    assert len(refused) == 2
    assert any("not an early-smart meter" in r.reason for r in refused)
    assert (rejected / "0001-broken.json.reason").read_text().strip()
