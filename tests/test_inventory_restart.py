"""Inventory changes across a crash, and the operator's inventory commands from the CLI: the
hub process (``dcc serve``) is killed with SIGKILL and restarted; nothing of the inventory
the hub changed is lost or applied twice, and ``dcc inventory`` shows it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from actors.store import open_store
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType, Fuel, Role
from hub.registers.inventory import ChangeKind, Device, InventoryChange
from sdk.client import HubClient
from sdk.keys import hub_keypair, signing_key, user_keypair
from simfield.fleet_dir import Fleet
from tests.live_support import free_port, make_fleet, supplier_meter, today, wait_until
from tests.test_cli_errors import assert_user_error, dcc
from tests.test_hub_restart import _serve

pytestmark = pytest.mark.timeout(240)


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


def _history(data: Path, **where: str) -> list[InventoryChange]:
    try:
        with closing(open_store(data, read_only=True)) as store:
            return store.inventory_history(**where)  # type: ignore[arg-type]
    except FileNotFoundError:
        return []


def _candidate(fleet: Fleet) -> Device:
    for d in fleet.early_smart_candidates:
        product = fleet.inventory.approved(d.manufacturer, d.model)
        mp = fleet.registration.meter_point(d.mpxn) if d.mpxn else None
        if (
            d.device_type is DeviceType.ESME
            and product is not None
            and product.early_smart
            and mp is not None
            and mp.served_by_hub
        ):
            return d
    pytest.skip("the generated fleet has no compliant early-smart electricity meter")


def _non_domestic(fleet: Fleet) -> tuple[str, Device]:
    day = today()
    for device in fleet.inventory.devices.values():
        mp = fleet.registration.meter_point(device.mpxn) if device.mpxn else None
        if mp is None or mp.domestic or mp.fuel is not Fuel.ELECTRICITY or mp.export:
            continue
        if mp.served_by_hub:
            continue
        for user in fleet.users.values():
            active = user.status.value == "active"
            if user.party_id == mp.supplier_on(day) and Role.IS in user.roles and active:
                return user.user_id, device
    pytest.skip("the generated fleet has no non-domestic meter point to opt in")


def _client(endpoint: str, fleet_dir: Path, fleet: Fleet, user: str) -> HubClient:
    party = fleet.users[user].party_id
    return HubClient(
        endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user),
        signing_key=signing_key(fleet_dir, party),
    )


def _answer(client: HubClient, ack: wire.Acknowledgement | wire.Refusal) -> wire.ServiceResponse:
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 90, request_id=ack.request_id)
    assert resp is not None, "an accepted request was lost"
    client.ack([resp.delivery_id])
    return resp


def test_inventory_changes_survive_sigkill_once_each_and_dcc_inventory_shows_them(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    fleet_dir, data = tmp_path / "fleet", tmp_path / "data"
    fleet = make_fleet(fleet_dir, sites=60)
    user, meter = supplier_meter(fleet)
    nd_user, nd_meter = _non_domestic(fleet)
    early = _candidate(fleet)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    processes.append(_serve(fleet_dir, data, endpoint))
    client = _client(endpoint, fleet_dir, fleet, user)
    # one connection per user: deliveries go to the user's last connection that said Hello
    nd_client = client if nd_user == user else _client(endpoint, fleet_dir, fleet, nd_user)
    try:
        client.connect(timeout_s=60)
        if nd_client is not client:
            nd_client.connect(timeout_s=60)
        # the operator adopts an early-smart meter from the CLI; the running hub takes it
        adopted = dcc("inventory", "adopt", early.device_id, "--fleet", str(fleet_dir), "--json")
        assert adopted.returncode == 0, adopted.stderr
        command_id = json.loads(adopted.stdout)["command_id"]
        wait_until(lambda: bool(_history(data, device_id=early.device_id)), 60, "the adoption")
        assert _answer(client, client.request(Role.IS, "8.3", meter.device_id, {})).code is (
            ResponseCode.I0
        )
        assert _answer(
            nd_client, nd_client.request(Role.IS, "8.6", nd_meter.device_id, {})
        ).code is (ResponseCode.I0)
        # an opt-out accepted, held for its time, then the process killed before it runs
        held = nd_client.request(
            Role.IS, "8.5", nd_meter.device_id, {}, execute_at=time.time() + 6, timeout_s=30
        )
        assert isinstance(held, wire.Acknowledgement), held
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=30)
        # the same command file dropped again while the hub is down: it must not run twice
        (fleet_dir / "operator" / "inbox").mkdir(parents=True, exist_ok=True)
        again = {"action": "adopt", "device_id": early.device_id, "command_id": command_id}
        (fleet_dir / "operator" / "inbox" / f"{command_id}.json").write_text(json.dumps(again))
        processes.append(_serve(fleet_dir, data, endpoint))
        opted_out = _answer(nd_client, held)
        assert opted_out.code is ResponseCode.I0, opted_out
        wait_until(
            lambda: not list((fleet_dir / "operator" / "inbox").glob("*.json")), 60, "the inbox"
        )
        assert [c.kind for c in _history(data, device_id=early.device_id)] == [ChangeKind.ADOPTED]
        assert [c.kind for c in _history(data, mpxn=nd_meter.mpxn)] == [
            ChangeKind.OPTED_IN,
            ChangeKind.OPTED_OUT,
        ]
        assert [c.status for c in _history(data, device_id=meter.device_id)] == ["Decommissioned"]
        # what the restarted hub serves follows the replayed inventory
        refused = client.request(Role.IS, "4.1.1", meter.device_id, timeout_s=30)
        assert isinstance(refused, wire.Refusal)
        assert refused.code is ResponseCode.E5
        nd_refused = nd_client.request(Role.IS, "4.1.1", nd_meter.device_id, timeout_s=30)
        assert isinstance(nd_refused, wire.Refusal)
        assert nd_refused.code is ResponseCode.H6
        early_user = _early_user(fleet, early)
        known = {user: client, nd_user: nd_client}
        early_client = known.get(early_user) or _client(endpoint, fleet_dir, fleet, early_user)
        try:
            if early_user not in known:
                early_client.connect(timeout_s=60)
            read = _answer(early_client, early_client.request(Role.IS, "4.1.1", early.device_id))
            assert read.code is ResponseCode.I0
        finally:
            if early_user not in known:
                early_client.close()
        shown = dcc(
            "inventory", "--device", early.device_id, "--fleet", str(fleet_dir), "--data",
            str(data), "--json",
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        view = json.loads(shown.stdout)
        assert view["device"]["status"] == "Commissioned"
        assert view["device"]["early_smart"] is True
        assert [h["kind"] for h in view["history"]] == ["adopted"]
        assert view["site"]["site_id"] == early.site_id
        point = json.loads(
            dcc(
                "inventory",
                "--mpxn",
                nd_meter.mpxn,
                "--fleet",
                str(fleet_dir),
                "--data",
                str(data),
                "--json",
            ).stdout
        )
        assert point["meter_point"]["served_by_hub"] is False
        assert point["meter_point"]["elected"] is False
    finally:
        client.close()
        if nd_client is not client:
            nd_client.close()


def _early_user(fleet: Fleet, device: Device) -> str:
    party = fleet.registration.meter_points[device.mpxn].supplier_on(today())
    return next(
        u.user_id
        for u in sorted(fleet.users.values(), key=lambda u: u.user_id)
        if u.party_id == party and Role.IS in u.roles and u.status.value == "active"
    )


def test_dcc_inventory_shows_a_site_from_the_fleet_and_refuses_what_it_cannot_show(
    tmp_path: Path,
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=20)
    site = next(iter(fleet.inventory.sites.values()))
    shown = dcc(
        "inventory", "--site", site.site_id, "--fleet", str(fleet_dir), "--data",
        str(tmp_path / "none"), "--json",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["store"] is None
    assert view["site"]["lead_supplier"] == site.lead_supplier
    assert {d["device_id"] for d in view["devices"]} == {
        d.device_id for d in fleet.inventory.site_devices(site.site_id)
    }
    plain = dcc("inventory", "--site", site.site_id, "--fleet", str(fleet_dir))
    assert plain.returncode == 0, plain.stderr
    assert site.comms_hub in plain.stdout
    assert_user_error(
        dcc("inventory", "adopt", "FFFFFFFFFFFFFFF0", "--fleet", str(fleet_dir)),
        2,
        "not an early-smart meter",
    )
    assert_user_error(dcc("inventory", "--fleet", str(fleet_dir)), 2, "exactly one")
    assert not (fleet_dir / "operator" / "inbox").exists()
