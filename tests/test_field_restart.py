"""The simulated field remembers across hub restarts, with real parts: a top-up the meter
accepted before the hub was killed with SIGKILL, and that the hub had not yet recorded, is
dispatched again after the restart and refused by the meter's UTRN duplicate check, so it is
credited once (and a balance adjustment, refused by the meter's memory of the command id);
balances, payment mode, tariff and firmware survive a clean restart."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from actors.field_journal import field_file
from actors.live import HubSettings, LiveHub
from hub import wire
from hub.flows.firmware import BLOCK_BYTES
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType, Role
from hub.reference.utrn import make_utrn
from hub.registers.inventory import Device, DeviceStatus
from hub.registers.records import PaymentMode
from sdk.client import HubClient
from sdk.keys import hub_keypair, keys_dir, user_keypair
from sdk.signing import SigningKey, signing_key_path
from simfield.fleet_dir import Fleet
from simfield.memory import DeviceSnapshot, decode_part
from simfield.wan import LatencyKind, WanProfile
from tests.live_support import free_port, make_fleet, today, wait_until

pytestmark = pytest.mark.timeout(240)


def _prepayment_meter(fleet: Fleet) -> tuple[str, str, Device]:
    """(user id, party id, device): a commissioned prepayment ESME of a domestic meter point
    served by the hub, and an active supplier user registered to it today."""
    day = today()
    users = {
        u.party_id: u.user_id
        for u in fleet.users.values()
        if Role.IS in u.roles and u.status.value == "active"
    }
    for device in fleet.inventory.devices.values():
        if device.device_type is not DeviceType.ESME:
            continue
        if device.status is not DeviceStatus.COMMISSIONED:
            continue
        if fleet.payment_modes.get(device.device_id) is not PaymentMode.PREPAYMENT:
            continue
        mp = fleet.registration.meter_point(device.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        supplier = mp.supplier_on(day)
        if supplier in users and not mp.is_future_supplier(supplier, day):
            return users[supplier], supplier, device
    raise LookupError("no prepayment meter with a supplier user in the fleet")


def _comms_hub(fleet: Fleet, device: Device) -> str:
    return fleet.inventory.sites[device.site_id].comms_hub


def _remembered(data: Path, comms_hub: str, device_id: str) -> Mapping[str, Any]:
    """The device's state as its site's memory file holds it now (empty before the first
    write)."""
    path = field_file(data)
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT snapshot FROM parts WHERE comms_hub = ? AND part = ?", (comms_hub, device_id)
        ).fetchone()
    except sqlite3.OperationalError:  # the table is not there yet
        return {}
    finally:
        db.close()
    if row is None:
        return {}
    device = decode_part(bytes(row[0]))
    assert isinstance(device, DeviceSnapshot)
    return device.state


def _credits(client: HubClient, device_id: str) -> list[int]:
    """The UTRN counters of the top-ups in the meter's prepayment credits log (4.4.5)."""
    ack = client.request(Role.IS, "4.4.5", device_id, {}, timeout_s=30)
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 60, request_id=ack.request_id)
    assert resp is not None
    assert resp.code is ResponseCode.I0, resp
    client.ack([resp.delivery_id])
    entries = resp.body["entries"]
    assert isinstance(entries, list)
    return [int(e["utrn_counter"]) for e in entries]  # type: ignore[call-overload,index]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


SLACK_PENCE = 100
"""More than the meter's consumption can cost while a test runs; far less than the amount."""


@pytest.mark.parametrize(
    ("service", "refusal"),
    [("2.2", "already been used"), ("1.5", "already carried out")],
    ids=["top-up-by-utrn", "balance-adjustment-by-command-id"],
)
def test_a_credit_the_meter_applied_before_sigkill_is_refused_when_redispatched_and_applied_once(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], service: str, refusal: str
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40)
    user, party, meter = _prepayment_meter(fleet)
    comms_hub = _comms_hub(fleet, meter)
    data = tmp_path / "data"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.field_crash_hub", str(fleet_dir), str(data), endpoint, "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    processes.append(first)
    assert first.stdout is not None
    assert first.stdin is not None
    assert first.stdout.readline().strip() == b"ready"
    signing = SigningKey.load(signing_key_path(keys_dir(fleet_dir), party))
    client = HubClient(
        endpoint,
        hub_keypair(fleet_dir).public,
        user_keypair(fleet_dir, user),
        signing_key=signing,
    )
    amount = 1_234
    params: dict[str, object] = (
        {"utrn": make_utrn(meter.device_id, amount, 77, key=party)}
        if service == "2.2"
        else {"adjustment_pence": amount}
    )
    try:
        client.connect(timeout_s=60)
        before = _ask(client, "4.18", meter.device_id, {})["meter_balance_pence"]
        assert isinstance(before, float)
        ack = client.request(Role.IS, service, meter.device_id, params, timeout_s=30)  # type: ignore[arg-type]
        assert isinstance(ack, wire.Acknowledgement), ack
        first.stdin.write(b"hold\n")  # the WAN takes 3 s: the hub stops before the answer
        first.stdin.flush()
        assert first.stdout.readline().strip() == b"held"
        credited = (before + amount - SLACK_PENCE) * 1000  # the meter counts millipence
        wait_until(
            lambda: _remembered(data, comms_hub, meter.device_id).get("_balance", 0) >= credited,
            60,
            "the meter to apply the credit",
        )
        first.send_signal(signal.SIGKILL)  # the hub never recorded the meter's answer
        first.wait(timeout=30)
        processes.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "cli", "serve", "--fleet", str(fleet_dir)),
                    *("--data", str(data), "--endpoint", endpoint, "--pools", "2"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        resp = client.wait_for(wire.ServiceResponse, 120, request_id=ack.request_id)
        assert resp is not None, "the accepted request was lost"
        # dispatched again after the restart, the meter refused what it had already applied
        assert resp.code is ResponseCode.H11, resp
        assert refusal in str(resp.body.get("reason")), resp
        client.ack([resp.delivery_id])
        after = _ask(client, "4.18", meter.device_id, {})["meter_balance_pence"]
        assert isinstance(after, float)
        assert abs(after - before - amount) < SLACK_PENCE  # applied once, not twice
        if service == "2.2":
            assert _credits(client, meter.device_id).count(77) == 1
    finally:
        client.close()


def _ask(
    client: HubClient, service: str, device_id: str, params: dict[str, object]
) -> dict[str, object]:
    ack = client.request(Role.IS, service, device_id, params, timeout_s=30)  # type: ignore[arg-type]
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = client.wait_for(wire.ServiceResponse, 60, request_id=ack.request_id)
    assert resp is not None, f"no answer to {service}"
    assert resp.code is ResponseCode.I0, resp
    client.ack([resp.delivery_id])
    return dict(resp.body)


def test_balance_payment_mode_tariff_and_firmware_survive_a_clean_restart(
    tmp_path: Path,
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40)
    user, party, meter = _prepayment_meter(fleet)
    data = tmp_path / "data"
    quick = WanProfile(latency=LatencyKind.FIXED, median_s=0.01)

    def start(endpoint: str = "tcp://127.0.0.1:0") -> LiveHub:
        settings = HubSettings(fleet_dir, data, endpoint=endpoint, pools=2, tick_s=0.1, wan=quick)
        return LiveHub(settings, fleet).start()

    def connect(hub: LiveHub) -> HubClient:
        signing = SigningKey.load(signing_key_path(keys_dir(fleet_dir), party))
        client = HubClient(
            hub.endpoint,
            hub_keypair(fleet_dir).public,
            user_keypair(fleet_dir, user),
            signing_key=signing,
        )
        client.connect()
        return client

    tariff = {
        "standing_charge_pence_per_day": 47.5,
        "tou_rates_pence_per_kwh": [31.0, 12.5],
        "tou_starts": ["07:00", "00:00"],
    }
    hub = start()
    try:
        client = connect(hub)
        try:
            utrn = make_utrn(meter.device_id, 2_500, 5, key=party)
            _ask(client, "2.2", meter.device_id, {"utrn": utrn})
            _ask(client, "1.1.1", meter.device_id, tariff)
            _ask(client, "11.1", meter.device_id, {"version": "7.3.1", "image_size": BLOCK_BYTES})
            wait_until(
                lambda: _ask(client, "11.2", meter.device_id, {})["pending_image"] == "7.3.1",
                60,
                "the image on the meter",
            )
            _ask(client, "11.3", meter.device_id, {"version": "7.3.1"})
            _ask(client, "1.6", meter.device_id, {"payment_mode": "credit"})
            before = _ask(client, "4.18", meter.device_id, {})
        finally:
            client.close()
    finally:
        hub.stop()
    hub = start()
    try:
        client = connect(hub)
        try:
            after = _ask(client, "4.18", meter.device_id, {})
            assert after["payment_mode"] == "credit"
            assert after["meter_balance_pence"] == pytest.approx(
                before["meter_balance_pence"], abs=200
            )
            assert 5 in _credits(client, meter.device_id)
            read = _ask(client, "4.11.1", meter.device_id, {})
            assert read["tariff"] == tariff
            assert _ask(client, "11.2", meter.device_id, {})["firmware_version"] == "7.3.1"
        finally:
            client.close()
    finally:
        hub.stop()
