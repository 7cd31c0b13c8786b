"""Event-mode load: a scenario's service users and field events, scheduled on a ``Simulation``.

Decides: which requests the simulated service users send and when (on-demand reads by hour of
day, prepayment top-ups with valid UTRNs, daily scheduled reads created as 5.1 schedules,
diarised tariff changes, firmware rollouts), and which field events happen (outage storms and
their restorations), all drawn from the scenario's seed.
Must never: decide anything the hub decides; it only plays the users and the field.
Change-of-supplier churn is played as register updates during the run (effective the next UK
day, followed by the gaining supplier's first requests); daily and settlement reads are
created as 5.1 schedules (settlement reads only on meter points the register settles half-hourly);
sites outside WAN coverage are taken off the WAN for the whole run, and the comms hubs of a
failed cell for the outage (their requests get E20).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from hub import wire
from hub.reference.catalogue import CATALOGUE
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.service_params import example_params, schema_for
from hub.reference.standard import DeviceAlert, Value
from hub.reference.uktime import from_uk_local, to_uk_local, uk_date
from hub.reference.utrn import make_utrn
from hub.registers.inventory import Device, DeviceStatus, Inventory
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData, Settlement, SupplierRegistration
from meters_sim.scenario import FLAT, HourProfile, Scenario
from meters_sim.simulator import Simulation
from sdk.signing import SigningKey
from simfield.site import SiteHost


@dataclass(frozen=True, slots=True)
class _Meter:
    device: Device
    user: User
    role: Role


def _meters(
    users: dict[str, User], registration: RegistrationData, inventory: Inventory, day: object
) -> list[_Meter]:
    """Commissioned meters served by the hub, each with its registered supplier's user."""

    assert isinstance(day, date)
    by_party: dict[tuple[str, Role], User] = {}
    for u in users.values():
        if u.status is UserStatus.ACTIVE:
            for role in u.roles & {Role.IS, Role.GS}:
                by_party.setdefault((u.party_id, role), u)
    out = []
    for d in inventory.devices.values():
        if (
            d.device_type not in (DeviceType.ESME, DeviceType.GSME)
            or d.status is not DeviceStatus.COMMISSIONED
        ):
            continue
        mp = registration.meter_point(d.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        role = Role.IS if mp.fuel is Fuel.ELECTRICITY else Role.GS
        supplier = mp.supplier_on(day)
        user = by_party.get((supplier or "", role))
        if user is not None:
            out.append(_Meter(d, user, role))
    return out


def _arrivals(
    rng: random.Random, rate_per_day: float, profile: HourProfile, start: float, end: float
) -> list[float]:
    """Poisson arrivals between start and end, shaped by UK hour of day."""
    times = []
    hour0 = int(start // 3600)
    for h in range(hour0, int(end // 3600) + 1):
        local_hour = to_uk_local(datetime.fromtimestamp(h * 3600, UTC)).hour
        lam = rate_per_day * profile.share(local_hour)
        t = float(h * 3600)
        while lam > 0:
            t += rng.expovariate(lam / 3600.0)
            if t >= (h + 1) * 3600:
                break
            if start <= t < end:
                times.append(t)
    return times


def schedule_load(
    sim: Simulation,
    scenario: Scenario,
    users: dict[str, User],
    registration: RegistrationData,
    inventory: Inventory,
    payment_modes: dict[str, PaymentMode],
    *,
    signing_keys: Mapping[str, SigningKey],
) -> dict[str, int]:
    """Put the scenario's users and events on the simulation; returns what was planned.
    ``signing_keys`` are the parties' private keys (``sdk.keys.signing_keys``): the simulated
    suppliers sign their critical commands with them."""
    rng = random.Random(scenario.run.seed)
    start = scenario.run.start.timestamp()
    end = start + scenario.run.duration_s
    meters = _meters(users, registration, inventory, uk_date(scenario.run.start))
    planned = {
        "on_demand": 0,
        "top_ups": 0,
        "schedules": 0,
        "tariff_changes": 0,
        "firmware": 0,
        "outages": 0,
    }
    counter = [0]

    def rid(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}-{counter[0]}"

    # WAN coverage: the share of each region's comms hubs the WAN does not reach answers E20
    uncovered: set[str] = set()
    for region, wan in scenario.wan.items():
        for site in sorted(inventory.sites.values(), key=lambda x: x.site_id):
            if site.region == region.value.capitalize() and rng.random() >= wan.coverage:
                sim.set_online(site.comms_hub, False)
                uncovered.add(site.comms_hub)
    planned["uncovered_sites"] = len(uncovered)
    # WAN cell outages: every comms hub of a failed cell is unreachable meanwhile
    planned["cells_down"] = 0
    for cell_outage in scenario.load.cell_outages:
        name = cell_outage.region.value.capitalize()
        cells = sorted({s.cell for s in inventory.sites.values() if s.region == name})
        down = {c for c in cells if rng.random() < cell_outage.share}
        planned["cells_down"] += len(down)
        hubs = [
            s.comms_hub
            for s in inventory.sites.values()
            if s.cell in down and s.comms_hub not in uncovered
        ]
        t0 = cell_outage.start.timestamp()
        for hub in hubs:
            sim.at(t0, partial(sim.set_online, hub, False))
            sim.at(t0 + cell_outage.duration_s, partial(sim.set_online, hub, True))
    for u in sorted({m.user.user_id for m in meters}):
        sim.at(start, partial(sim.hello, u))
    load = scenario.load
    # on-demand reads
    services = [(code, w) for code, w in load.on_demand.services.items() if code in CATALOGUE]
    for t in _arrivals(
        rng, load.on_demand.per_meter_per_day * len(meters), load.on_demand.hour_profile, start, end
    ):
        m = rng.choice(meters)
        code = rng.choices([c for c, _ in services], [w for _, w in services])[0]
        service = CATALOGUE[code]
        if m.device.device_type not in service.device_types or m.role not in service.roles:
            code = "4.1.1"
        req = wire.ServiceRequest(
            request_id=rid("od"),
            role=m.role,
            service=code,
            device_id=m.device.device_id,
            params=example_params(code, t),
        )
        sim.at(t, partial(sim.request, m.user.user_id, req))
        planned["on_demand"] += 1
    # prepayment top-ups
    prepay = [m for m in meters if payment_modes.get(m.device.device_id) is PaymentMode.PREPAYMENT]
    if prepay:
        for t in _arrivals(
            rng,
            load.top_ups.per_prepayment_meter_per_day * len(prepay),
            load.top_ups.hour_profile,
            start,
            end,
        ):
            m = rng.choice(prepay)
            counter[0] += 1
            utrn = make_utrn(m.device.device_id, 1000, counter[0] % 999_999, key=m.user.party_id)
            req = wire.ServiceRequest(
                request_id=rid("tu"),
                role=m.role,
                service="2.2",
                device_id=m.device.device_id,
                params={"utrn": utrn},
            )
            sim.at(t, partial(sim.request, m.user.user_id, req))
            planned["top_ups"] += 1
    # daily scheduled reads and settlement profile reads, created at the start as 5.1 schedules
    day = uk_date(scenario.run.start).isoformat()
    for reads in (load.daily_reads, load.settlement):
        if reads.share <= 0 or reads.service not in CATALOGUE:
            continue
        service = CATALOGUE[reads.service]
        for m in meters:
            if (
                rng.random() >= reads.share
                or m.device.device_type not in service.device_types
                or m.role not in service.roles
                or (reads is load.settlement and not _half_hourly(registration, m.device.mpxn, day))
            ):
                continue  # settlement reads only where the register says half-hourly
            params: dict[str, Value] = {
                "service": reads.service,
                "device_id": m.device.device_id,
                "recurrence": "daily",
                "start_date": day,
                "time_of_day": reads.window_start.strftime("%H:%M"),
                "params": {"window_s": 86400},
            }
            req = wire.ServiceRequest(
                request_id=rid("sc"), role=m.role, service="5.1", params=params
            )
            sim.at(start, partial(sim.request, m.user.user_id, req))
            planned["schedules"] += 1
    # diarised tariff changes: sent ahead, the device acts at the date
    for change in load.tariff_changes:
        at = change.at.timestamp()
        send = max(start, at - change.notice_s)
        for m in meters:
            if rng.random() >= change.share or m.role is not Role.IS:
                continue
            dev = m.device.device_id
            tariff = example_params(change.service, at)
            key = signing_keys.get(m.user.party_id)
            req = wire.ServiceRequest(
                request_id=rid("tc"),
                role=m.role,
                service=change.service,
                device_id=dev,
                params=tariff,
                execute_at=at,
                signature=key.sign(change.service, dev, tariff) if key else b"",
            )
            sim.at(send + rng.random() * 60, partial(sim.request, m.user.user_id, req))
            planned["tariff_changes"] += 1
    # firmware rollouts
    for rollout in load.firmware_rollouts:
        at = rollout.at.timestamp()
        for m in meters:
            if m.device.device_type is not rollout.device_type or rng.random() >= rollout.share:
                continue
            req = wire.ServiceRequest(
                request_id=rid("fw"),
                role=m.role,
                service=rollout.service,
                device_id=m.device.device_id,
                params={"version": "9.0.0", "image_size": rollout.image_bytes},
            )
            sim.at(
                at + rng.random() * rollout.over_s,
                partial(sim.request, m.user.user_id, req),
            )
            planned["firmware"] += 1
    # change-of-supplier churn: the register moves a meter point to another supplier from the
    # next UK day; from then the gaining supplier sends its requests, and the losing one's
    # schedules and held requests stop when the hub next checks them
    planned["changes_of_supplier"] = 0
    suppliers = sorted(
        {u.party_id for u in users.values() if Role.IS in u.roles and u.status is UserStatus.ACTIVE}
    )
    gaining_users = {
        u.party_id: u
        for u in users.values()
        if Role.IS in u.roles and u.status is UserStatus.ACTIVE
    }
    electric = [m for m in meters if m.role is Role.IS]
    churn = load.change_of_supplier
    if electric and len(suppliers) > 1 and churn.churn_per_day > 0:
        for t in _arrivals(rng, churn.churn_per_day * len(electric), FLAT, start, end):
            m = rng.choice(electric)
            gaining = rng.choice([p for p in suppliers if p != m.user.party_id])
            sim.at(
                t,
                partial(
                    _change_supplier,
                    sim,
                    registration,
                    m.device.mpxn,
                    gaining,
                    gaining_users[gaining],
                    m.device.device_id,
                    churn.messages_per_change,
                ),
            )
            planned["changes_of_supplier"] += 1
    # outage storms
    for storm in load.outages:
        region_name = storm.region.value.capitalize()
        sites = [s for s in inventory.sites.values() if s.region == region_name]
        hit = [s for s in sites if rng.random() < storm.share]
        t0 = storm.start.timestamp()
        for site in hit:
            back = t0 + storm.duration_s + rng.random() * storm.restore_over_s
            sim.at(t0, partial(sim.inject, site.comms_hub, _power_off))
            sim.at(back, partial(sim.inject, site.comms_hub, _power_on))
            planned["outages"] += 1
    return planned


COS_REQUESTS = ("8.2", "4.1.1", "6.2.7", "11.2", "7.4", "4.18")
"""What a gaining supplier sends first (non-critical, so the simulated user needs no new key)."""


def _half_hourly(registration: RegistrationData, mpxn: str, day: str) -> bool:
    """Whether the register settles a meter point half-hourly on a UK day (yyyy-mm-dd)."""
    mp = registration.meter_point(mpxn)
    return mp is not None and mp.settlement_on(date.fromisoformat(day)) is Settlement.HALF_HOURLY


def _change_supplier(
    sim: Simulation,
    registration: RegistrationData,
    mpxn: str,
    gaining: str,
    user: User,
    device_id: str,
    messages: int,
) -> None:
    """The register shows ``gaining`` as supplier from the next UK day; on that day the
    gaining supplier's first requests follow."""
    mp = registration.meter_points.get(mpxn)
    now = sim.env.now
    if mp is None or any(
        r.effective_from > uk_date(datetime.fromtimestamp(now, UTC)) for r in mp.registrations
    ):
        return  # a change is already pending there
    day = uk_date(datetime.fromtimestamp(now, UTC)) + timedelta(days=1)
    current = [r for r in mp.registrations if r.effective_to is None or r.effective_to > day]
    kept = tuple(r for r in mp.registrations if r not in current)
    ended = tuple(replace(r, effective_to=day) for r in current if r.effective_from < day)
    registration.meter_points[mpxn] = replace(
        mp, registrations=(*kept, *ended, SupplierRegistration(gaining, day))
    )
    first = from_uk_local(datetime.combine(day, time(0, 5)))
    for n, code in enumerate(COS_REQUESTS[: max(0, messages)]):
        req = wire.ServiceRequest(
            request_id=f"cos-{mpxn}-{n}-{int(now)}",
            role=Role.IS,
            service=code,
            device_id=device_id,
            params=example_params(code, first.timestamp()) if schema_for(code) else {},
        )
        sim.at(first.timestamp() + n, partial(sim.hello, user.user_id))
        sim.at(first.timestamp() + n + 0.5, partial(sim.request, user.user_id, req))


def _power_off(host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.power_outage(now)


def _power_on(host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.power_restored(now)
