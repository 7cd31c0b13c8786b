"""What ``dcc demo`` (and so ``make run``) does: a small fleet, the catalogue, explained
access decisions, then a live hub driven by several service users, and what happened.
Imported only when the demo runs (``cli.demo_cmd`` holds the command and its options).

Decides: the demonstration workload (which users send what) and how its results are shown.
Must never: fake an outcome: every code and latency shown comes from the running hub.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from actors.live import HubSettings, LiveHub
from cli import output
from hub import wire
from hub.flows.services import executable
from hub.policies.access import AccessContext, AccessRequest
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Role
from hub.reference.service_params import example_params
from hub.reference.standard import DeviceAlert, Value
from hub.reference.uktime import uk_date
from hub.reference.utrn import make_utrn
from hub.registers.inventory import Device, DeviceStatus
from hub.registers.records import PaymentMode
from sdk.client import HubClient
from sdk.keys import create_keys, hub_keypair, signing_keys, user_keypair
from sdk.signing import SigningKey
from simfield.fleet import generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import write_fleet
from simfield.site import SiteHost
from simfield.wan import LatencyKind, WanProfile

console = Console()


@dataclass
class _Plan:
    """One user's part in the workload."""

    user: User
    role: Role
    requests: list[tuple[str, str | None, dict[str, Value], bytes]] = field(default_factory=list)


@dataclass
class _Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: dict[str, int] = field(default_factory=dict)
    responses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)


def _active(fleet: Fleet, role: Role) -> list[User]:
    return [u for u in fleet.users.values() if role in u.roles and u.status is UserStatus.ACTIVE]


def _meters_of(fleet: Fleet, party: str, dtype: DeviceType) -> list[Device]:
    day = uk_date(datetime.now(UTC))
    out = []
    for d in fleet.inventory.devices.values():
        if d.device_type is not dtype or d.status is not DeviceStatus.COMMISSIONED:
            continue
        mp = fleet.registration.meter_point(d.mpxn)
        if mp and mp.served_by_hub and not mp.export and mp.supplier_on(day) == party:
            out.append(d)
    return out


def _area_meters(fleet: Fleet, party: str) -> list[Device]:
    out = []
    for d in fleet.inventory.devices.values():
        mp = fleet.registration.meter_point(d.mpxn) if d.mpxn else None
        if (
            d.device_type is DeviceType.ESME
            and d.status is DeviceStatus.COMMISSIONED
            and mp
            and mp.served_by_hub
            and mp.network_operator == party
        ):
            out.append(d)
    return out


def _plans(
    fleet: Fleet, per_user: int, rng: random.Random, keys: Mapping[str, SigningKey]
) -> list[_Plan]:
    now = time.time()
    plans = []
    suppliers = [
        u for u in _active(fleet, Role.IS) if _meters_of(fleet, u.party_id, DeviceType.ESME)
    ][:3]
    everyone = [d for d in fleet.inventory.devices.values() if d.device_type is DeviceType.ESME]
    for n, user in enumerate(suppliers):
        plan = _Plan(user, Role.IS)
        mine = _meters_of(fleet, user.party_id, DeviceType.ESME)
        prepay = [
            d for d in mine if fleet.payment_modes.get(d.device_id) is PaymentMode.PREPAYMENT
        ] or mine
        counter = n * 10_000
        for _ in range(per_user):
            meter = rng.choice(mine)
            pick = rng.random()
            if pick < 0.5:
                plan.requests.append(("4.1.1", meter.device_id, {}, b""))
            elif pick < 0.62:
                plan.requests.append(("4.8.1", meter.device_id, example_params("4.8.1", now), b""))
            elif pick < 0.72:
                plan.requests.append(("7.4", meter.device_id, {}, b""))
            elif pick < 0.82:
                counter += 1
                target = (
                    rng.choice(prepay) if rng.random() < 0.9 else meter
                )  # some meters are in credit mode
                utrn = make_utrn(target.device_id, 500, counter, key=user.party_id)
                plan.requests.append(("2.2", target.device_id, {"utrn": utrn}, b""))
            elif pick < 0.88:
                tariff = example_params("1.1.1", now)
                signature = keys[user.party_id].sign("1.1.1", meter.device_id, tariff)
                plan.requests.append(("1.1.1", meter.device_id, tariff, signature))
            elif pick < 0.94:
                plan.requests.append(
                    ("4.1.1", rng.choice(everyone).device_id, {}, b"")
                )  # often not ours: E4
            elif pick < 0.97:
                plan.requests.append(("8.2", meter.device_id, {}, b""))
            else:
                plan.requests.append(("7.5", meter.device_id, {}, b""))  # evolved smart grid: H5
        plans.append(plan)
    for user in _active(fleet, Role.ED)[:2]:
        area = _area_meters(fleet, user.party_id)
        if not area:
            continue
        plan = _Plan(user, Role.ED)
        for _ in range(per_user // 2):
            meter = rng.choice(area)
            if rng.random() < 0.85:
                plan.requests.append(("4.1.1", meter.device_id, {}, b""))
            else:
                plan.requests.append(
                    (
                        "2.2",
                        meter.device_id,
                        {"utrn": make_utrn(meter.device_id, 100, 1, key="X")},
                        b"",
                    )
                )  # E2
        plans.append(plan)
    return plans


def _drive(hub: LiveHub, fleet_dir: Path, plan: _Plan, tally: _Tally) -> None:
    client = HubClient(
        hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, plan.user.user_id)
    )
    try:
        client.connect()
        sent: dict[str, float] = {}
        expected = 0
        for i, (service, device, params, signature) in enumerate(plan.requests):
            rid = f"{plan.user.user_id}-{i}"
            sent[rid] = time.perf_counter()
            client.submit(rid, plan.role, service, device, params, None, signature)
        answered = 0
        deadline = time.monotonic() + 60
        while (answered < len(plan.requests) or expected > 0) and time.monotonic() < deadline:
            msg = client.receive(1.0)
            if msg is None:
                continue
            with tally.lock:
                if isinstance(msg, (wire.Acknowledgement, wire.Refusal)):
                    answered += 1
                    tally.acks[msg.code.value] = tally.acks.get(msg.code.value, 0) + 1
                    if isinstance(msg, wire.Acknowledgement):
                        expected += 1
                elif isinstance(msg, wire.ServiceResponse):
                    expected -= 1
                    tally.responses[msg.code.value] = tally.responses.get(msg.code.value, 0) + 1
                    tally.latencies.append(time.perf_counter() - sent[msg.request_id])
                    if (
                        len(tally.samples) < 4
                        and msg.code is ResponseCode.I0
                        and msg.service in ("4.1.1", "2.2")
                    ):
                        tally.samples.append(
                            f"{plan.user.user_id} {msg.service} {msg.device_id}: {_short(msg.body)}"
                        )
                    if msg.code is ResponseCode.H11 and len(tally.samples) < 6:
                        tally.samples.append(
                            f"{plan.user.user_id} {msg.service} rejected by the meter: {msg.body.get('reason')!s}"
                        )
                elif isinstance(msg, wire.DeviceAlertNotice):
                    tally.alerts.append(
                        f"{plan.user.user_id} <- {msg.alert_code} from {msg.device_id} ({msg.mpxn})"
                    )
            if isinstance(msg, (wire.ServiceResponse, wire.DeviceAlertNotice, wire.HubAlert)):
                client.ack([msg.delivery_id])
        # alerts raised by the outage arrive after the requests
        end = time.monotonic() + 3
        while time.monotonic() < end:
            msg = client.receive(0.5)
            if isinstance(msg, (wire.DeviceAlertNotice, wire.ServiceResponse, wire.HubAlert)):
                if isinstance(msg, wire.DeviceAlertNotice):
                    with tally.lock:
                        tally.alerts.append(
                            f"{plan.user.user_id} <- {msg.alert_code} from {msg.device_id} ({msg.mpxn})"
                        )
                client.ack([msg.delivery_id])
    finally:
        client.close()


def _short(body: Mapping[str, Value]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in list(output.humane(dict(body)).items())[:4])
    return text if len(text) < 110 else text[:107] + "..."


def _appointed_agent(fleet: Fleet, now: datetime) -> tuple[User, str] | None:
    """An agent user and a commissioned meter it is appointed to today, if the fleet has one."""
    day = uk_date(now)
    agents = {u.party_id: u for u in _active(fleet, Role.RSA)}
    by_mpxn = {
        d.mpxn: d
        for d in fleet.inventory.devices.values()
        if d.mpxn and d.status is DeviceStatus.COMMISSIONED
    }
    for mpxn, appointments in fleet.registration.appointments.items():
        for a in appointments:
            if (
                a.agent in agents
                and mpxn in by_mpxn
                and fleet.registration.agent_appointed(a.agent, mpxn, day)
            ):
                return agents[a.agent], by_mpxn[mpxn].device_id
    return None


def _explain(fleet: Fleet) -> Table:
    access = AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory)
    now = datetime.now(UTC)
    supplier = next(
        u for u in _active(fleet, Role.IS) if _meters_of(fleet, u.party_id, DeviceType.ESME)
    )
    meter = _meters_of(fleet, supplier.party_id, DeviceType.ESME)[0]
    other = next(u for u in _active(fleet, Role.IS) if u.user_id != supplier.user_id)
    mp = fleet.registration.meter_point(meter.mpxn)
    assert mp is not None
    network = next(
        (u for u in _active(fleet, Role.ED) if u.party_id == mp.network_operator),
        _active(fleet, Role.ED)[0],
    )
    cases = [
        (supplier, Role.IS, "4.1.1", meter.device_id, "the registered supplier reads its meter"),
        (other, Role.IS, "4.1.1", meter.device_id, "another supplier reads it"),
        (network, Role.ED, "4.1.1", meter.device_id, "the area's network operator reads it"),
        (network, Role.ED, "2.2", meter.device_id, "the network operator tries a top-up"),
        (
            supplier,
            Role.IS,
            "4.1.4",
            meter.device_id,
            "a gas-only read sent to an electricity meter",
        ),
        (supplier, Role.IS, "7.5", meter.device_id, "an evolved smart grid service"),
        (supplier, Role.IS, "4.1.1", "FFFFFFFFFFFFFFF0", "a device the inventory does not hold"),
    ]
    agent_case = _appointed_agent(fleet, now)
    if agent_case is not None:
        agent, device_id = agent_case
        cases.append(
            (agent, Role.RSA, "6.2.7", device_id, "an appointed agent reads configuration")
        )
        cases.append((agent, Role.RSA, "7.1", device_id, "the agent tries to enable supply"))
    table = Table(title="Access control, explained (judged on the execution date)")
    for col in ("case", "user", "role", "SRV", "code", "why"):
        table.add_column(col, overflow="fold")
    for user, role, service, device, case in cases:
        d = access.decide(AccessRequest(user.user_id, role, service, device, now))
        colour = "green" if d.accepted else "red"
        table.add_row(
            case,
            user.user_id,
            role.value,
            service,
            f"[{colour}]{d.code.value}[/{colour}]",
            d.reason,
        )
    return table


def run(directory: Path, sites: int, seed: int, per_user: int, wan_latency: float) -> None:
    """Generate a small fleet, explain some access decisions, run a live hub under a mixed
    workload from several users, and show what happened (``dcc demo``)."""
    started = time.perf_counter()
    fleet_dir = directory / "fleet"
    data_dir = directory / "hub"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # every demo starts with an empty store
    today = uk_date(datetime.now(UTC))
    counts = write_fleet(generate_fleet(sites, seed, today), fleet_dir)
    fleet = load_fleet(fleet_dir)
    create_keys(fleet_dir, sorted(fleet.users))
    console.rule("[bold]dcc-hub demo")
    console.print(
        f"fleet: {sites} sites, {counts.get('devices.csv', 0)} devices, {len(fleet.users)} users in {fleet_dir}"
    )
    in_scope = [s for s in CATALOGUE.values() if s.in_scope]
    runs = [s for s in in_scope if executable(s)]
    hub_handled = sum(1 for s in runs if s.non_device)
    console.print(
        f"catalogue: {len(CATALOGUE)} services, {len(in_scope)} in scope, {len(runs)} executed by "
        f"this release ({len(runs) - hub_handled} device services, {hub_handled} carried out by "
        "the hub itself); see 'dcc catalogue'"
    )
    console.print(_explain(fleet))

    wan = WanProfile(latency=LatencyKind.LOGNORMAL, median_s=wan_latency, spread=0.5)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=data_dir,
        endpoint="tcp://127.0.0.1:0",
        pools=4,
        wan=wan,
        tick_s=0.2,
    )
    rng = random.Random(seed)
    plans = _plans(fleet, per_user, rng, signing_keys(fleet_dir))
    tally = _Tally()
    with LiveHub(settings, fleet) as hub:
        console.print(f"hub listening on {hub.endpoint} (CURVE); store {settings.store_path}")
        threads = [threading.Thread(target=_drive, args=(hub, fleet_dir, p, tally)) for p in plans]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        # a power cut at one site in a network operator's area, then power back
        victim = (
            _area_meters(fleet, plans[-1].user.party_id)[0] if plans[-1].role is Role.ED else None
        )
        if victim is not None:
            comms_hub = fleet.inventory.sites[victim.site_id].comms_hub
            hub.inject(comms_hub, _outage)
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        assert hub.engine is not None
        held = len(hub.engine.outbox)
    total = sum(tally.acks.values())
    table = Table(title=f"{total} requests from {len(plans)} users in {elapsed:.1f} s")
    table.add_column("stage")
    table.add_column("code")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    for stage, counts_by_code in (("acknowledgement", tally.acks), ("response", tally.responses)):
        for code, n in sorted(counts_by_code.items(), key=lambda kv: -kv[1]):
            table.add_row(stage, code, str(n), ResponseCode(code).meaning)
    console.print(table)
    if tally.latencies:
        lat = np.array(tally.latencies) * 1000
        console.print(
            f"request -> response latency (ms, includes the simulated WAN median {wan_latency * 1000:.0f} ms and queueing "
            f"behind each comms hub): p50 {np.percentile(lat, 50):.0f}, p95 {np.percentile(lat, 95):.0f}, "
            f"p99 {np.percentile(lat, 99):.0f}"
        )
    for s in tally.samples:
        console.print(f"  response: {s}")
    for a in sorted(set(tally.alerts))[:8]:
        console.print(f"  alert: {a}")
    console.print(f"deliveries still held (unacknowledged): {held}")
    console.print(
        f"data: fleet files in {fleet_dir}, keys in {fleet_dir / 'keys'}, store {settings.store_path}\n"
        f"next: .venv/bin/dcc audit --data {data_dir} --limit 20    .venv/bin/dcc report sla --data {data_dir}\n"
        f"      .venv/bin/dcc simulate scenarios/quickstart.toml (the same hub core in simulated time)\n"
        f"done in {time.perf_counter() - started:.1f} s"
    )


def _outage(host: SiteHost, now: float) -> list[DeviceAlert]:
    """Ten minutes without mains power, ending now: the comms hub's outage and restoration
    alerts go to the network operator and the supplier."""
    alerts = host.premises.power_outage(now - 600)
    alerts += host.premises.power_restored(now)
    return alerts
